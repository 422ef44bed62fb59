// The order state machine (SPEC §2). A pure table: sql/orders.ts checks every status change against it
// under a row lock, so an order can only move along these edges whatever the workers do.

export const orderStatuses = [
  'PENDING',
  'VALIDATING',
  'INVENTORY_CHECK',
  'PAYMENT_PROCESSING',
  'RESERVED',
  'FULFILLMENT',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
] as const;

export type OrderStatus = (typeof orderStatuses)[number];

/** No step runs for an order in these statuses. FAILED can still be retried (see the table below). */
export const terminalStatuses: readonly OrderStatus[] = ['COMPLETED', 'FAILED', 'CANCELLED'];

// Inventory check and payment authorisation run in parallel; the status names the step that started
// last, so either order of the two is a legal path.
const transitions: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: ['VALIDATING', 'FAILED', 'CANCELLED'],
  VALIDATING: ['INVENTORY_CHECK', 'PAYMENT_PROCESSING', 'FAILED', 'CANCELLED'],
  INVENTORY_CHECK: ['PAYMENT_PROCESSING', 'RESERVED', 'FAILED', 'CANCELLED'],
  PAYMENT_PROCESSING: ['INVENTORY_CHECK', 'RESERVED', 'FAILED', 'CANCELLED'],
  RESERVED: ['FULFILLMENT', 'FAILED', 'CANCELLED'],
  FULFILLMENT: ['COMPLETED', 'FAILED', 'CANCELLED'],
  COMPLETED: [],
  // The one way out of FAILED: the dead-letter handler (or an operator) retries the order as a new
  // generation when its cause could pass (out of stock until a restock, a provider outage).
  FAILED: ['PENDING'],
  CANCELLED: [],
};

export function isTerminal(status: OrderStatus): boolean {
  return terminalStatuses.includes(status);
}

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return transitions[from].includes(to);
}

/** The statuses an order can move to `to` from (the database moves it only from one of them). */
export function statusesBefore(to: OrderStatus): OrderStatus[] {
  return orderStatuses.filter((from) => canTransition(from, to));
}

/** Checks a whole history (oldest first) against the machine; returns the first illegal step, if any. */
export function findIllegalTransition(
  history: ReadonlyArray<{ from: OrderStatus | null; to: OrderStatus }>,
): { index: number; from: OrderStatus | null; to: OrderStatus } | undefined {
  let current: OrderStatus | null = null;
  for (const [index, entry] of history.entries()) {
    const legal =
      current === null
        ? entry.from === null && entry.to === 'PENDING'
        : entry.from === current && canTransition(current, entry.to);
    if (!legal) return { index, from: entry.from, to: entry.to };
    current = entry.to;
  }
  return undefined;
}
