import type { ErrorCode } from './errors.ts';

// What the dead-letter handler does with an order whose step failed for good, once its compensations
// have run. Pure, so the whole table is tested beside it.

/**
 * Where a dead letter stands (the CHECK on dead_letters.status in migration 001 lists the same):
 * retry_scheduled, the order will be retried; parked, nothing happens without an operator;
 * compensation_failed, undoing an effect keeps failing; then replayed or discarded by an operator, or
 * resolved when it needed nothing more.
 */
export const deadLetterStatuses = [
  'received',
  'retry_scheduled',
  'parked',
  'compensation_failed',
  'resolved',
  'replayed',
  'discarded',
] as const;
export type DeadLetterStatus = (typeof deadLetterStatuses)[number];

/**
 * What failed (the CHECK on dead_letters.kind in migration 006 lists the same): `order`, the order failed
 * and its effects were undone; `step`, a step after fulfilment failed for good while the order, shipped,
 * completed: only that step is replayed, nothing is undone.
 */
export const deadLetterKinds = ['order', 'step'] as const;
export type DeadLetterKind = (typeof deadLetterKinds)[number];

export type DeadLetterDecision =
  | { action: 'retry'; delayMs: number; note: string }
  | { action: 'resolve'; note: string }
  | { action: 'park'; note: string };

export type RetryPolicy = { maxRetries: number; baseDelayMs: number };

const PASSES_WITH_TIME: ReadonlySet<string> = new Set<ErrorCode>([
  'out_of_stock',
  'provider_unavailable',
  'provider_timeout',
  'database_unavailable',
  'step_timeout',
]);
const FINAL_OUTCOMES: ReadonlySet<string> = new Set<ErrorCode>([
  'payment_declined',
  'invalid_order',
  'address_undeliverable',
  'order_not_active',
]);

export function decideDeadLetter(
  failure: { errorCode: string; retries: number; captured: boolean },
  policy: RetryPolicy,
): DeadLetterDecision {
  if (FINAL_OUTCOMES.has(failure.errorCode)) {
    return { action: 'resolve', note: `a final business outcome (${failure.errorCode}); nothing to retry` };
  }
  if (PASSES_WITH_TIME.has(failure.errorCode)) {
    // A retry re-runs the whole order, payment included: never for one that was charged.
    if (failure.captured) return { action: 'park', note: 'the payment was captured; an operator must decide' };
    if (failure.retries >= policy.maxRetries) {
      return { action: 'park', note: `still ${failure.errorCode} after ${failure.retries} retries` };
    }
    const delayMs = policy.baseDelayMs * 2 ** failure.retries;
    return {
      action: 'retry',
      delayMs,
      note: `retry ${failure.retries + 1} of ${policy.maxRetries} in ${Math.round(delayMs / 1000)} s`,
    };
  }
  return { action: 'park', note: `unclassified failure (${failure.errorCode}); parked for an operator` };
}
