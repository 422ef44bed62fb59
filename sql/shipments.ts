import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

const shipmentRow = z.object({
  id: z.coerce.number(),
  carrier: z.string(),
  carrier_shipment_id: z.string(),
  tracking_number: z.string(),
  label_url: z.string(),
  status: z.string(),
  created_at: z.number(),
  cancelled_at: z.number().nullable(),
  /** When the carrier delivered it (its delivered event); a return window starts here. */
  delivered_at: z.number().nullable(),
  /** When orderflow last asked the carrier for its events (null: never). */
  tracked_at: z.number().nullable(),
});
const eventRow = z.object({ status: z.string(), description: z.string(), at: z.number() });
export type Shipment = z.infer<typeof shipmentRow> & { events: Array<z.infer<typeof eventRow>> };

export type NewShipment = {
  orderId: string;
  carrier: string;
  carrierShipmentId: string;
  trackingNumber: string;
  labelUrl: string;
  events: Array<{ at: string; status: string; description: string }>;
};

export async function recordShipment(tx: Tx, s: NewShipment): Promise<void> {
  const id = await tx.oneFirst(sql.type(z.object({ id: z.coerce.number() }))`
    INSERT INTO shipments (order_id, carrier, carrier_shipment_id, tracking_number, label_url, status)
    VALUES (${s.orderId}, ${s.carrier}, ${s.carrierShipmentId}, ${s.trackingNumber}, ${s.labelUrl}, 'label_created')
    ON CONFLICT (order_id) DO UPDATE SET order_id = EXCLUDED.order_id
    RETURNING id`);
  for (const e of s.events) {
    await tx.query(sql.typeAlias('void')`
      INSERT INTO tracking_events (shipment_id, status, description, at)
      VALUES (${id}, ${e.status}, ${e.description}, ${e.at}::timestamptz)
      ON CONFLICT DO NOTHING`);
  }
}

export async function findShipment(db: Db | Tx, orderId: string): Promise<Shipment | null> {
  const row = await db.maybeOne(sql.type(shipmentRow)`
    SELECT id, carrier, carrier_shipment_id, tracking_number, label_url, status, created_at, cancelled_at, delivered_at,
           tracked_at
    FROM shipments WHERE order_id = ${orderId}`);
  if (!row) return null;
  const events = await db.any(sql.type(eventRow)`
    SELECT status, description, at FROM tracking_events WHERE shipment_id = ${row.id} ORDER BY at, id`);
  return { ...row, events: [...events] };
}

export async function markShipmentCancelled(tx: Tx, orderId: string): Promise<void> {
  await tx.query(sql.typeAlias('void')`
    UPDATE shipments SET status = 'cancelled', cancelled_at = now() WHERE order_id = ${orderId} AND cancelled_at IS NULL`);
}
