import { z } from 'zod';
import { AppError, DataRejectedError } from '../domain/errors.ts';
import type { ReturnableOrder } from '../domain/return-policy.ts';
import { type Db, sql, type Tx } from './database.ts';
import { findOrder } from './orders.ts';
import { findReturn, type ReturnRecord } from './returns.ts';
import { findShipment } from './shipments.ts';

// The two steps of a return (SPEC §5) in the database: what a quote needs to know about the order, the
// quote's token row (return_quotes, migration 008), and the return that a token creates.

/** What the policy (domain/return-policy.ts) needs to know about an order; null when there is no such order. */
export async function loadReturnableOrder(db: Db, orderId: string): Promise<ReturnableOrder | null> {
  const [order, shipment, returned, money] = await Promise.all([
    findOrder(db, orderId),
    findShipment(db, orderId),
    db.any(sql.type(z.object({ sku: z.string() }))`
      SELECT sku FROM return_items WHERE order_id = ${orderId} AND active`),
    db.one(sql.type(z.object({ captured: z.coerce.number(), refunded: z.coerce.number() }))`
      SELECT coalesce(sum(amount_cents) FILTER (WHERE kind = 'capture' AND status = 'captured'), 0) AS captured,
             coalesce(sum(amount_cents) FILTER (WHERE kind = 'refund' AND status <> 'failed'), 0) AS refunded
      FROM payments WHERE order_id = ${orderId}`),
  ]);
  if (!order) return null;
  return {
    customerId: order.customer_id,
    status: order.status,
    deliveredAt: shipment?.delivered_at ?? null,
    items: order.items.map((i) => ({
      id: i.sku,
      sku: i.sku,
      name: i.name,
      quantity: i.quantity,
      unitPriceCents: i.unit_price_cents,
      finalSale: i.final_sale,
    })),
    returnedItemIds: new Set(returned.map((r) => r.sku)),
    refundableCents: Math.max(0, money.captured - money.refunded),
  };
}

export type QuotedItem = { sku: string; quantity: number; refundCents: number };

export async function insertQuote(
  db: Db,
  q: {
    tokenHash: string;
    customerId: string;
    orderId: string;
    items: QuotedItem[];
    reason: string;
    refundCents: number;
    expiresAt: number;
  },
): Promise<void> {
  await db.query(sql.typeAlias('void')`
    INSERT INTO return_quotes (token_hash, customer_id, order_id, items, reason, refund_cents, expires_at)
    VALUES (${q.tokenHash}, ${q.customerId}, ${q.orderId}, ${sql.jsonb(q.items)}, ${q.reason}, ${q.refundCents},
            to_timestamp(${q.expiresAt / 1000}))`);
}

const quoteRow = z.object({
  id: z.coerce.number(),
  customer_id: z.string(),
  order_id: z.string(),
  items: z.array(z.object({ sku: z.string(), quantity: z.number(), refundCents: z.number() })),
  reason: z.string(),
  refund_cents: z.number(),
  expires_at: z.number(),
  used_at: z.number().nullable(),
  return_id: z.coerce.number().nullable(),
});

/**
 * Creates the return a token stands for, in one transaction: the token's row is locked, checked (whose,
 * which order, used, expired) and marked used, and the return and its items are inserted. `caller` is
 * the customer asking, or null for an admin. `within` runs last in the same transaction (the
 * Idempotency-Key's stored answer). Two returns of the same item: the second fails on
 * return_items_one_active and is answered already_returned with the RMA that holds the item.
 */
export async function createReturnFromQuote(
  db: Db,
  r: { tokenHash: string; orderId: string; caller: string | null; rma: string; now: number },
  within: (tx: Tx, record: ReturnRecord) => Promise<void>,
): Promise<ReturnRecord> {
  try {
    return await db.transaction(async (tx) => {
      const quote = await tx.maybeOne(sql.type(quoteRow)`
        SELECT id, customer_id, order_id::text, items, reason, refund_cents, expires_at, used_at, return_id
        FROM return_quotes WHERE token_hash = ${r.tokenHash} FOR UPDATE`);
      if (!quote || (r.caller !== null && quote.customer_id !== r.caller)) {
        throw new AppError('return_token_invalid', 'The return token is not valid: ask for a new quote');
      }
      if (quote.order_id !== r.orderId) {
        throw new AppError(
          'return_token_wrong_order',
          `The return token was issued for another order, not ${r.orderId}`,
          {
            details: { orderId: quote.order_id },
          },
        );
      }
      if (quote.used_at !== null) {
        // A statement of its own: one that waited for the row lock sees the return committed meanwhile
        // only with a new snapshot (a join in the locking statement would still miss it).
        const rma = await tx.maybeOneFirst(sql.type(z.object({ rma: z.string() }))`
          SELECT rma FROM returns WHERE id = ${quote.return_id}`);
        throw new AppError('return_token_used', `The return token was used already, for return ${rma}`, {
          details: { rma },
        });
      }
      if (quote.expires_at <= r.now) {
        throw new AppError(
          'return_token_expired',
          `The return token expired at ${new Date(quote.expires_at).toISOString()}: ask for a new quote`,
        );
      }
      const id = await tx.oneFirst(sql.type(z.object({ id: z.coerce.number() }))`
        INSERT INTO returns (rma, order_id, customer_id, status, reason, quoted_cents)
        VALUES (${r.rma}, ${r.orderId}, ${quote.customer_id}, 'requested', ${quote.reason}, ${quote.refund_cents})
        RETURNING id`);
      for (const item of quote.items) {
        await tx.query(sql.typeAlias('void')`
          INSERT INTO return_items (return_id, order_id, sku, quantity, refund_cents)
          VALUES (${id}, ${r.orderId}, ${item.sku}, ${item.quantity}, ${item.refundCents})`);
      }
      await tx.query(sql.typeAlias('void')`
        UPDATE return_quotes SET used_at = clock_timestamp(), return_id = ${id} WHERE id = ${quote.id}`);
      const record = await findReturn(tx, r.rma);
      if (!record) throw new AppError('internal', `Return ${r.rma} vanished in its own transaction`);
      await within(tx, record);
      return record;
    });
  } catch (error) {
    if (error instanceof DataRejectedError && error.constraint === 'return_items_one_active') {
      const holder = await db.maybeOne(sql.type(z.object({ rma: z.string(), sku: z.string() }))`
        SELECT r.rma, i.sku FROM return_items i JOIN returns r ON r.id = i.return_id
        JOIN return_quotes q ON q.token_hash = ${r.tokenHash}
        WHERE i.order_id = ${r.orderId} AND i.active AND i.sku IN (SELECT jsonb_array_elements(q.items) ->> 'sku')
        ORDER BY r.id LIMIT 1`);
      throw new AppError(
        'already_returned',
        holder ? `${holder.sku} already has return ${holder.rma}` : 'An item of this quote already has a return',
        { details: { rma: holder?.rma ?? null, orderItemId: holder?.sku ?? null }, cause: error },
      );
    }
    throw error;
  }
}
