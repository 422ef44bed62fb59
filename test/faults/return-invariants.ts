import { z } from 'zod';
import { type Db, sql } from '../../sql/database.ts';
import { type Check, type GatewayStats, getJson } from './invariants.ts';

// The returns' side of SPEC §8 (issue 10), once the system is quiet: one refund per return whatever was
// retried, refunds never above captures (in the database and at the gateway), at most one live return per
// order item (invariant 5), and every received return closed, refunded for what arrived.

export type ReturnCounts = { created: number; closed: number; cancelled: number; expired: number; open: number };
export type RefundCounts = { count: number; amountCents: number; gatewayCount: number; gatewayAmountCents: number };
export type ReturnReport = {
  checks: Check[];
  returns: ReturnCounts;
  refunds: RefundCounts;
  doubleRefunds: number;
  refundsOverCaptures: number;
};

const EXAMPLES = 8;
const check = (name: string, problems: string[]): Check => ({
  name,
  failures: problems.length,
  examples: problems.slice(0, EXAMPLES),
});

const orderMoney = z.object({
  order_id: z.string(),
  captured: z.number(),
  /** Refund rows not failed (pending ones count: their money may be on its way). */
  refunds_open: z.number(),
  refunded_rows: z.number(),
  refunded: z.number(),
});
const receivedReturn = z.object({
  rma: z.string(),
  order_id: z.string(),
  status: z.string(),
  refunded_cents: z.number().nullable(),
  arrived_cents: z.number(),
  /** What the order's other refunds left to refund: the cap of this one. */
  refundable_cents: z.number(),
  paid_cents: z.number().nullable(),
  paid_status: z.string().nullable(),
  restock_units: z.number(),
  moved_units: z.number(),
});

export async function checkReturns(options: { db: Db; gatewayUrl: string }): Promise<ReturnReport> {
  const { db } = options;
  const gateway = await getJson<GatewayStats>(`${options.gatewayUrl}/_sandbox/stats`);
  const statuses = Object.fromEntries(
    (
      await db.any(sql.type(z.object({ status: z.string(), n: z.number() }))`
        SELECT status, count(*)::int AS n FROM returns GROUP BY status`)
    ).map((r) => [r.status, r.n]),
  );
  const returns: ReturnCounts = {
    created: Object.values(statuses).reduce((a, b) => a + b, 0),
    closed: statuses.closed ?? 0,
    cancelled: statuses.cancelled ?? 0,
    expired: statuses.expired ?? 0,
    open: (statuses.requested ?? 0) + (statuses.awaiting_receipt ?? 0) + (statuses.received ?? 0),
  };

  const money = await db.any(sql.type(orderMoney)`
    SELECT order_id::text,
           coalesce(sum(amount_cents) FILTER (WHERE kind = 'capture' AND status = 'captured'), 0)::int AS captured,
           coalesce(sum(amount_cents) FILTER (WHERE kind = 'refund' AND status <> 'failed'), 0)::int AS refunds_open,
           count(*) FILTER (WHERE kind = 'refund' AND status = 'refunded')::int AS refunded_rows,
           coalesce(sum(amount_cents) FILTER (WHERE kind = 'refund' AND status = 'refunded'), 0)::int AS refunded
    FROM payments GROUP BY order_id`);
  const returnOrders = new Set(
    (await db.any(sql.type(z.object({ order_id: z.string() }))`SELECT DISTINCT order_id::text FROM returns`)).map(
      (r) => r.order_id,
    ),
  );
  const refunds = await db.one(sql.type(z.object({ n: z.number(), cents: z.number() }))`
    SELECT count(*)::int AS n, coalesce(sum(amount_cents), 0)::int AS cents FROM payments
    WHERE kind = 'refund' AND return_id IS NOT NULL AND status = 'refunded'`);
  const refundCounts: RefundCounts = {
    count: refunds.n,
    amountCents: refunds.cents,
    gatewayCount: 0,
    gatewayAmountCents: 0,
  };

  // One refund row per return (its key is derived from the RMA), and one refund at the gateway per row.
  const doubles = (
    await db.any(sql.type(z.object({ rma: z.string(), order_id: z.string(), n: z.number() }))`
      SELECT r.rma, r.order_id::text, count(*)::int AS n FROM payments p JOIN returns r ON r.id = p.return_id
      WHERE p.kind = 'refund' AND p.status <> 'failed' GROUP BY r.rma, r.order_id HAVING count(*) > 1`)
  ).map((r) => `${r.rma} (order ${r.order_id}): ${r.n} refund rows in the database`);
  const over: string[] = [];
  for (const m of money) {
    const g = gateway.byReference[m.order_id];
    if (returnOrders.has(m.order_id)) {
      refundCounts.gatewayCount += g?.refunds ?? 0;
      refundCounts.gatewayAmountCents += g?.refundedAmount ?? 0;
      if ((g?.refunds ?? 0) > m.refunded_rows) {
        doubles.push(
          `order ${m.order_id}: ${g?.refunds} refunds at the gateway for ${m.refunded_rows} in the database`,
        );
      }
    }
    if (m.refunds_open > m.captured)
      over.push(`${m.order_id}: refunds ${m.refunds_open} > captured ${m.captured} (database)`);
    if (g && g.refundedAmount > g.capturedAmount) {
      over.push(`${m.order_id}: refunded ${g.refundedAmount} > captured ${g.capturedAmount} (gateway)`);
    }
  }

  const twiceActive = (
    await db.any(sql.type(z.object({ order_id: z.string(), sku: z.string(), rmas: z.string() }))`
      SELECT i.order_id::text, i.sku, string_agg(r.rma, ', ') AS rmas FROM return_items i JOIN returns r ON r.id = i.return_id
      WHERE r.status NOT IN ('cancelled', 'expired') GROUP BY i.order_id, i.sku HAVING count(*) > 1`)
  ).map((r) => `${r.order_id} ${r.sku}: live returns ${r.rmas}`);
  const activeFlags = (
    await db.any(sql.type(z.object({ rma: z.string(), order_id: z.string(), status: z.string() }))`
      SELECT r.rma, r.order_id::text, r.status FROM return_items i JOIN returns r ON r.id = i.return_id
      WHERE i.active <> (r.status NOT IN ('cancelled', 'expired'))`)
  ).map((r) => `${r.rma} (order ${r.order_id}) is ${r.status}, its items' active flag says otherwise`);

  const received = await db.any(sql.type(receivedReturn)`
    SELECT r.rma, r.order_id::text, r.status, r.refunded_cents,
           (SELECT coalesce(sum(i.received_quantity * o.unit_price_cents), 0)::int
              FROM return_items i JOIN order_items o ON o.order_id = i.order_id AND o.sku = i.sku
             WHERE i.return_id = r.id AND i.disposition IN ('restock', 'damaged')) AS arrived_cents,
           (SELECT (coalesce(sum(amount_cents) FILTER (WHERE kind = 'capture' AND status = 'captured'), 0)
                  - coalesce(sum(amount_cents) FILTER (WHERE kind = 'refund' AND status <> 'failed'
                                                       AND return_id IS DISTINCT FROM r.id), 0))::int
              FROM payments WHERE order_id = r.order_id) AS refundable_cents,
           p.amount_cents AS paid_cents, p.status AS paid_status,
           (SELECT coalesce(sum(i.received_quantity), 0)::int FROM return_items i
             WHERE i.return_id = r.id AND i.disposition = 'restock') AS restock_units,
           (SELECT coalesce(sum(m.quantity), 0)::int FROM stock_movements m JOIN return_items i
                ON i.order_id = m.order_id AND i.sku = m.sku
             WHERE i.return_id = r.id AND m.kind = 'return') AS moved_units
    FROM returns r LEFT JOIN payments p ON p.return_id = r.id AND p.kind = 'refund'
    WHERE r.received_at IS NOT NULL ORDER BY r.id`);
  const unsettled = received.flatMap((r) => {
    const due = Math.max(0, Math.min(r.arrived_cents, r.refundable_cents));
    const wrong: string[] = [];
    if (r.status !== 'closed') wrong.push(`is ${r.status}`);
    if (r.refunded_cents !== due) wrong.push(`refunded ${r.refunded_cents} of ${due} due`);
    if (due > 0 && (r.paid_cents !== due || r.paid_status !== 'refunded'))
      wrong.push(`refund row ${r.paid_status} ${r.paid_cents}`);
    if (r.moved_units !== r.restock_units) wrong.push(`${r.moved_units} units restocked of ${r.restock_units}`);
    return wrong.length > 0 ? [`${r.rma} (order ${r.order_id}): ${wrong.join('; ')}`] : [];
  });
  const refundedUnreceived = (
    await db.any(sql.type(z.object({ rma: z.string(), order_id: z.string(), status: z.string() }))`
      SELECT r.rma, r.order_id::text, r.status FROM returns r JOIN payments p ON p.return_id = r.id
      WHERE r.received_at IS NULL`)
  ).map((r) => `${r.rma} (order ${r.order_id}): ${r.status} but has a refund`);

  return {
    checks: [
      check('no return refunded twice (a refund row per return, a gateway refund per row)', doubles),
      check('refunds <= captures per order (database and gateway)', over),
      check('at most one live return per order item (SPEC invariant 5)', [...twiceActive, ...activeFlags]),
      check(
        'every received return closed, refunded for what arrived (restock + damaged units × price, capped) and ' +
          'restocked; none refunded unreceived',
        [...unsettled, ...refundedUnreceived],
      ),
    ],
    returns,
    refunds: refundCounts,
    doubleRefunds: doubles.length,
    refundsOverCaptures: over.length,
  };
}
