import { type Logger, pino } from 'pino';
import type { Config } from '../config/index.ts';

export type { Logger };

/** Structured JSON logs, one line per event; `process` tells api, worker and sandbox lines apart. */
export function createLogger(level: Config['logLevel'], process: string): Logger {
  return pino({ level, base: { process }, timestamp: isoTimestamps() });
}

/**
 * pino's `isoTime` (`,"time":"<ISO 8601>"`), formatting the date and time of day once per second rather
 * than once per line: the API writes an access log line per request, a cache hit included.
 */
export function isoTimestamps(now: () => number = Date.now): () => string {
  let second = Number.NaN;
  let upToSecond = ''; // YYYY-MM-DDTHH:mm:ss.
  return () => {
    const ms = now();
    const msOfSecond = ms % 1000;
    if (ms - msOfSecond !== second) {
      second = ms - msOfSecond;
      upToSecond = new Date(second).toISOString().slice(0, 20);
    }
    return `,"time":"${upToSecond}${msOfSecond < 10 ? '00' : msOfSecond < 100 ? '0' : ''}${msOfSecond}Z"`;
  };
}
