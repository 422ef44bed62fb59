import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';
import { type ReturnRecord, touchOrder } from './returns.ts';
import type { StepRun } from './step-runtime.ts';

// The database side of the returns saga (workers/returns/). Its ledger is step_attempts, as for the
// order's steps: order_id is the return's order, generation the order's, step `return-<kind>:<rma>`. A
// step's success row is written in the transaction of its effect, and the unique success index
// (001_initial.sql) makes a retried step find it and return its stored output instead of acting twice.
// A step that fails for good parks a dead letter of kind 'step' (migration 006) for an operator: a
// return's trouble never compensates its order, which was delivered and is COMPLETED.

/** An attempt of a return's step: an order step's run without the status move (returns move no order). */
export type ReturnStepRun = Pick<StepRun, 'orderId' | 'generation' | 'step' | 'attempt' | 'worker' | 'startedAt'>;

const generationOf = (tx: Db | Tx, orderId: string) =>
  tx.oneFirst(sql.type(z.object({ generation: z.number() }))`SELECT generation FROM orders WHERE id = ${orderId}`);

export async function orderGeneration(db: Db, orderId: string): Promise<number> {
  return generationOf(db, orderId);
}

/** The output of the step's success in an earlier attempt, if there was one. */
export async function findReturnStepOutput(db: Db | Tx, run: ReturnStepRun): Promise<unknown> {
  const row = await db.maybeOne(sql.type(z.object({ output: z.unknown() }))`
    SELECT output FROM step_attempts
    WHERE order_id = ${run.orderId} AND generation = ${run.generation} AND step = ${run.step}
      AND outcome = 'succeeded'`);
  return row?.output;
}

/** The success row; false when an earlier attempt's success is there already (nothing is written). */
async function recordSuccess(tx: Tx, run: ReturnStepRun, output: unknown): Promise<boolean> {
  const inserted = await tx.maybeOne(sql.type(z.object({ id: z.coerce.number() }))`
    INSERT INTO step_attempts (order_id, generation, step, attempt, worker, started_at, finished_at, outcome, output)
    VALUES (${run.orderId}, ${run.generation}, ${run.step}, ${run.attempt}, ${run.worker},
            to_timestamp(${run.startedAt / 1000}), clock_timestamp(), 'succeeded', ${sql.jsonb(output as never)})
    ON CONFLICT (order_id, generation, step) WHERE outcome = 'succeeded' DO NOTHING
    RETURNING id`);
  // A replayed step that succeeds resolves the dead letter an earlier failure parked.
  await tx.query(sql.typeAlias('void')`
    UPDATE dead_letters SET status = 'resolved', note = 'the return step succeeded', updated_at = clock_timestamp()
    WHERE order_id = ${run.orderId} AND generation = ${run.generation} AND step = ${run.step}
      AND status IN ('parked', 'replayed')`);
  return inserted !== null;
}

/** A failed attempt's ledger row; when `final`, with the step's dead letter parked for an operator. */
export async function recordReturnStepFailure(
  db: Db,
  run: ReturnStepRun,
  error: { code: string; message: string },
  final: { payload: unknown; rma: string } | null,
): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(sql.typeAlias('void')`
      INSERT INTO step_attempts (order_id, generation, step, attempt, worker, started_at, finished_at, outcome,
                                 error_code, error_message)
      VALUES (${run.orderId}, ${run.generation}, ${run.step}, ${run.attempt}, ${run.worker},
              to_timestamp(${run.startedAt / 1000}), clock_timestamp(), 'failed', ${error.code}, ${error.message})`);
    if (!final) return;
    await tx.query(sql.typeAlias('void')`
      INSERT INTO dead_letters (order_id, generation, step, error_code, error_message, attempts, payload, status,
                                kind, note)
      VALUES (${run.orderId}, ${run.generation}, ${run.step}, ${error.code}, ${error.message}, ${run.attempt},
              ${sql.jsonb(final.payload as never)}, 'parked', 'step',
              ${`return ${final.rma}: the order is unchanged; fix the cause and run the step again`})
      ON CONFLICT (order_id, generation, step) DO UPDATE SET
        status = 'parked', error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message,
        attempts = EXCLUDED.attempts, updated_at = clock_timestamp()`);
  });
}

/** The shipment a return label refers to: the order's, at the carrier. */
export async function findCarrierShipmentId(db: Db, orderId: string): Promise<string | null> {
  return db.maybeOneFirst(sql.type(z.object({ id: z.string() }))`
    SELECT carrier_shipment_id AS id FROM shipments WHERE order_id = ${orderId}`);
}

/** The label is booked: a requested return now waits for its parcel. */
export async function recordReturnLabel(
  db: Db,
  run: ReturnStepRun,
  record: ReturnRecord,
  label: { carrier: string; trackingNumber: string; labelUrl: string },
): Promise<void> {
  await db.transaction(async (tx) => {
    await lockOrderAndReturn(tx, record);
    await tx.query(sql.typeAlias('void')`
      UPDATE returns SET status = 'awaiting_receipt', label_carrier = ${label.carrier},
        label_tracking_number = ${label.trackingNumber}, label_url = ${label.labelUrl}, updated_at = clock_timestamp()
      WHERE id = ${record.id} AND status = 'requested'`);
    await recordSuccess(tx, run, label);
    await touchOrder(tx, record.order_id);
  });
}

export type OpenRefund = { amountCents: number; captureId: string | null; status: string; gatewayId: string | null };

/**
 * The refund's payments row, written (pending) before the gateway is called, and never deleted: a retry
 * finds it and pays the same amount with the same key. The amount is what arrived (restock or damaged
 * units at the price paid), capped by what the order has left to refund; the trigger of migration 008
 * refuses a row over that cap whatever computed it. Null when there is nothing to refund.
 */
export async function openReturnRefund(db: Db, record: ReturnRecord, key: string): Promise<OpenRefund | null> {
  return db.transaction(async (tx) => {
    await lockOrderAndReturn(tx, record);
    const generation = await generationOf(tx, record.order_id);
    await tx.query(sql.typeAlias('void')`
      WITH arrived AS (
        SELECT coalesce(sum(i.received_quantity * o.unit_price_cents), 0) AS cents
        FROM return_items i JOIN order_items o ON o.order_id = i.order_id AND o.sku = i.sku
        WHERE i.return_id = ${record.id} AND i.disposition IN ('restock', 'damaged')
      ), money AS (
        SELECT coalesce(sum(amount_cents) FILTER (WHERE kind = 'capture' AND status = 'captured'), 0)
             - coalesce(sum(amount_cents) FILTER (WHERE kind = 'refund' AND status <> 'failed'), 0) AS refundable
        FROM payments WHERE order_id = ${record.order_id}
      )
      INSERT INTO payments (order_id, generation, kind, status, idempotency_key, amount_cents, return_id)
      SELECT ${record.order_id}, ${generation}, 'refund', 'pending', ${key}, least(arrived.cents, money.refundable),
             ${record.id}
      FROM arrived, money
      WHERE least(arrived.cents, money.refundable) > 0
      ON CONFLICT (idempotency_key) DO NOTHING`);
    const row = await tx.maybeOne(sql.type(
      z.object({ amount_cents: z.number(), status: z.string(), gateway_id: z.string().nullable() }),
    )`
      SELECT amount_cents, status, gateway_id FROM payments WHERE idempotency_key = ${key}`);
    if (!row) return null;
    const captureId = await tx.maybeOneFirst(sql.type(z.object({ gateway_id: z.string().nullable() }))`
      SELECT gateway_id FROM payments WHERE order_id = ${record.order_id} AND kind = 'capture'`);
    return { amountCents: row.amount_cents, captureId, status: row.status, gatewayId: row.gateway_id };
  });
}

/** The refund is paid (or there was nothing to pay): its row succeeded, the return knows, and may close. */
export async function settleReturnRefund(
  db: Db,
  run: ReturnStepRun,
  record: ReturnRecord,
  paid: { key: string; gatewayId: string | null; amountCents: number },
): Promise<void> {
  await db.transaction(async (tx) => {
    await lockOrderAndReturn(tx, record);
    await tx.query(sql.typeAlias('void')`
      UPDATE payments SET status = 'refunded', gateway_id = ${paid.gatewayId}
      WHERE idempotency_key = ${paid.key} AND status = 'pending'`);
    await tx.query(sql.typeAlias('void')`
      UPDATE returns SET refunded_cents = ${paid.amountCents}, refunded_at = clock_timestamp(),
        updated_at = clock_timestamp()
      WHERE id = ${record.id} AND refunded_at IS NULL`);
    await recordSuccess(tx, run, { refundedCents: paid.amountCents, refundId: paid.gatewayId });
    await closeIfSettled(tx, record);
  });
}

/**
 * Puts the units received for restock back on sale: per item, a `return` movement (the outbox of
 * inventory events, so the flash-sale controller sees it) and the inventory row, from shipped to
 * available, in one transaction. A movement is made once per order, generation, SKU and kind (the unique
 * index of 001), and an order item has at most one return, so a retry moves nothing twice.
 */
export async function restockReturn(db: Db, run: ReturnStepRun, record: ReturnRecord): Promise<number> {
  return db.transaction(async (tx) => {
    await lockOrderAndReturn(tx, record);
    const order = await tx.one(sql.type(z.object({ region: z.string(), generation: z.number() }))`
      SELECT region, generation FROM orders WHERE id = ${record.order_id}`);
    let units = 0;
    // SKU order: the lock order of inventory rows everywhere (migration 003).
    const lines = record.items
      .filter((i) => i.disposition === 'restock' && (i.received_quantity ?? 0) > 0)
      .sort((a, b) => (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
    for (const line of lines) {
      const quantity = line.received_quantity ?? 0;
      const moved = await tx.maybeOne(sql.type(z.object({ available: z.number() }))`
        WITH locked AS (
          SELECT sku FROM inventory WHERE sku = ${line.sku} AND region = ${order.region} FOR UPDATE
        ), todo AS (
          SELECT 1 FROM locked WHERE NOT EXISTS (
            SELECT 1 FROM stock_movements
            WHERE order_id = ${record.order_id} AND generation = ${order.generation} AND sku = ${line.sku}
              AND region = ${order.region} AND kind = 'return')
        )
        UPDATE inventory SET available = available + ${quantity}, shipped = shipped - ${quantity}, updated_at = now()
        WHERE sku = ${line.sku} AND region = ${order.region} AND EXISTS (SELECT 1 FROM todo)
        RETURNING available`);
      if (!moved) continue;
      await tx.query(sql.typeAlias('void')`
        INSERT INTO stock_movements (order_id, generation, sku, region, kind, quantity, available_after)
        VALUES (${record.order_id}, ${order.generation}, ${line.sku}, ${order.region}, 'return', ${quantity},
                ${moved.available})`);
      units += quantity;
    }
    await tx.query(sql.typeAlias('void')`
      UPDATE returns SET restocked_at = clock_timestamp(), updated_at = clock_timestamp()
      WHERE id = ${record.id} AND restocked_at IS NULL`);
    await recordSuccess(tx, run, { restockedUnits: units });
    await closeIfSettled(tx, record);
    return units;
  });
}

async function lockOrderAndReturn(tx: Tx, record: ReturnRecord): Promise<void> {
  await tx.query(sql.typeAlias('void')`SELECT FROM orders WHERE id = ${record.order_id} FOR UPDATE`);
  await tx.query(sql.typeAlias('void')`SELECT FROM returns WHERE id = ${record.id} FOR UPDATE`);
}

/** Refund paid and restock done: the return is closed, its last status. */
async function closeIfSettled(tx: Tx, record: ReturnRecord): Promise<void> {
  await tx.query(sql.typeAlias('void')`
    UPDATE returns SET status = 'closed', ended_at = clock_timestamp(), updated_at = clock_timestamp()
    WHERE id = ${record.id} AND status = 'received' AND refunded_at IS NOT NULL AND restocked_at IS NOT NULL`);
  await touchOrder(tx, record.order_id);
}
