import type { OrderStatus } from '../domain/order-status.ts';
import type { Carrier } from '../providers/carrier.ts';
import type { Mailer } from '../providers/mailer.ts';
import type { PaymentGateway } from '../providers/payment-gateway.ts';
import type { StepName } from '../queues/pipeline.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Db, Tx } from '../sql/database.ts';
import type { Order } from '../sql/orders.ts';
import type { OrderRun } from '../sql/step-attempts.ts';

// A pipeline step knows nothing of BullMQ. It does its external work (a provider call with an
// idempotency key derived from the order), then calls `finish` with its database writes: the runner
// runs them in one transaction together with the step's ledger row and the order's status change, so a
// retry after a crash finds the step done and returns its stored output instead of doing it again.

export type StepDeps = {
  db: Db;
  gateway: PaymentGateway;
  carrier: Carrier;
  mailer: Mailer;
  log: Logger;
  /** Called after each committed change to an order (see runtime/deps.ts). */
  invalidateOrder(orderId: string, customerId?: string): Promise<void>;
};

export type StepContext = StepDeps & {
  order: Order;
  finish<T>(writes: (tx: Tx) => Promise<T>): Promise<T>;
};

export type Step<Output = unknown> = {
  name: StepName;
  /** The status the order takes when the step starts (e.g. VALIDATING). */
  startStatus?: OrderStatus;
  /** The status the order takes when the step succeeds (e.g. RESERVED). */
  endStatus?: OrderStatus;
  run(context: StepContext): Promise<Output>;
  /**
   * Undoes the step's effects, judged from what the database and the provider say exists (not from the
   * ledger, so an effect whose success was never recorded is undone too). Idempotent; returns what it
   * undid, or undefined when there was nothing to undo.
   */
  compensate?(deps: StepDeps, order: Order): Promise<string | undefined>;
};

/** Idempotency key for a provider call that an order makes once per generation (authorize, ship…). */
export function providerKey(order: Pick<Order, 'id' | 'generation'>, operation: string): string {
  return `order-${order.id}-g${order.generation}-${operation}`;
}

export function runOf(order: Pick<Order, 'id' | 'generation'>): OrderRun {
  return { orderId: order.id, generation: order.generation };
}
