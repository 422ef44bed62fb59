import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

// Returns (SPEC §5, migration 008): the return rows and their items, and what receipt, cancellation and
// expiry do to them. Quotes and the return a token creates are in sql/return-quotes.ts, the saga's steps
// (label, refund, restock) in sql/return-steps.ts.

export const returnStatuses = ['requested', 'awaiting_receipt', 'received', 'closed', 'cancelled', 'expired'] as const;
export type ReturnStatus = (typeof returnStatuses)[number];
export const dispositions = ['restock', 'damaged', 'missing'] as const;
export type Disposition = (typeof dispositions)[number];

const returnRow = z.object({
  id: z.coerce.number(),
  rma: z.string(),
  order_id: z.string(),
  customer_id: z.string(),
  status: z.enum(returnStatuses),
  reason: z.string(),
  quoted_cents: z.number(),
  refunded_cents: z.number().nullable(),
  label_carrier: z.string().nullable(),
  label_tracking_number: z.string().nullable(),
  label_url: z.string().nullable(),
  created_at: z.number(),
  updated_at: z.number(),
  received_at: z.number().nullable(),
  refunded_at: z.number().nullable(),
  restocked_at: z.number().nullable(),
  ended_at: z.number().nullable(),
});
const itemRow = z.object({
  return_id: z.coerce.number(),
  sku: z.string(),
  name: z.string(),
  quantity: z.number(),
  unit_price_cents: z.number(),
  refund_cents: z.number(),
  received_quantity: z.number().nullable(),
  disposition: z.enum(dispositions).nullable(),
});
export type ReturnRecord = z.infer<typeof returnRow> & { items: Array<z.infer<typeof itemRow>> };

const returnColumns = sql.fragment`
  r.id, r.rma, r.order_id::text, r.customer_id, r.status, r.reason, r.quoted_cents, r.refunded_cents, r.label_carrier,
  r.label_tracking_number, r.label_url, r.created_at, r.updated_at, r.received_at, r.refunded_at, r.restocked_at,
  r.ended_at`;

async function withItems(db: Db | Tx, rows: ReadonlyArray<z.infer<typeof returnRow>>): Promise<ReturnRecord[]> {
  if (rows.length === 0) return [];
  const items = await db.any(sql.type(itemRow)`
    SELECT i.return_id, i.sku, o.name, i.quantity, o.unit_price_cents, i.refund_cents, i.received_quantity,
           i.disposition
    FROM return_items i JOIN order_items o ON o.order_id = i.order_id AND o.sku = i.sku
    WHERE i.return_id = ANY(${sql.array(
      rows.map((r) => r.id),
      'int8',
    )})
    ORDER BY i.return_id, i.sku`);
  return rows.map((row) => ({ ...row, items: items.filter((i) => i.return_id === row.id) }));
}

export async function findReturn(db: Db | Tx, rma: string): Promise<ReturnRecord | null> {
  const row = await db.maybeOne(sql.type(returnRow)`SELECT ${returnColumns} FROM returns r WHERE r.rma = ${rma}`);
  return row ? ((await withItems(db, [row]))[0] ?? null) : null;
}

export async function listOrderReturns(db: Db | Tx, orderId: string): Promise<ReturnRecord[]> {
  const rows = await db.any(sql.type(returnRow)`
    SELECT ${returnColumns} FROM returns r WHERE r.order_id = ${orderId} ORDER BY r.id`);
  return withItems(db, rows);
}

/** Newest first, optionally of one status; `before` is the last id of the previous page. */
export async function listReturns(
  db: Db,
  q: { status?: ReturnStatus; limit: number; before?: number },
): Promise<ReturnRecord[]> {
  const rows = await db.any(sql.type(returnRow)`
    SELECT ${returnColumns} FROM returns r
    WHERE (${q.status ?? null}::text IS NULL OR r.status = ${q.status ?? null})
      AND (${q.before ?? null}::bigint IS NULL OR r.id < ${q.before ?? null})
    ORDER BY r.id DESC LIMIT ${q.limit}`);
  return withItems(db, rows);
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A return as the API answers it (api/return-view.ts has its schema). An order item's id is its SKU. */
export function returnView(r: ReturnRecord) {
  return {
    rma: r.rma,
    orderId: r.order_id,
    status: r.status,
    reason: r.reason,
    refundCents: r.quoted_cents,
    refundedCents: r.refunded_cents,
    items: r.items.map((i) => ({
      orderItemId: i.sku,
      sku: i.sku,
      name: i.name,
      quantity: i.quantity,
      refundCents: i.refund_cents,
      receivedQuantity: i.received_quantity,
      disposition: i.disposition,
    })),
    label: r.label_tracking_number
      ? { carrier: r.label_carrier, trackingNumber: r.label_tracking_number, url: r.label_url }
      : null,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
    receivedAt: iso(r.received_at),
    refundedAt: iso(r.refunded_at),
    restockedAt: iso(r.restocked_at),
    endedAt: iso(r.ended_at),
    links: { self: `/returns/${r.rma}`, order: `/orders/${r.order_id}` },
  };
}
export type ReturnView = ReturnType<typeof returnView>;

/**
 * Locks the return for a change, the order's row first (the lock order of every write to an order,
 * migration 003); null when there is no such return.
 */
export async function lockReturn(tx: Tx, rma: string): Promise<ReturnRecord | null> {
  const orderId = await tx.maybeOneFirst(sql.type(z.object({ order_id: z.string() }))`
    SELECT order_id::text FROM returns WHERE rma = ${rma}`);
  if (orderId === null) return null;
  await tx.query(sql.typeAlias('void')`SELECT FROM orders WHERE id = ${orderId} FOR UPDATE`);
  await tx.query(sql.typeAlias('void')`SELECT FROM returns WHERE rma = ${rma} FOR UPDATE`);
  return findReturn(tx, rma);
}

/** Records what arrived: each item's received units and disposition; unlisted items arrived not at all. */
export async function markReceived(
  tx: Tx,
  record: ReturnRecord,
  lines: ReadonlyArray<{ sku: string; quantity: number; disposition: Disposition }>,
): Promise<void> {
  for (const item of record.items) {
    const line = lines.find((l) => l.sku === item.sku);
    await tx.query(sql.typeAlias('void')`
      UPDATE return_items SET received_quantity = ${line?.quantity ?? 0}, disposition = ${line?.disposition ?? 'missing'}
      WHERE return_id = ${record.id} AND sku = ${item.sku}`);
  }
  await tx.query(sql.typeAlias('void')`
    UPDATE returns SET status = 'received', received_at = clock_timestamp(), updated_at = clock_timestamp()
    WHERE id = ${record.id} AND status IN ('requested', 'awaiting_receipt')`);
  await touchOrder(tx, record.order_id);
}

/** Ends a return that nothing was received for (cancelled, expired): its items may be returned again. */
export async function endUnreceived(tx: Tx, record: ReturnRecord, status: 'cancelled' | 'expired'): Promise<void> {
  await tx.query(sql.typeAlias('void')`
    UPDATE returns SET status = ${status}, ended_at = clock_timestamp(), updated_at = clock_timestamp()
    WHERE id = ${record.id} AND status IN ('requested', 'awaiting_receipt')`);
  await tx.query(sql.typeAlias('void')`UPDATE return_items SET active = false WHERE return_id = ${record.id}`);
  await touchOrder(tx, record.order_id);
}

/** A change to an order's returns is a change to the order (its view, the reconciler's clock). */
export async function touchOrder(tx: Tx, orderId: string): Promise<void> {
  await tx.query(sql.typeAlias('void')`UPDATE orders SET updated_at = now() WHERE id = ${orderId}`);
}

/** Returns still waiting for their parcel whose receipt deadline (created_at + days) is before `now`. */
export async function findOverdueReturns(db: Db, now: number, receiptDays: number, limit: number) {
  return db.any(sql.type(z.object({ rma: z.string() }))`
    SELECT rma FROM returns
    WHERE status IN ('requested', 'awaiting_receipt')
      AND created_at < to_timestamp(${now / 1000}) - make_interval(days => ${receiptDays})
    ORDER BY created_at LIMIT ${limit}`);
}

/**
 * Returns whose next saga step should have run by now (its job lost with Redis, or never enqueued):
 * requested without a label, or received and not closed, untouched for `quietMs`.
 */
export async function findStalledReturns(db: Db, now: number, quietMs: number, limit: number) {
  return db.any(sql.type(z.object({ rma: z.string(), status: z.enum(returnStatuses) }))`
    SELECT rma, status FROM returns
    WHERE status IN ('requested', 'received') AND updated_at < to_timestamp(${(now - quietMs) / 1000})
    ORDER BY updated_at LIMIT ${limit}`);
}
