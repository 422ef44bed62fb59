import { z } from 'zod';
import { type Db, sql } from './database.ts';

const compensationRow = z.object({
  step: z.string(),
  outcome: z.enum(['done', 'failed']),
  detail: z.string().nullable(),
});
export type Compensation = z.infer<typeof compensationRow>;

export const NOTHING_TO_UNDO = 'nothing to undo';

export async function listCompensations(
  db: Db,
  orderId: string,
): Promise<readonly (Compensation & { generation: number })[]> {
  return db.any(sql.type(compensationRow.extend({ generation: z.number() }))`
    SELECT generation, step, outcome, detail FROM compensations WHERE order_id = ${orderId} ORDER BY updated_at`);
}

/**
 * Records a compensation's outcome for the order's view. Done wins: a failure reported late by a
 * concurrent run never overwrites it, and "nothing to undo" never hides what an earlier run undid.
 */
export async function recordCompensation(
  db: Db,
  c: { orderId: string; generation: number; step: string } & Compensation,
): Promise<void> {
  await db.query(sql.typeAlias('void')`
    INSERT INTO compensations (order_id, generation, step, outcome, detail)
    VALUES (${c.orderId}, ${c.generation}, ${c.step}, ${c.outcome}, ${c.detail})
    ON CONFLICT (order_id, generation, step) DO UPDATE
      SET outcome = EXCLUDED.outcome, detail = EXCLUDED.detail, updated_at = clock_timestamp()
      WHERE compensations.outcome = 'failed'
         OR (EXCLUDED.outcome = 'done' AND EXCLUDED.detail <> ${NOTHING_TO_UNDO})`);
}
