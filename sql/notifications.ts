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

const parkedStep = z.object({
  dead_letter_id: z.coerce.number(),
  status: z.string(),
  error_code: z.string(),
  error_message: z.string(),
});

/**
 * Where the customer's shipping confirmation stands: sent (recorded), failed (notify failed for good
 * after shipment: its dead letter is parked, or discarded by an operator), resending (an operator's
 * replay is running), or null while it is not due (or the order ended before shipping).
 */
export async function findNotificationState(db: Db | Tx, orderId: string) {
  const sent = await db.maybeOne(sql.type(z.object({ sent_at: z.number() }))`
    SELECT sent_at FROM notifications WHERE order_id = ${orderId} AND kind = 'shipped'`);
  if (sent) return { status: 'sent' as const, sentAt: sent.sent_at, deadLetterId: null, error: null };
  const letter = await db.maybeOne(sql.type(parkedStep)`
    SELECT id AS dead_letter_id, status, error_code, error_message FROM dead_letters
    WHERE order_id = ${orderId} AND step = 'notify' AND kind = 'step'
    ORDER BY id DESC LIMIT 1`);
  if (!letter) return null;
  return {
    status: letter.status === 'replayed' ? ('resending' as const) : ('failed' as const),
    sentAt: null,
    deadLetterId: letter.dead_letter_id,
    error: { code: letter.error_code, message: letter.error_message },
  };
}
