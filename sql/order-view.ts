import { AppError } from '../domain/errors.ts';
import { listCompensations } from './compensations.ts';
import type { Db } from './database.ts';
import { findNotificationState, listNotifications } from './notifications.ts';
import { findOrder, listHistory, type Order } from './orders.ts';
import { listPayments, type Payment } from './payments.ts';
import { listOrderReturns, returnView } from './returns.ts';
import { findShipment } from './shipments.ts';
import { listAttempts } from './step-attempts.ts';

// GET /orders/{id} is three groups of fields that change at different rates and are cached apart:
// what was placed (never changes), where it stands (every step), and tracking (the carrier). Built here,
// below the API, because the read-through cache (cache/order-reader.ts) loads the groups too.

export type OrderFieldGroup = 'placed' | 'status' | 'tracking';

/** Timestamps in answers: ISO 8601, or null. */
export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** An order line as the API shows it: in the order's view, and in the 201 that accepted the order. */
export function lineView(line: { sku: string; name: string; quantity: number; unit_price_cents: number }) {
  return {
    sku: line.sku,
    name: line.name,
    quantity: line.quantity,
    unitPriceCents: line.unit_price_cents,
    lineTotalCents: line.quantity * line.unit_price_cents,
  };
}

function placedFields(order: Order) {
  return {
    id: order.id,
    customerId: order.customer_id,
    region: order.region,
    currency: order.currency,
    totalCents: order.total_cents,
    items: order.items.map((i) => ({ ...lineView(i), finalSale: i.final_sale })),
    shippingAddress: order.shipping_address,
    createdAt: iso(order.created_at),
  };
}

async function statusFields(db: Db, order: Order) {
  const [history, attempts, payments, notifications, notification, compensations, returns] = await Promise.all([
    listHistory(db, order.id),
    listAttempts(db, order.id),
    listPayments(db, order.id),
    listNotifications(db, order.id),
    findNotificationState(db, order.id),
    listCompensations(db, order.id),
    listOrderReturns(db, order.id),
  ]);
  return {
    status: order.status,
    failure: order.failure_reason ? { reason: order.failure_reason, step: order.failed_step } : null,
    generation: order.generation,
    updatedAt: iso(order.updated_at),
    history: history.map((h) => ({
      from: h.from_status,
      to: h.to_status,
      actor: h.actor,
      reason: h.reason,
      at: iso(h.at),
    })),
    timeline: attempts.map((a) => ({
      generation: a.generation,
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
        generation: p.generation,
        kind: p.kind,
        status: p.status,
        amountCents: p.amount_cents,
        gatewayId: p.gateway_id,
        declineCode: p.decline_code,
        at: iso(p.created_at),
      })),
    },
    notifications: notifications.map((n) => ({
      kind: n.kind,
      channel: n.channel,
      recipient: n.recipient,
      subject: n.subject,
      sentAt: iso(n.sent_at),
    })),
    // The shipping confirmation: a COMPLETED order whose mail failed for good says so here (and its
    // parked dead letter, which an operator replays); the order shipped all the same.
    notification: notification && { ...notification, sentAt: iso(notification.sentAt) },
    compensations,
    // Returns change the order's money and stock like its steps do: in the status group, invalidated
    // with it on every change (each return write calls invalidateOrder). Their refunds are in `payment`.
    returns: returns.map(returnView),
  };
}

async function trackingFields(db: Db, orderId: string) {
  const shipment = await findShipment(db, orderId);
  return {
    shipment: shipment && {
      carrier: shipment.carrier,
      trackingNumber: shipment.tracking_number,
      labelUrl: shipment.label_url,
      status: shipment.status,
      deliveredAt: iso(shipment.delivered_at),
      events: shipment.events.map((e) => ({ status: e.status, description: e.description, at: iso(e.at) })),
    },
  };
}

export type OrderGroups = {
  placed?: ReturnType<typeof placedFields>;
  status?: Awaited<ReturnType<typeof statusFields>>;
  tracking?: Awaited<ReturnType<typeof trackingFields>>;
};

/** Loads the asked groups from PostgreSQL; throws not_found when the order does not exist. */
export async function loadOrderGroups(
  db: Db,
  orderId: string,
  groups: readonly OrderFieldGroup[],
): Promise<OrderGroups> {
  const result: OrderGroups = {};
  if (groups.includes('placed') || groups.includes('status')) {
    const order = await findOrder(db, orderId);
    if (!order) throw new AppError('not_found', `Order ${orderId} not found`);
    if (groups.includes('placed')) result.placed = placedFields(order);
    if (groups.includes('status')) result.status = await statusFields(db, order);
  }
  if (groups.includes('tracking')) result.tracking = await trackingFields(db, orderId);
  return result;
}

function paymentState(payments: readonly Payment[]): string {
  const has = (kind: Payment['kind']) => payments.some((p) => p.kind === kind);
  const sum = (kind: Payment['kind']) =>
    payments.filter((p) => p.kind === kind && p.status !== 'failed').reduce((total, p) => total + p.amount_cents, 0);
  // A return refunds part of a capture; a cancellation's compensation refunds all of it.
  if (has('refund')) return sum('refund') >= sum('capture') ? 'refunded' : 'partially_refunded';
  if (has('capture')) return 'captured';
  if (has('void')) return 'voided';
  const auth = payments.findLast((p) => p.kind === 'authorization');
  return auth ? auth.status : 'none';
}
