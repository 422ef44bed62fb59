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

/** The stored output of the step's successful attempt in this generation, if it has one. */
export async function findStepOutput(db: Db | Tx, run: OrderRun, step: string): Promise<unknown | undefined> {
  const row = await db.maybeOne(sql.type(z.object({ output: z.unknown() }))`
    SELECT output FROM step_attempts
    WHERE order_id = ${run.orderId} AND generation = ${run.generation} AND step = ${step} AND outcome = 'succeeded'`);
  return row ? row.output : undefined;
}

export async function startAttempt(tx: Tx, a: OrderRun & { step: string; worker: string }): Promise<number> {
  return tx.oneFirst(sql.type(z.object({ id: z.coerce.number() }))`
    INSERT INTO step_attempts (order_id, generation, step, attempt, worker)
    SELECT ${a.orderId}, ${a.generation}, ${a.step}, count(*) + 1, ${a.worker}
    FROM step_attempts WHERE order_id = ${a.orderId} AND generation = ${a.generation} AND step = ${a.step}
    RETURNING id`);
}

export async function finishAttempt(
  tx: Tx,
  attemptId: number,
  result:
    | { outcome: 'succeeded'; output: unknown }
    | { outcome: 'failed' | 'skipped'; errorCode: string; errorMessage: string },
): Promise<void> {
  if (result.outcome === 'succeeded') {
    await tx.query(sql.typeAlias('void')`
      UPDATE step_attempts SET outcome = 'succeeded', finished_at = clock_timestamp(),
             output = ${sql.jsonb(result.output as never)}
      WHERE id = ${attemptId} AND outcome = 'running'`);
    return;
  }
  await tx.query(sql.typeAlias('void')`
    UPDATE step_attempts SET outcome = ${result.outcome}, finished_at = clock_timestamp(),
           error_code = ${result.errorCode}, error_message = ${result.errorMessage}
    WHERE id = ${attemptId} AND outcome = 'running'`);
}

export async function listAttempts(db: Db | Tx, orderId: string): Promise<readonly StepAttempt[]> {
  return db.any(sql.type(attemptRow)`
    SELECT generation, step, attempt, worker, started_at, finished_at, outcome, error_code, error_message
    FROM step_attempts WHERE order_id = ${orderId} ORDER BY id`);
}

/** Whether any attempt of the step was started in this generation (its effects may exist). */
export async function stepWasStarted(db: Db | Tx, run: OrderRun, step: string): Promise<boolean> {
  return db.exists(sql.type(z.object({ exists: z.boolean() }))`
    SELECT 1 FROM step_attempts WHERE order_id = ${run.orderId} AND generation = ${run.generation} AND step = ${step}`);
}
