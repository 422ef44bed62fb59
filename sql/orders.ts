import { z } from 'zod';
import { type OrderStatus, orderStatuses, statusesBefore } from '../domain/order-status.ts';
import { type Db, sql, type Tx } from './database.ts';
import type { IdempotentAnswer } from './idempotency-keys.ts';

const address = z.object({
  name: z.string(),
  line1: z.string(),
  line2: z.string().optional(),
  city: z.string(),
  postalCode: z.string(),
  country: z.string(),
});
export type Address = z.infer<typeof address>;

const orderRow = z.object({
  id: z.string(),
  customer_id: z.string(),
  status: z.enum(orderStatuses),
  region: z.string(),
  currency: z.string(),
  total_cents: z.number(),
  shipping_address: address,
  payment_token: z.string(),
  failure_reason: z.string().nullable(),
  failed_step: z.string().nullable(),
  generation: z.number(),
  enqueue_round: z.number(),
  created_at: z.number(),
  updated_at: z.number(),
});
const itemRow = z.object({
  sku: z.string(),
  name: z.string(),
  quantity: z.number(),
  unit_price_cents: z.number(),
  final_sale: z.boolean(),
});
const historyRow = z.object({
  from_status: z.enum(orderStatuses).nullable(),
  to_status: z.enum(orderStatuses),
  actor: z.string(),
  reason: z.string(),
  at: z.number(),
});

export type OrderRow = z.infer<typeof orderRow>;
export type OrderItem = z.infer<typeof itemRow>;
export type Order = OrderRow & { items: OrderItem[] };
export type HistoryEntry = z.infer<typeof historyRow>;

/** An order as the pipeline's steps see it: what does not change once it is placed. */
export const orderSnapshot = z.object({
  id: z.string(),
  customerId: z.string(),
  customerEmail: z.string(),
  region: z.string(),
  currency: z.string(),
  totalCents: z.number(),
  shippingAddress: address,
  paymentToken: z.string(),
  items: z.array(z.object({ sku: z.string(), name: z.string(), quantity: z.number(), unitPriceCents: z.number() })),
});
export type OrderSnapshot = z.infer<typeof orderSnapshot>;
const storedSnapshot = z.object({ snapshot: orderSnapshot });

/** The snapshot of a stored order, for a job enqueued again (the reconciler, a retried order). */
export async function loadOrderSnapshot(db: Db | Tx, orderId: string): Promise<OrderSnapshot | null> {
  return db.maybeOneFirst(sql.type(storedSnapshot)`
    SELECT order_snapshot(id) AS snapshot FROM orders WHERE id = ${orderId}`);
}

export type NewOrder = {
  id: string;
  customerId: string;
  region: string;
  currency: string;
  totalCents: number;
  shippingAddress: Address;
  paymentToken: string;
  items: OrderItem[];
};

/** Why insertOrder stored nothing: the lines' prices are not the catalog's any more, or the key is taken. */
export type InsertOrderResult =
  | { placed: true; snapshot: OrderSnapshot }
  | { placed: false; reason: 'prices_changed' | 'key_taken' };

/**
 * Stores a new order, its lines and its first history row, and with `claim` the request's
 * Idempotency-Key with its answer: one call of place_order (migration 009), so one round trip and one
 * commit (the statement is its own transaction, or part of the caller's), planned once per connection. It stores nothing unless every line still has the name,
 * price, currency and final-sale flag of the catalog and is stocked in the region (so a caller may price
 * from a cache), and, with a key, unless the key is free. Returns the order as the pipeline's steps see
 * it.
 */
export async function insertOrder(
  db: Db | Tx,
  order: NewOrder,
  actor: string,
  claim?: IdempotentAnswer & { requestHash: string; staleAfterMs: number },
): Promise<InsertOrderResult> {
  const claimed = claim
    ? sql.jsonb({
        apiKeyId: claim.apiKeyId,
        key: claim.key,
        requestHash: claim.requestHash,
        status: claim.status,
        body: claim.body as never,
        staleAfterMs: claim.staleAfterMs,
      })
    : null;
  const { result } = await db.one(sql.type(insertedRow)`
    SELECT place_order(${order.id}, ${order.customerId}, ${order.region}, ${order.currency}, ${order.totalCents},
      ${sql.jsonb(order.shippingAddress)}, ${order.paymentToken},
      ${sql.jsonb(order.items)}, ${actor}, ${claimed}::jsonb) AS result`);
  if (!result.placed) return { placed: false, reason: result.priced ? 'key_taken' : 'prices_changed' };
  return {
    placed: true,
    snapshot: {
      id: order.id,
      customerId: order.customerId,
      customerEmail: result.email!, // the order's foreign key says the customer exists
      region: order.region,
      currency: order.currency,
      totalCents: order.totalCents,
      shippingAddress: order.shippingAddress,
      paymentToken: order.paymentToken,
      items: [...order.items]
        .sort((a, b) => (a.sku < b.sku ? -1 : 1))
        .map((i) => ({ sku: i.sku, name: i.name, quantity: i.quantity, unitPriceCents: i.unit_price_cents })),
    },
  };
}
const insertedRow = z.object({
  result: z.object({ priced: z.boolean(), placed: z.boolean(), email: z.string().nullable() }),
});

export async function findOrder(db: Db | Tx, orderId: string, customerId?: string): Promise<Order | null> {
  const row = await db.maybeOne(sql.type(orderRow)`
    SELECT * FROM orders
    WHERE id = ${orderId} ${customerId === undefined ? sql.fragment`` : sql.fragment`AND customer_id = ${customerId}`}`);
  if (!row) return null;
  const items = await db.any(sql.type(itemRow)`
    SELECT sku, name, quantity, unit_price_cents, final_sale FROM order_items WHERE order_id = ${orderId} ORDER BY sku`);
  return { ...row, items: [...items] };
}

export async function listHistory(db: Db, orderId: string): Promise<readonly HistoryEntry[]> {
  return db.any(sql.type(historyRow)`
    SELECT from_status, to_status, actor, reason, at FROM order_history WHERE order_id = ${orderId} ORDER BY id`);
}

/** Locks the order row for the rest of the transaction and returns its status. */
export async function lockOrder(tx: Tx, orderId: string): Promise<OrderStatus> {
  return tx.oneFirst(sql.type(z.object({ status: z.enum(orderStatuses) }))`
    SELECT status FROM orders WHERE id = ${orderId} FOR UPDATE`);
}

export type Transition = {
  orderId: string;
  to: OrderStatus;
  actor: string;
  reason: string;
  failure?: { reason: string; step: string };
};

/**
 * Moves an order along the state machine and appends the history row, in one statement (under the
 * order's row lock). Returns false when the move is not legal from the order's current status.
 */
export async function transitionOrder(db: Db | Tx, t: Transition): Promise<boolean> {
  return db.oneFirst(sql.type(moved)`
    SELECT move_order(${t.orderId}, ${t.to}, ${sql.array([...statusesBefore(t.to)], 'text')}, ${t.actor}, ${t.reason},
                      ${t.failure?.reason ?? null}, ${t.failure?.step ?? null}) AS moved`);
}
const moved = z.object({ moved: z.boolean() });

/** Retries a FAILED order as a new generation (FAILED → PENDING); returns the new generation. */
export async function reopenFailedOrder(
  tx: Tx,
  r: { orderId: string; generation: number; actor: string; reason: string },
): Promise<number | null> {
  const status = await lockOrder(tx, r.orderId);
  const current = await tx.oneFirst(sql.type(z.object({ generation: z.number() }))`
    SELECT generation FROM orders WHERE id = ${r.orderId}`);
  if (status !== 'FAILED' || current !== r.generation) return null;
  await transitionOrder(tx, { orderId: r.orderId, to: 'PENDING', actor: r.actor, reason: r.reason });
  return tx.oneFirst(sql.type(z.object({ generation: z.number() }))`
    UPDATE orders SET generation = generation + 1, enqueue_round = 0 WHERE id = ${r.orderId} RETURNING generation`);
}

const summaryRow = z.object({
  id: z.string(),
  status: z.enum(orderStatuses),
  currency: z.string(),
  total_cents: z.number(),
  items: z.number(),
  created_at: z.number(),
});
export type OrderSummary = z.infer<typeof summaryRow>;

/** A customer's orders, newest first; `before` continues after the last order of a previous page. */
export async function listRecentOrders(
  db: Db,
  customerId: string,
  limit: number,
  before?: { createdAt: number; id: string },
): Promise<readonly OrderSummary[]> {
  const after = before
    ? sql.fragment`AND (o.created_at, o.id) < (${sql.timestamp(new Date(before.createdAt))}, ${before.id})`
    : sql.fragment``;
  return db.any(sql.type(summaryRow)`
    SELECT o.id::text, o.status, o.currency, o.total_cents, o.created_at,
           (SELECT coalesce(sum(quantity), 0)::int FROM order_items i WHERE i.order_id = o.id) AS items
    FROM orders o WHERE o.customer_id = ${customerId} ${after}
    ORDER BY o.created_at DESC, o.id DESC LIMIT ${limit}`);
}

/** Serialises one customer's orders of one SKU in a region, for the purchase-limit check. */
export async function lockCustomerSku(tx: Tx, customerId: string, sku: string, region: string): Promise<void> {
  await tx.query(sql.type(z.object({ locked: z.number() }))`
    SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtext(${`${customerId}|${sku}|${region}`}))) AS l`);
}

/** Units of a SKU this customer ordered in a region since a moment, orders that did not fail or cancel. */
export async function unitsOrderedSince(
  db: Db | Tx,
  q: { customerId: string; sku: string; region: string; since: Date },
): Promise<number> {
  return db.oneFirst(sql.type(z.object({ units: z.number() }))`
    SELECT coalesce(sum(i.quantity), 0)::int AS units
    FROM order_items i JOIN orders o ON o.id = i.order_id
    WHERE o.customer_id = ${q.customerId} AND i.sku = ${q.sku} AND o.region = ${q.region}
      AND o.created_at >= ${sql.timestamp(q.since)} AND o.status NOT IN ('FAILED', 'CANCELLED')`);
}
