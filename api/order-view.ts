import { listCompensations } from '../sql/compensations.ts';
import type { Db } from '../sql/database.ts';
import { listNotifications } from '../sql/notifications.ts';
import { findOrder, listHistory } from '../sql/orders.ts';
import { listPayments, type Payment } from '../sql/payments.ts';
import { findShipment } from '../sql/shipments.ts';
import { listAttempts } from '../sql/step-attempts.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Everything known about an order, for GET /orders/{id}; null when the caller may not see it. */
export async function loadOrderView(db: Db, orderId: string, customerId?: string) {
  const order = await findOrder(db, orderId, customerId);
  if (!order) return null;
  const [history, attempts, payments, shipment, notifications, compensations] = await Promise.all([
    listHistory(db, orderId),
    listAttempts(db, orderId),
    listPayments(db, orderId),
    findShipment(db, orderId),
    listNotifications(db, orderId),
    listCompensations(db, orderId),
  ]);
  return {
    id: order.id,
    status: order.status,
    customerId: order.customer_id,
    region: order.region,
    currency: order.currency,
    totalCents: order.total_cents,
    items: order.items.map((i) => ({
      sku: i.sku,
      name: i.name,
      quantity: i.quantity,
      unitPriceCents: i.unit_price_cents,
      lineTotalCents: i.quantity * i.unit_price_cents,
      finalSale: i.final_sale,
    })),
    shippingAddress: order.shipping_address,
    failure: order.failure_reason ? { reason: order.failure_reason, step: order.failed_step } : null,
    createdAt: iso(order.created_at),
    updatedAt: iso(order.updated_at),
    history: history.map((h) => ({
      from: h.from_status,
      to: h.to_status,
      actor: h.actor,
      reason: h.reason,
      at: iso(h.at),
    })),
    timeline: attempts.map((a) => ({
      step: a.step,
      attempt: a.attempt,
      worker: a.worker,
      outcome: a.outcome,
      startedAt: iso(a.started_at),
      finishedAt: iso(a.finished_at),
      durationMs: a.finished_at === null ? null : a.finished_at - a.started_at,
      error: a.error_code ? { code: a.error_code, message: a.error_message } : null,
    })),
    payment: {
      state: paymentState(payments),
      operations: payments.map((p) => ({
        kind: p.kind,
        status: p.status,
        amountCents: p.amount_cents,
        gatewayId: p.gateway_id,
        declineCode: p.decline_code,
        at: iso(p.created_at),
      })),
    },
    shipment: shipment && {
      carrier: shipment.carrier,
      trackingNumber: shipment.tracking_number,
      labelUrl: shipment.label_url,
      status: shipment.status,
      events: shipment.events.map((e) => ({ status: e.status, description: e.description, at: iso(e.at) })),
    },
    notifications: notifications.map((n) => ({
      kind: n.kind,
      channel: n.channel,
      recipient: n.recipient,
      subject: n.subject,
      sentAt: iso(n.sent_at),
    })),
    compensations,
  };
}

function paymentState(payments: readonly Payment[]): string {
  const has = (kind: Payment['kind']) => payments.some((p) => p.kind === kind);
  if (has('refund')) return 'refunded';
  if (has('capture')) return 'captured';
  if (has('void')) return 'voided';
  const auth = payments.find((p) => p.kind === 'authorization');
  return auth ? auth.status : 'none';
}
