import { describe, expect, it } from 'vitest';
import { type DeadLetterDecision, decideDeadLetter, type RetryPolicy } from './dead-letter-policy.ts';

const policy: RetryPolicy = { maxRetries: 3, baseDelayMs: 10_000 };
const failure = (errorCode: string, overrides: { retries?: number; captured?: boolean } = {}) => ({
  errorCode,
  retries: 0,
  captured: false,
  ...overrides,
});

describe('decideDeadLetter for a final business outcome', () => {
  const finalCodes = ['payment_declined', 'invalid_order', 'address_undeliverable', 'order_not_active'];
  const cases = finalCodes.flatMap((code) => [
    [code, 'no retries yet, not captured', failure(code)],
    [code, 'retries used up', failure(code, { retries: 3 })],
    [code, 'a captured payment', failure(code, { captured: true })],
  ]) as Array<[string, string, ReturnType<typeof failure>]>;

  it.each(cases)('resolves %s with %s: there is nothing to retry', (code, _case, input) => {
    expect(decideDeadLetter(input, policy)).toEqual({
      action: 'resolve',
      note: `a final business outcome (${code}); nothing to retry`,
    });
  });
});

describe('decideDeadLetter for a failure that passes with time', () => {
  const transientCodes = [
    'out_of_stock',
    'provider_unavailable',
    'provider_timeout',
    'database_unavailable',
    'step_timeout',
  ];

  it.each(transientCodes)('retries %s after the base delay the first time', (code) => {
    expect(decideDeadLetter(failure(code), policy)).toEqual({
      action: 'retry',
      delayMs: 10_000,
      note: 'retry 1 of 3 in 10 s',
    });
  });

  it.each([
    [0, 10_000, 'retry 1 of 3 in 10 s'],
    [1, 20_000, 'retry 2 of 3 in 20 s'],
    [2, 40_000, 'retry 3 of 3 in 40 s'],
  ])('doubles the delay with each retry: after %i retries it waits %i ms', (retries, delayMs, note) => {
    expect(decideDeadLetter(failure('provider_unavailable', { retries }), policy)).toEqual({
      action: 'retry',
      delayMs,
      note,
    });
  });

  it.each([
    [3, 'at the bound'],
    [4, 'past the bound'],
  ])('parks once the retries are used up: %i retries (%s)', (retries) => {
    expect(decideDeadLetter(failure('out_of_stock', { retries }), policy)).toEqual({
      action: 'park',
      note: `still out_of_stock after ${retries} retries`,
    });
  });

  it('parks at once when the policy allows no retries', () => {
    expect(decideDeadLetter(failure('step_timeout'), { maxRetries: 0, baseDelayMs: 10_000 })).toEqual({
      action: 'park',
      note: 'still step_timeout after 0 retries',
    });
  });

  const captured = transientCodes.flatMap((code) => [
    [code, 0],
    [code, 3],
  ]) as Array<[string, number]>;
  it.each(captured)('never retries %s once the payment was captured (%i retries so far)', (code, retries) => {
    expect(decideDeadLetter(failure(code, { retries, captured: true }), policy)).toEqual({
      action: 'park',
      note: 'the payment was captured; an operator must decide',
    });
  });
});

describe('decideDeadLetter for an unclassified failure', () => {
  it.each([
    ['internal', false],
    ['provider_rejected', false],
    ['purchase_limit_exceeded', false],
    ['constraint_violated', false],
    ['invalid_value', false],
    ['not_found', false],
    ['a code no version of the system knows', false],
    ['', false],
    ['internal', true],
  ] as Array<[string, boolean]>)('parks %j for an operator (captured: %s)', (code, isCaptured) => {
    const expected: DeadLetterDecision = {
      action: 'park',
      note: `unclassified failure (${code}); parked for an operator`,
    };
    expect(decideDeadLetter(failure(code, { captured: isCaptured }), policy)).toEqual(expected);
    expect(decideDeadLetter(failure(code, { retries: 10, captured: isCaptured }), policy)).toEqual(expected);
  });
});
