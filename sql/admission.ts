import { z } from 'zod';
import type { AdmissionSeed } from '../flash-sale/admission.ts';
import { type Db, sql } from './database.ts';

// The statuses of an order that has been accepted but not reserved yet: its units are still to come out
// of `available`. Every later status has reserved (or ended).
const beforeReservation = ['PENDING', 'VALIDATING', 'INVENTORY_CHECK', 'PAYMENT_PROCESSING'] as const;

const seedRow = z.object({
  available: z.number(),
  event_id: z.string(),
  untracked: z.number(),
  restock_date: z.string().nullable(),
  done: z.array(z.string()),
  missing: z.array(z.string()),
});

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * What a hot SKU's admission counter should hold, from one statement (so one snapshot): the available
 * units and the id of the last movement behind them, the units of orders in flight before their
 * reservation that hold no ticket, and which ticket holders are done (reserved or ended) or missing.
 * Null if the SKU is not stocked in the region.
 */
export async function readAdmissionSeed(
  db: Db,
  region: string,
  sku: string,
  ticketHolders: readonly string[],
): Promise<AdmissionSeed | null> {
  // A ticket field that is not an order id (a hand-edited hash) can only be dropped: it counts as missing.
  const ids = ticketHolders.filter((id) => uuid.test(id));
  const invalid = ticketHolders.filter((id) => !uuid.test(id));
  const row = await db.maybeOne(sql.type(seedRow)`
    WITH holders AS (SELECT unnest(${sql.array(ids, 'uuid')}) AS id)
    SELECT i.available,
           coalesce((SELECT max(m.id) FROM stock_movements m WHERE m.sku = i.sku AND m.region = i.region), 0)::text
             AS event_id,
           coalesce((
             SELECT sum(oi.quantity) FROM orders o JOIN order_items oi ON oi.order_id = o.id
             WHERE oi.sku = i.sku AND o.region = i.region
               AND o.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')
               AND o.status = ANY(${sql.array([...beforeReservation], 'text')})
               AND o.id NOT IN (SELECT id FROM holders)
           ), 0)::int AS untracked,
           i.restock_date::text,
           array(SELECT o.id::text FROM orders o JOIN holders h ON h.id = o.id
                 WHERE o.status <> ALL(${sql.array([...beforeReservation], 'text')})) AS done,
           array(SELECT h.id::text FROM holders h WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = h.id)) AS missing
    FROM inventory i WHERE i.sku = ${sku} AND i.region = ${region}`);
  if (!row) return null;
  return {
    available: row.available,
    eventId: row.event_id,
    untracked: row.untracked,
    restockDate: row.restock_date,
    done: row.done,
    missing: [...row.missing, ...invalid],
  };
}
