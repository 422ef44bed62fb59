import { AppError } from '../domain/errors.ts';
import { isTerminal } from '../domain/order-status.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import type { Logger } from '../runtime/logger.ts';
import type { OrderMetrics } from '../runtime/metrics.ts';
import type { Db } from '../sql/database.ts';
import { findOrder, lockOrder, transitionOrder } from '../sql/orders.ts';
import { findShipment } from '../sql/shipments.ts';
import type { Caller } from './auth.ts';

export type CancelResult = { orderId: string; alreadyCancelled: boolean };

/**
 * Cancels an order until its shipment exists. The status change is guarded by the order's row lock:
 * a step running at the same moment sees CANCELLED in its own finishing transaction and undoes what it
 * did. The compensations (void or refund, release stock) run on the maintenance queue; if Redis is down,
 * the reconciler finds the cancelled order with effects left in place and undoes them.
 */
export async function cancelOrder(
  deps: {
    db: Db;
    queues: OrderQueues;
    log: Logger;
    metrics: Pick<OrderMetrics, 'orderEnded'>;
    invalidateOrder(orderId: string, customerId?: string): Promise<void>;
  },
  caller: Caller,
  orderId: string,
  reason: string | undefined,
): Promise<CancelResult> {
  const customer = caller.role === 'customer' ? caller.customerId! : undefined;
  const outcome = await deps.db.transaction(async (tx) => {
    const order = await findOrder(tx, orderId, customer);
    if (!order) throw new AppError('not_found', `Order ${orderId} not found`);
    const status = await lockOrder(tx, orderId);
    if (status === 'CANCELLED')
      return { alreadyCancelled: true, generation: order.generation, customerId: order.customer_id };
    if (isTerminal(status)) {
      throw new AppError('conflict', `The order is ${status}; only an order in progress can be cancelled`, {
        details: { status },
      });
    }
    if (await findShipment(tx, orderId)) {
      throw new AppError('conflict', 'The order has shipped; it can no longer be cancelled (start a return instead)', {
        details: { status, reason: 'shipped' },
      });
    }
    await transitionOrder(tx, {
      orderId,
      to: 'CANCELLED',
      actor: `api:${caller.name}`,
      reason: reason ?? `cancelled by ${caller.role}`,
    });
    return { alreadyCancelled: false, generation: order.generation, customerId: order.customer_id };
  });
  await deps.invalidateOrder(orderId, outcome.customerId);
  if (!outcome.alreadyCancelled) {
    deps.metrics.orderEnded('cancelled', `by_${caller.role}`);
    try {
      await deps.queues.compensateLater(orderId, outcome.generation, 'cancel');
    } catch (error) {
      deps.log.warn({ orderId, err: (error as Error).message }, 'compensation not enqueued; the reconciler will do it');
    }
  }
  return { orderId, alreadyCancelled: outcome.alreadyCancelled };
}
