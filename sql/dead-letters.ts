import { z } from 'zod';
import { deadLetterKinds, deadLetterStatuses } from '../domain/dead-letter-policy.ts';
import { type Db, sql, type Tx } from './database.ts';

const deadLetterRow = z.object({
  id: z.coerce.number(),
  order_id: z.string(),
  generation: z.number(),
  kind: z.enum(deadLetterKinds),
  step: z.string(),
  error_code: z.string(),
  error_message: z.string(),
  attempts: z.number(),
  status: z.enum(deadLetterStatuses),
  retries: z.number(),
  retry_at: z.number().nullable(),
  note: z.string().nullable(),
  created_at: z.number(),
  updated_at: z.number(),
});
export type DeadLetter = z.infer<typeof deadLetterRow>;
export type DeadLetterStatus = DeadLetter['status'];

const columns = sql.fragment`id, order_id, generation, kind, step, error_code, error_message, attempts, status, retries,
  retry_at, note, created_at, updated_at`;

/** Records a dead letter once per (order, generation, step); a redelivered job finds the existing row. */
export type NewDeadLetter = {
  orderId: string;
  generation: number;
  step: string;
  errorCode: string;
  message: string;
  attempts: number;
  payload: unknown;
};

export async function recordDeadLetter(db: Db | Tx, d: NewDeadLetter): Promise<DeadLetter> {
  await db.query(sql.typeAlias('void')`
    INSERT INTO dead_letters (order_id, generation, step, error_code, error_message, attempts, payload, status)
    VALUES (${d.orderId}, ${d.generation}, ${d.step}, ${d.errorCode}, ${d.message}, ${d.attempts},
            ${sql.jsonb((d.payload ?? null) as never)}, 'received')
    ON CONFLICT (order_id, generation, step) DO NOTHING`);
  return db.one(sql.type(deadLetterRow)`
    SELECT ${columns} FROM dead_letters
    WHERE order_id = ${d.orderId} AND generation = ${d.generation} AND step = ${d.step}`);
}

export async function findDeadLetter(db: Db | Tx, id: number): Promise<DeadLetter | null> {
  return db.maybeOne(sql.type(deadLetterRow)`SELECT ${columns} FROM dead_letters WHERE id = ${id}`);
}

export async function listDeadLetters(
  db: Db,
  filter: { status?: DeadLetterStatus; limit: number; beforeId?: number },
): Promise<readonly DeadLetter[]> {
  return db.any(sql.type(deadLetterRow)`
    SELECT ${columns} FROM dead_letters
    WHERE ${filter.status ? sql.fragment`status = ${filter.status}` : sql.fragment`true`}
      AND ${filter.beforeId ? sql.fragment`id < ${filter.beforeId}` : sql.fragment`true`}
    ORDER BY id DESC LIMIT ${filter.limit}`);
}

/**
 * Moves a dead letter to a new status, only from one of `from` (the guard that makes an operator's
 * replay and a scheduled retry of the same dead letter exclusive). Returns whether it moved.
 */
export async function updateDeadLetter(
  db: Db | Tx,
  id: number,
  from: readonly DeadLetterStatus[],
  change: { status: DeadLetterStatus; note: string; retries?: number; retryAt?: Date | null },
): Promise<boolean> {
  const updated = await db.maybeOne(sql.type(z.object({ id: z.coerce.number() }))`
    UPDATE dead_letters
    SET status = ${change.status}, note = ${change.note}, updated_at = clock_timestamp(),
        retries = ${change.retries ?? sql.fragment`retries`},
        retry_at = ${change.retryAt === undefined ? sql.fragment`retry_at` : change.retryAt === null ? null : sql.timestamp(change.retryAt)}
    WHERE id = ${id} AND status = ANY(${sql.array([...from], 'text')})
    RETURNING id`);
  return updated !== null;
}

/** The enqueue round of a letter's order: the round a replay of its step last ran under. */
export async function findEnqueueRound(db: Db | Tx, letter: DeadLetter): Promise<number | null> {
  return db.maybeOneFirst(sql.type(z.object({ enqueue_round: z.number() }))`
    SELECT enqueue_round FROM orders WHERE id = ${letter.order_id} AND generation = ${letter.generation}`);
}

/**
 * Claims a step's dead letter (kind 'step') for a replay: moves it from `seen.status` (parked, or
 * replayed when that replay's job was lost) to replayed and gives the order a new enqueue round, so the
 * replay's job id is new. Null when the letter or the round moved since they were seen (a concurrent
 * replay won): the guard that makes two replays run the step once. Locks the order row first, as every
 * writer does.
 */
export async function claimStepReplay(
  tx: Tx,
  letter: DeadLetter,
  seen: { status: 'parked' | 'replayed'; round: number },
  note: string,
): Promise<number | null> {
  const round = await tx.maybeOneFirst(sql.type(z.object({ enqueue_round: z.number() }))`
    SELECT enqueue_round FROM orders WHERE id = ${letter.order_id} AND generation = ${letter.generation} FOR UPDATE`);
  if (round !== seen.round) return null;
  if (!(await updateDeadLetter(tx, letter.id, [seen.status], { status: 'replayed', note }))) return null;
  return tx.oneFirst(sql.type(z.object({ enqueue_round: z.number() }))`
    UPDATE orders SET enqueue_round = enqueue_round + 1 WHERE id = ${letter.order_id} RETURNING enqueue_round`);
}
