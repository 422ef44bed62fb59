import { describe, expect, it } from 'vitest';
import { decideGate, type GateSettings } from './admission-gate.ts';

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
