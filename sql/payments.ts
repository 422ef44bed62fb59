import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

const paymentRow = z.object({
  generation: z.number(),
  kind: z.enum(['authorization', 'capture', 'void', 'refund']),
  status: z.string(),
  idempotency_key: z.string(),
  gateway_id: z.string().nullable(),
  amount_cents: z.number(),
  decline_code: z.string().nullable(),
  created_at: z.number(),
});
export type Payment = z.infer<typeof paymentRow>;

export type NewPayment = {
  orderId: string;
  generation: number;
  kind: Payment['kind'];
  status: string;
  idempotencyKey: string;
  gatewayId: string | null;
  amountCents: number;
  declineCode?: string;
};

/** Records a gateway operation once (unique idempotency key; one capture per order, one authorization and void per generation). */
export async function recordPayment(db: Db | Tx, p: NewPayment): Promise<void> {
  await db.query(sql.typeAlias('void')`
    INSERT INTO payments (order_id, generation, kind, status, idempotency_key, gateway_id, amount_cents, decline_code)
    VALUES (${p.orderId}, ${p.generation}, ${p.kind}, ${p.status}, ${p.idempotencyKey}, ${p.gatewayId}, ${p.amountCents},
            ${p.declineCode ?? null})
    ON CONFLICT DO NOTHING`);
}

export async function listPayments(db: Db | Tx, orderId: string): Promise<readonly Payment[]> {
  return db.any(sql.type(paymentRow)`
    SELECT generation, kind, status, idempotency_key, gateway_id, amount_cents, decline_code, created_at
    FROM payments WHERE order_id = ${orderId} ORDER BY id`);
}
