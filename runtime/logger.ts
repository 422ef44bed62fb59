import { type Logger, pino } from 'pino';
import type { Config } from '../config/index.ts';

export type { Logger };

/** Structured JSON logs, one line per event; `process` tells api, worker and sandbox lines apart. */
export function createLogger(level: Config['logLevel'], process: string): Logger {
  return pino({ level, base: { process }, timestamp: pino.stdTimeFunctions.isoTime });
}
