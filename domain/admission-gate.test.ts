import { describe, expect, it } from 'vitest';
import { backlogCap, decideGate, type GateSettings } from './admission-gate.ts';

const settings: GateSettings = { minRate: 5, backlogSeconds: 2 };

describe('decideGate', () => {
  it.each([
    // backlog, completions/s → gate
    { backlog: 0, completions: 0, gate: null, why: 'nothing waits: open' },
    { backlog: 10, completions: 0, gate: null, why: 'a backlog within 2 s of the minimum rate: open' },
    { backlog: 11, completions: 0, gate: { ratePerSecond: 5, burst: 5 }, why: 'nothing finishes: the minimum' },
    { backlog: 140, completions: 70, gate: null, why: 'a backlog of exactly 2 s of work: open' },
    { backlog: 141, completions: 70, gate: { ratePerSecond: 70, burst: 70 }, why: 'behind: the completion rate' },
    { backlog: 500, completions: 2.5, gate: { ratePerSecond: 5, burst: 5 }, why: 'a stalled pipeline: the minimum' },
    {
      backlog: 50,
      completions: 12.4,
      gate: { ratePerSecond: 12.4, burst: 13 },
      why: 'a burst of one second, rounded up',
    },
  ])('backlog $backlog at $completions/s: $why', ({ backlog, completions, gate }) => {
    expect(decideGate({ backlog, completionsPerSecond: completions }, settings)).toEqual(gate);
  });

  it('never lets through less than one order per burst', () => {
    expect(decideGate({ backlog: 10, completionsPerSecond: 0 }, { minRate: 0.1, backlogSeconds: 1 })).toEqual({
      ratePerSecond: 0.1,
      burst: 1,
    });
  });
});

describe('backlogCap', () => {
  it.each([
    // completions/s → units that may wait for their reservation
    { completions: 0, cap: 10, why: 'nothing measured yet (a sale’s first second): 2 s at the minimum rate' },
    { completions: 3, cap: 10, why: 'a pipeline slower than the minimum: still the minimum' },
    { completions: 70, cap: 140, why: '2 s of the measured rate, as the gate’s own threshold' },
    { completions: 12.4, cap: 24, why: 'rounded down, so the gate stays open at the cap' },
  ])('at $completions/s: $why', ({ completions, cap }) => {
    expect(backlogCap(completions, settings)).toBe(cap);
  });

  it('lets at least one unit wait', () => {
    expect(backlogCap(0, { minRate: 0.01, backlogSeconds: 1 })).toBe(1);
  });

  it('is the backlog the gate still lets through open', () => {
    for (const completions of [0, 7, 70, 12.4]) {
      const cap = backlogCap(completions, settings);
      expect(decideGate({ backlog: cap, completionsPerSecond: completions }, settings)).toBeNull();
    }
  });
});
