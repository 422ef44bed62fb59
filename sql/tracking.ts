import { z } from 'zod';
import { type Db, sql } from './database.ts';

// Delivery tracking (workers/maintenance.ts, track-shipments): which shipments to ask the carrier
// about, and what it answered. A return window starts at delivered_at.

const shipmentToTrack = z.object({ id: z.coerce.number(), order_id: z.string(), carrier_shipment_id: z.string() });
export type ShipmentToTrack = z.infer<typeof shipmentToTrack>;

/**
 * Takes up to `limit` shipments still on their way (not delivered, not cancelled), least recently polled
 * first, and marks them polled now. Marking them at once is what makes the turn go round: a shipment the
 * carrier cannot answer for goes to the back of the line instead of holding the front of every run,
 * and two runs at once (SKIP LOCKED) take different shipments.
 */
export async function claimShipmentsToTrack(db: Db, limit: number): Promise<readonly ShipmentToTrack[]> {
  return db.any(sql.type(shipmentToTrack)`
    UPDATE shipments s SET tracked_at = clock_timestamp()
    FROM (SELECT id FROM shipments
          WHERE delivered_at IS NULL AND cancelled_at IS NULL
          ORDER BY tracked_at NULLS FIRST, id
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED) due
    WHERE s.id = due.id
    RETURNING s.id, s.order_id::text, s.carrier_shipment_id`);
}

export type CarrierTracking = {
  status: string;
  events: ReadonlyArray<{ status: string; description: string; at: string }>;
};

/**
 * Stores what the carrier reported: events it did not have yet (UNIQUE (shipment_id, status, at) makes
 * a repeated poll add nothing), the latest status and, once delivered, when. A cancellation is recorded
 * as an event only: the shipment's cancelled_at belongs to the compensation that also returns its stock.
 * Answers how many events were new.
 */
export async function recordTracking(db: Db, shipmentId: number, tracking: CarrierTracking): Promise<number> {
  const deliveredAt = tracking.events.find((e) => e.status === 'delivered')?.at ?? null;
  const status = tracking.status === 'cancelled' ? null : tracking.status;
  const events = tracking.events.map(({ status, description, at }) => ({ status, description, at }));
  return db.oneFirst(sql.type(z.object({ added: z.coerce.number() }))`
    WITH added AS (
      INSERT INTO tracking_events (shipment_id, status, description, at)
      SELECT ${shipmentId}, e.status, e.description, e.at
      FROM jsonb_to_recordset(${sql.jsonb(events)}) AS e(status text, description text, at timestamptz)
      ORDER BY e.at
      ON CONFLICT DO NOTHING
      RETURNING 1
    ), moved AS (
      UPDATE shipments
      SET status = coalesce(${status}, status),
          delivered_at = coalesce(delivered_at, ${deliveredAt}::timestamptz)
      WHERE id = ${shipmentId} AND cancelled_at IS NULL
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM added) AS added`);
}
