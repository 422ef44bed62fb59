import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

const attemptRow = z.object({
  generation: z.number(),
  step: z.string(),
  attempt: z.number(),
  worker: z.string(),
  started_at: z.number(),
  finished_at: z.number().nullable(),
  outcome: z.enum(['running', 'succeeded', 'failed', 'skipped']),
  error_code: z.string().nullable(),
  error_message: z.string().nullable(),
});
export type StepAttempt = z.infer<typeof attemptRow>;

/** Which run of which order: a retried order (new generation) runs every step again. */
export type OrderRun = { orderId: string; generation: number };

export async function listAttempts(db: Db | Tx, orderId: string): Promise<readonly StepAttempt[]> {
  return db.any(sql.type(attemptRow)`
    SELECT generation, step, attempt, worker, started_at, finished_at, outcome, error_code, error_message
    FROM step_attempts WHERE order_id = ${orderId} ORDER BY id`);
}
