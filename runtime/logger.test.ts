import { describe, expect, it } from 'vitest';
import { isoTimestamps } from './logger.ts';

describe('isoTimestamps', () => {
  const moments = [
    Date.UTC(2026, 11, 4, 10, 0, 0, 0),
    Date.UTC(2026, 11, 4, 10, 0, 0, 7),
    Date.UTC(2026, 11, 4, 10, 0, 0, 42),
    Date.UTC(2026, 11, 4, 10, 0, 0, 999),
    Date.UTC(2026, 11, 4, 10, 0, 1, 0), // the next second
    Date.UTC(2026, 11, 4, 23, 59, 59, 999),
    Date.UTC(2026, 11, 5, 0, 0, 0, 1), // the next day
    Date.UTC(2026, 11, 4, 10, 0, 0, 500), // the clock set back
    Date.UTC(2028, 1, 29, 12, 30, 45, 67), // a leap day
  ];

  it("writes what pino's isoTime writes, whatever the order of the moments", () => {
    let clock = 0;
    const timestamp = isoTimestamps(() => clock);
    for (const moment of moments) {
      clock = moment;
      expect(timestamp()).toBe(`,"time":"${new Date(moment).toISOString()}"`);
      expect(JSON.parse(`{${timestamp().slice(1)}}`)).toEqual({ time: new Date(moment).toISOString() });
    }
  });
});
