import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

const notificationRow = z.object({
  kind: z.string(),
  channel: z.string(),
  recipient: z.string(),
  subject: z.string(),
  sent_at: z.number(),
});
export type Notification = z.infer<typeof notificationRow>;

export async function recordNotification(
  tx: Tx,
  n: { orderId: string; kind: string; channel: string; recipient: string; subject: string; body: string },
): Promise<void> {
  await tx.query(sql.typeAlias('void')`
    INSERT INTO notifications (order_id, kind, channel, recipient, subject, body)
    VALUES (${n.orderId}, ${n.kind}, ${n.channel}, ${n.recipient}, ${n.subject}, ${n.body})
    ON CONFLICT (order_id, kind) DO NOTHING`);
}

export async function listNotifications(db: Db | Tx, orderId: string): Promise<readonly Notification[]> {
  return db.any(sql.type(notificationRow)`
    SELECT kind, channel, recipient, subject, sent_at FROM notifications WHERE order_id = ${orderId} ORDER BY id`);
}
