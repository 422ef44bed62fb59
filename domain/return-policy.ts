// Whether items of an order may be returned, and for how much (SPEC §5): the first of the two steps of a
// return. Pure: the caller loads the order, its delivery, its returns and its payments, and passes the
// clock's reading, so every rule is table-tested (return-policy.test.ts).

export type ReturnRefusal =
  /** Order-wide: another customer's order (the API answers 404, as for an order that does not exist). */
  | 'not_owner'
  /** Order-wide: cancelled, failed or still in the pipeline: nothing was delivered to return. */
  | 'order_not_returnable'
  /** Order-wide: shipped, but the carrier has not reported it delivered yet. */
  | 'not_delivered'
  /** Order-wide: delivered more than the return window ago. */
  | 'window_closed'
  /** Per item: no such item in this order, or the same item asked twice in one request. */
  | 'unknown_item'
  | 'duplicate_item'
  /** Per item: sold as final sale. */
  | 'final_sale'
  /** Per item: already has a return (at most one per order item, SPEC invariant 5). */
  | 'already_returned'
  /** Per item: more units than were bought. */
  | 'quantity_exceeds_bought';

export type ReturnableOrder = {
  customerId: string;
  status: string;
  /** When the carrier reported the delivery, or null. */
  deliveredAt: number | null;
  items: ReadonlyArray<{
    id: string;
    sku: string;
    name: string;
    quantity: number;
    unitPriceCents: number;
    finalSale: boolean;
  }>;
  /** Items with a return that is not cancelled. */
  returnedItemIds: ReadonlySet<string>;
  /** What may still be refunded: captured minus refunded (refunds never exceed captures). */
  refundableCents: number;
};

export type ReturnCaller = { role: 'customer'; customerId: string } | { role: 'admin' };

export type ReturnPolicy = { windowDays: number };

export type ItemVerdict =
  | { orderItemId: string; quantity: number; eligible: true; sku: string; name: string; refundCents: number }
  | { orderItemId: string; quantity: number; eligible: false; reason: ReturnRefusal; message: string };

export type ReturnQuote = {
  /** Every item asked for may be returned: only then is a confirmation token issued. */
  eligible: boolean;
  /** Set when the whole order is refused (every item then carries the same reason). */
  refusal: { reason: ReturnRefusal; message: string } | null;
  items: ItemVerdict[];
  /** The refund for the eligible items, from what was paid, never above what is still refundable. */
  refundCents: number;
  /** The last moment a return may be asked for, once delivered. */
  windowEndsAt: number | null;
};

const DAY_MS = 24 * 60 * 60 * 1000;

export function quoteReturn(
  order: ReturnableOrder,
  request: ReadonlyArray<{ orderItemId: string; quantity: number }>,
  caller: ReturnCaller,
  policy: ReturnPolicy,
  now: number,
): ReturnQuote {
  const windowEndsAt = order.deliveredAt === null ? null : order.deliveredAt + policy.windowDays * DAY_MS;
  const refusal = orderRefusal(order, caller, windowEndsAt, policy, now);
  if (refusal) {
    const items = request.map((line): ItemVerdict => ({ ...line, eligible: false, ...refusal }));
    return { eligible: false, refusal, items, refundCents: 0, windowEndsAt };
  }

  const byId = new Map(order.items.map((item) => [item.id, item]));
  const seen = new Set<string>();
  const items = request.map((line): ItemVerdict => {
    const item = byId.get(line.orderItemId);
    const refuse = (reason: ReturnRefusal, message: string): ItemVerdict => ({
      ...line,
      eligible: false,
      reason,
      message,
    });
    if (seen.has(line.orderItemId)) return refuse('duplicate_item', `${line.orderItemId} is asked for more than once`);
    seen.add(line.orderItemId);
    if (!item) return refuse('unknown_item', `The order has no item ${line.orderItemId}`);
    if (item.finalSale) return refuse('final_sale', `${item.name} was sold as final sale and cannot be returned`);
    if (order.returnedItemIds.has(item.id)) return refuse('already_returned', `${item.name} already has a return`);
    if (line.quantity > item.quantity) {
      return refuse('quantity_exceeds_bought', `${line.quantity} of ${item.name} asked for, ${item.quantity} bought`);
    }
    return {
      ...line,
      eligible: true,
      sku: item.sku,
      name: item.name,
      refundCents: line.quantity * item.unitPriceCents,
    };
  });
  const eligible = items.length > 0 && items.every((v) => v.eligible);
  const asked = items.reduce((sum, v) => sum + (v.eligible ? v.refundCents : 0), 0);
  return { eligible, refusal: null, items, refundCents: Math.min(asked, order.refundableCents), windowEndsAt };
}

function orderRefusal(
  order: ReturnableOrder,
  caller: ReturnCaller,
  windowEndsAt: number | null,
  policy: ReturnPolicy,
  now: number,
): { reason: ReturnRefusal; message: string } | null {
  if (caller.role === 'customer' && caller.customerId !== order.customerId) {
    return { reason: 'not_owner', message: 'The order is not yours' };
  }
  if (order.status !== 'COMPLETED') {
    const why =
      order.status === 'CANCELLED' || order.status === 'FAILED' ? order.status.toLowerCase() : 'not shipped yet';
    return { reason: 'order_not_returnable', message: `The order is ${why}: there is nothing to return` };
  }
  if (windowEndsAt === null) {
    return { reason: 'not_delivered', message: 'The order has not been delivered yet: returns open at delivery' };
  }
  if (now > windowEndsAt) {
    return {
      reason: 'window_closed',
      message: `The return window of ${policy.windowDays} days closed on ${new Date(windowEndsAt).toISOString()}`,
    };
  }
  return null;
}
