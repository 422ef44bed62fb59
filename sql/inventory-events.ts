import type pg from 'pg';
import { z } from 'zod';
import { type InventoryEvent, stockMovementKinds } from '../domain/stock-movements.ts';
import { sql, type Tx } from './database.ts';

// The outbox side of inventory events: stock_movements rows not yet published to the Redis stream.

const eventRow = z.object({
  id: z.coerce.string(),
  sku: z.string(),
  region: z.string(),
  kind: z.enum(stockMovementKinds),
  quantity: z.number(),
  // Rows written before migration 002 have none, and were marked published by it.
  available_after: z.number(),
  order_id: z.string().nullable(),
  created_at: z.number(),
});

/**
 * Locks up to `limit` unpublished movements, oldest first, for the caller's transaction to publish; rows
 * another relay has locked are skipped. A row is returned only if no older row of its SKU is still
 * unpublished outside this claim: with several relays, one could otherwise publish a SKU's later event
 * while another still holds its earlier one. Those rows stay locked here but unmarked, and are counted
 * in `withheld`: the other relay is about to publish the earlier ones, so they can go in a moment.
 * (A SKU's rows get ids in commit order, since they are written under its inventory row lock, so every
 * committed older row is visible here.)
 */
export async function claimUnpublished(tx: Tx, limit: number): Promise<{ events: InventoryEvent[]; withheld: number }> {
  const rows = await tx.any(sql.type(eventRow.extend({ publishable: z.boolean() }))`
    WITH claimed AS (
      SELECT id, sku, region, kind, quantity, available_after, order_id, created_at
      FROM stock_movements
      WHERE published_at IS NULL
      ORDER BY id
      LIMIT ${limit}
      FOR UPDATE SKIP LOCKED
    )
    SELECT c.id, c.sku, c.region, c.kind, c.quantity, c.available_after, c.order_id::text, c.created_at,
      NOT EXISTS (
        SELECT 1 FROM stock_movements earlier
        WHERE earlier.published_at IS NULL AND earlier.sku = c.sku AND earlier.region = c.region
          AND earlier.id < c.id AND earlier.id NOT IN (SELECT id FROM claimed)
      ) AS publishable
    FROM claimed c
    ORDER BY c.id`);
  const events = rows
    .filter((r) => r.publishable)
    .map((r) => ({
      id: r.id,
      sku: r.sku,
      region: r.region,
      kind: r.kind,
      quantity: r.quantity,
      availableAfter: r.available_after,
      orderId: r.order_id,
      at: new Date(r.created_at).toISOString(),
    }));
  return { events, withheld: rows.length - events.length };
}

export async function markPublished(tx: Tx, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await tx.query(sql.typeAlias('void')`
    UPDATE stock_movements SET published_at = now()
    WHERE id = ANY(${sql.array([...ids], 'int8')}) AND published_at IS NULL`);
}

/** The channel migration 004's trigger notifies, at commit, whenever stock movements were inserted. */
export const inventoryEventsChannel = 'inventory_events';

/**
 * Subscribes `client` to new stock movements: it emits 'notification' after each commit that wrote
 * some. The client must be a dedicated connection (pg's Client): a pooled one would pass the
 * subscription on to whoever borrows it next, or drop it when the pool resets the connection.
 */
export async function listenForInventoryEvents(client: pg.Client): Promise<void> {
  const statement = sql.typeAlias('void')`LISTEN ${sql.identifier([inventoryEventsChannel])}`;
  await client.query(statement.sql, [...statement.values]);
}
