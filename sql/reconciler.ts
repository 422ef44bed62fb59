import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

const ref = z.object({ id: z.string(), generation: z.number() });

/** Orders in progress that nothing has touched for a while: a lost job, a Redis that lost its data. */
export async function findStuckOrders(db: Db, stuckAfterMs: number, limit: number) {
  return db.any(sql.type(ref.extend({ enqueue_round: z.number() }))`
    SELECT id::text, generation, enqueue_round FROM orders
    WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
      AND updated_at < now() - make_interval(secs => ${stuckAfterMs / 1000})
    ORDER BY updated_at LIMIT ${limit}`);
}

/** Claims a stuck order for re-enqueueing; null when another reconciler (or progress) got there first. */
export async function bumpEnqueueRound(db: Db | Tx, orderId: string, round: number): Promise<number | null> {
  return db.maybeOneFirst(sql.type(z.object({ enqueue_round: z.number() }))`
    UPDATE orders SET enqueue_round = enqueue_round + 1, updated_at = now()
    WHERE id = ${orderId} AND enqueue_round = ${round} AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
    RETURNING enqueue_round`);
}

/**
 * Ended orders whose effects are not all undone: stock still reserved, an authorization neither voided
 * nor captured, a capture not fully refunded, a label not cancelled. Normally the dead-letter handler or
 * the cancellation has done it; this is the safety net for when its job was lost. A COMPLETED order
 * whose notification was parked (a step after fulfilment) is not ended here: it keeps its capture and
 * label.
 */
export async function findUncompensatedOrders(db: Db, quietForMs: number, limit: number) {
  return db.any(sql.type(ref)`
    SELECT o.id::text, o.generation FROM orders o
    WHERE o.status IN ('FAILED', 'CANCELLED')
      AND o.updated_at < now() - make_interval(secs => ${quietForMs / 1000})
      AND (
        EXISTS (SELECT 1 FROM stock_movements r
                WHERE r.order_id = o.id AND r.generation = o.generation AND r.kind = 'reserve'
                  AND NOT EXISTS (SELECT 1 FROM stock_movements x WHERE x.order_id = o.id
                                  AND x.generation = o.generation AND x.sku = r.sku AND x.kind = 'release'))
        OR EXISTS (SELECT 1 FROM payments a
                   WHERE a.order_id = o.id AND a.generation = o.generation AND a.kind = 'authorization'
                     AND a.status = 'authorized'
                     AND NOT EXISTS (SELECT 1 FROM payments v WHERE v.order_id = o.id
                                     AND v.generation = o.generation AND v.kind IN ('void', 'capture')))
        OR EXISTS (SELECT 1 FROM payments c WHERE c.order_id = o.id AND c.kind = 'capture'
                   AND c.amount_cents > (SELECT coalesce(sum(f.amount_cents), 0) FROM payments f
                                         WHERE f.order_id = o.id AND f.kind = 'refund'))
        OR EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.id AND s.cancelled_at IS NULL)
      )
    LIMIT ${limit}`);
}

/** Dead letters written with their order's failure whose job never handled them (lost in a crash). */
export async function findUnhandledDeadLetters(db: Db, olderThanMs: number, limit: number) {
  return db.any(sql.type(
    z.object({
      order_id: z.string(),
      generation: z.number(),
      step: z.string(),
      error_code: z.string(),
      error_message: z.string(),
      attempts: z.number(),
      payload: z.unknown(),
    }),
  )`
    SELECT order_id, generation, step, error_code, error_message, attempts, payload FROM dead_letters
    WHERE status = 'received' AND updated_at < now() - make_interval(secs => ${olderThanMs / 1000})
    ORDER BY id LIMIT ${limit}`);
}

/** Dead letters whose scheduled retry is long overdue (its delayed job was lost with Redis's data). */
export async function findOverdueRetries(db: Db, overdueForMs: number, limit: number) {
  return db.any(sql.type(z.object({ id: z.coerce.number(), retries: z.number() }))`
    SELECT id, retries FROM dead_letters
    WHERE status = 'retry_scheduled' AND retry_at < now() - make_interval(secs => ${overdueForMs / 1000})
    ORDER BY retry_at LIMIT ${limit}`);
}
