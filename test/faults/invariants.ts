import { z } from 'zod';
import { findIllegalTransition, isTerminal, type OrderStatus, orderStatuses } from '../../domain/order-status.ts';
import { type Db, sql } from '../../sql/database.ts';

// SPEC §8, checked once the system is quiet. Money is counted at the sandbox gateway, not in our own
// tables: the point is what the card holder sees, whatever our ledger believes.

export type StockRow = {
  sku: string;
  region: string;
  on_hand: number;
  available: number;
  reserved: number;
  shipped: number;
};
export type Check = { name: string; failures: number; examples: string[] };
export type InvariantReport = {
  checks: Check[];
  lost: number;
  doubleCaptures: number;
  conservationErrors: number;
};

export type GatewayStats = {
  byReference: Record<
    string,
    { captures: number; captureKeys: number; capturedAmount: number; refunds: number; refundedAmount: number }
  >;
};
type GatewayAuthorizations = {
  data: Array<{ reference: string; status: string; voided: boolean; capturedAmount: number; id: string }>;
};
type CarrierStats = { byReference: Record<string, { shipments: number; cancellations: number }> };

const orderRow = z.object({ id: z.string(), status: z.enum(orderStatuses), total_cents: z.number() });
const historyRow = z.object({
  order_id: z.string(),
  from_status: z.enum(orderStatuses).nullable(),
  to_status: z.enum(orderStatuses),
});
export const stockRow = z.object({
  sku: z.string(),
  region: z.string(),
  on_hand: z.number(),
  available: z.number(),
  reserved: z.number(),
  shipped: z.number(),
});
const EXAMPLES = 8;

export async function readStock(db: Db): Promise<StockRow[]> {
  return [
    ...(await db.any(sql.type(stockRow)`
      SELECT sku, region, on_hand, available, reserved, shipped FROM inventory ORDER BY sku, region`)),
  ];
}

export async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return (await response.json()) as T;
}

function check(name: string, problems: string[]): Check {
  return { name, failures: problems.length, examples: problems.slice(0, EXAMPLES) };
}

export async function checkInvariants(options: {
  db: Db;
  gatewayUrl: string;
  carrierUrl: string;
  accepted: string[];
  initialStock: StockRow[];
  restocked: Record<string, number>;
}): Promise<InvariantReport> {
  const { db } = options;
  const orders = new Map(
    (await db.any(sql.type(orderRow)`SELECT id::text, status, total_cents FROM orders`)).map((o) => [o.id, o]),
  );
  const gateway = await getJson<GatewayStats>(`${options.gatewayUrl}/_sandbox/stats`);
  const authorizations = await getJson<GatewayAuthorizations>(`${options.gatewayUrl}/v1/authorizations`);
  const carrier = await getJson<CarrierStats>(`${options.carrierUrl}/_sandbox/stats`);
  // What the database holds as refunded per order: a COMPLETED order keeps its total less its returns'.
  const refunded = new Map(
    (
      await db.any(sql.type(z.object({ order_id: z.string(), cents: z.number() }))`
        SELECT order_id::text, sum(amount_cents)::int AS cents FROM payments
        WHERE kind = 'refund' AND status = 'refunded' GROUP BY order_id`)
    ).map((r) => [r.order_id, r.cents]),
  );

  const lost = options.accepted.filter((id) => !orders.has(id) || !isTerminal(orders.get(id)!.status));
  const stray = [...orders.values()].filter((o) => !isTerminal(o.status)).map((o) => `${o.id} is ${o.status}`);

  const doubleCaptures: string[] = [];
  const money: string[] = [];
  const liveAuths: string[] = [];
  const labels: string[] = [];
  for (const [reference, s] of Object.entries(gateway.byReference)) {
    if (s.captures > 1 || s.captureKeys > 1) {
      doubleCaptures.push(`${reference}: ${s.captures} captures with ${s.captureKeys} keys`);
    }
    if (s.refundedAmount > s.capturedAmount)
      money.push(`${reference}: refunded ${s.refundedAmount} > captured ${s.capturedAmount}`);
    if (!orders.has(reference)) money.push(`${reference}: the gateway knows it, the database does not`);
  }
  for (const auth of authorizations.data) {
    const order = orders.get(auth.reference);
    if (auth.status === 'authorized' && !auth.voided && auth.capturedAmount === 0) {
      liveAuths.push(`${auth.reference} (${order?.status}): authorization ${auth.id} neither voided nor captured`);
    }
  }
  for (const order of orders.values()) {
    const s = gateway.byReference[order.id];
    const kept = (s?.capturedAmount ?? 0) - (s?.refundedAmount ?? 0);
    const parcels = carrier.byReference[order.id] ?? { shipments: 0, cancellations: 0 };
    if (order.status === 'COMPLETED') {
      const returned = refunded.get(order.id) ?? 0;
      if (s?.captures !== 1 || kept !== order.total_cents - returned || (s?.refundedAmount ?? 0) !== returned) {
        money.push(
          `${order.id} COMPLETED: ${s?.captures ?? 0} captures, kept ${kept} of ${order.total_cents}; ` +
            `refunded ${s?.refundedAmount ?? 0} at the gateway, ${returned} in the database (returns)`,
        );
      }
      if (parcels.shipments - parcels.cancellations !== 1)
        labels.push(`${order.id} COMPLETED: ${JSON.stringify(parcels)}`);
    } else if (isTerminal(order.status)) {
      if (kept !== 0)
        money.push(`${order.id} ${order.status}: captured ${s?.capturedAmount}, refunded ${s?.refundedAmount}`);
      if (parcels.shipments !== parcels.cancellations)
        labels.push(`${order.id} ${order.status}: ${JSON.stringify(parcels)}`);
    }
  }

  const conservation = await checkStock(db, options.initialStock, options.restocked);
  const history = await checkHistory(db, orders);
  const poison = await checkPoison(db);
  const undocumented = (
    await db.any(sql.type(z.object({ id: z.string() }))`
    SELECT o.id::text FROM orders o WHERE o.status = 'FAILED' AND NOT EXISTS (
      SELECT 1 FROM dead_letters d WHERE d.order_id = o.id::text AND d.generation = o.generation)`)
  ).map((r) => r.id);
  return {
    checks: [
      check(
        'every order answered 201 is terminal (lost)',
        lost.map((id) => `${id}: ${orders.get(id)?.status ?? 'not in the database'}`),
      ),
      check('every stored order is terminal', stray),
      check('at most one capture per order, with one key (gateway)', doubleCaptures),
      check(
        'refunds <= captures; COMPLETED charged once, keeps its total less its returns’ refunds (gateway = ' +
          'database); FAILED/CANCELLED refunded (gateway)',
        money,
      ),
      check('no authorization left neither voided nor captured (gateway)', liveAuths),
      check('one label kept per COMPLETED order, none for the others (carrier)', labels),
      check('stock conserved per SKU and region', conservation),
      check('history replays along the state machine to the final status', history),
      check('the poison job (no such order) is parked at its first attempt', poison),
      check(
        'every FAILED order has a dead letter for its generation',
        undocumented.map((id) => `${id}: none`),
      ),
    ],
    lost: lost.length,
    doubleCaptures: doubleCaptures.length,
    conservationErrors: conservation.length,
  };
}

const units = z.object({ sku: z.string(), region: z.string(), units: z.number() });
const byKey = (rows: readonly z.infer<typeof units>[]) => new Map(rows.map((r) => [`${r.sku}/${r.region}`, r.units]));

/**
 * on_hand = available + reserved + shipped, nothing left reserved, on_hand as at the start plus the
 * restocks, and the units shipped are exactly those of the COMPLETED orders less those their returns
 * brought back for restock (received with disposition `restock`), each with its `return` movement.
 */
async function checkStock(db: Db, initial: StockRow[], restocked: Record<string, number>): Promise<string[]> {
  const shippedByCompleted = byKey(
    await db.any(sql.type(units)`
      SELECT i.sku, o.region, sum(i.quantity)::int AS units FROM order_items i JOIN orders o ON o.id = i.order_id
      WHERE o.status = 'COMPLETED' GROUP BY i.sku, o.region`),
  );
  const restockedReturns = byKey(
    await db.any(sql.type(units)`
      SELECT i.sku, o.region, sum(i.received_quantity)::int AS units
      FROM return_items i JOIN returns r ON r.id = i.return_id JOIN orders o ON o.id = r.order_id
      WHERE i.disposition = 'restock' AND r.status = 'closed' GROUP BY i.sku, o.region`),
  );
  const returnMovements = byKey(
    await db.any(sql.type(units)`
      SELECT sku, region, sum(quantity)::int AS units FROM stock_movements WHERE kind = 'return' GROUP BY sku, region`),
  );
  const before = new Map(initial.map((r) => [`${r.sku}/${r.region}`, r]));
  const problems: string[] = [];
  for (const row of await readStock(db)) {
    const key = `${row.sku}/${row.region}`;
    const start = before.get(key);
    const wrong: string[] = [];
    if (row.on_hand !== row.available + row.reserved + row.shipped)
      wrong.push('on_hand != available + reserved + shipped');
    if (row.available < 0) wrong.push('available < 0');
    if (row.reserved !== 0) wrong.push(`${row.reserved} still reserved`);
    const expectedOnHand = (start?.on_hand ?? 0) + (restocked[key] ?? 0);
    if (row.on_hand !== expectedOnHand) wrong.push(`on_hand ${row.on_hand}, expected ${expectedOnHand}`);
    const shipped = row.shipped - (start?.shipped ?? 0);
    const back = restockedReturns.get(key) ?? 0;
    const expected = (shippedByCompleted.get(key) ?? 0) - back;
    if (shipped !== expected) {
      wrong.push(`shipped ${shipped} units, COMPLETED orders hold ${expected} (${back} restocked by returns)`);
    }
    const moved = returnMovements.get(key) ?? 0;
    if (moved !== back) wrong.push(`${moved} units in return movements, ${back} restocked by closed returns`);
    if (wrong.length > 0) problems.push(`${key}: ${wrong.join('; ')} (${JSON.stringify(row)})`);
  }
  return problems;
}

async function checkHistory(db: Db, orders: Map<string, { status: OrderStatus }>): Promise<string[]> {
  const rows = await db.any(sql.type(historyRow)`
    SELECT order_id::text, from_status, to_status FROM order_history ORDER BY id`);
  const byOrder = new Map<string, Array<{ from: OrderStatus | null; to: OrderStatus }>>();
  for (const r of rows) {
    const list = byOrder.get(r.order_id) ?? [];
    byOrder.set(r.order_id, list);
    list.push({ from: r.from_status, to: r.to_status });
  }
  const problems: string[] = [];
  for (const [id, order] of orders) {
    const history = byOrder.get(id) ?? [];
    const illegal = findIllegalTransition(history);
    if (illegal) problems.push(`${id}: step ${illegal.index} ${illegal.from} -> ${illegal.to} is illegal`);
    else if (history.at(-1)?.to !== order.status)
      problems.push(`${id}: history ends at ${history.at(-1)?.to}, order is ${order.status}`);
  }
  return problems;
}

// A job for an order that does not exist cannot get better by retrying: its first attempt ends it.
async function checkPoison(db: Db): Promise<string[]> {
  const attempts = 1;
  const rows = await db.any(sql.type(z.object({ status: z.string(), attempts: z.number(), step: z.string() }))`
    SELECT status, attempts, step FROM dead_letters WHERE order_id = 'poison'`);
  if (rows.length !== 1) return [`${rows.length} dead letters for the poison job, expected 1`];
  const [row] = rows;
  if (row!.status !== 'parked' || row!.attempts !== attempts) {
    return [`poison dead letter is ${row!.status} after ${row!.attempts} attempts, expected parked after ${attempts}`];
  }
  return [];
}
