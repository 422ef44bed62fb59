import type { Job } from 'bullmq';
import { decideDeadLetter, type RetryPolicy } from '../domain/dead-letter-policy.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import type { MaintenanceJobData } from '../queues/order-workflow.ts';
import { findDeadLetter, updateDeadLetter } from '../sql/dead-letters.ts';
import { getStockLevels } from '../sql/inventory.ts';
import { findOrder, loadOrderSnapshot, reopenFailedOrder } from '../sql/orders.ts';
import {
  bumpEnqueueRound,
  findOverdueRetries,
  findStuckOrders,
  findUncompensatedOrders,
  findUnhandledDeadLetters,
} from '../sql/reconciler.ts';
import { compensateOrder } from './compensate-order.ts';
import type { StepDeps } from './step.ts';

export type MaintenanceSettings = { stuckAfterMs: number; retryPolicy: RetryPolicy };

/** The maintenance queue: the periodic reconciler, scheduled order retries, deferred compensations. */
export function createMaintenanceProcessor(deps: StepDeps, queues: OrderQueues, settings: MaintenanceSettings) {
  return async (job: Job<MaintenanceJobData>) => {
    const data = job.data;
    if (data.kind === 'reconcile') return reconcile(deps, queues, settings);
    if (data.kind === 'retry-order') return retryOrder(deps, queues, settings.retryPolicy, data.deadLetterId);
    return { undone: await compensateOrder(deps, { orderId: data.orderId, generation: data.generation }) };
  };
}

/**
 * PostgreSQL is the truth, Redis only carries work: this finds the work that Redis lost or never got
 * (an enqueue that failed after the order was committed, a flushed or restarted Redis, a job failed by
 * BullMQ itself) and puts it back. Re-enqueueing is safe: done steps return their stored output.
 */
export async function reconcile(deps: StepDeps, queues: OrderQueues, settings: MaintenanceSettings) {
  let reenqueued = 0;
  for (const order of await findStuckOrders(deps.db, settings.stuckAfterMs, 100)) {
    const round = await bumpEnqueueRound(deps.db, order.id, order.enqueue_round);
    if (round === null) continue;
    const snapshot = await loadOrderSnapshot(deps.db, order.id);
    await queues.enqueueOrder({ orderId: order.id, generation: order.generation, round, order: snapshot });
    reenqueued += 1;
  }
  let compensated = 0;
  for (const order of await findUncompensatedOrders(deps.db, settings.stuckAfterMs, 20)) {
    try {
      await compensateOrder(deps, { orderId: order.id, generation: order.generation });
      compensated += 1;
    } catch (error) {
      deps.log.warn({ orderId: order.id, err: (error as Error).message }, 'reconciler could not compensate yet');
    }
  }
  // Re-adding a dead letter whose job still exists does nothing (same job id); a lost one comes back.
  for (const letter of await findUnhandledDeadLetters(deps.db, settings.stuckAfterMs, 100)) {
    await queues.addDeadLetter({
      orderId: letter.order_id,
      generation: letter.generation,
      step: letter.step,
      errorCode: letter.error_code,
      message: letter.error_message,
      attempts: letter.attempts,
      payload: letter.payload,
    });
  }
  for (const overdue of await findOverdueRetries(deps.db, settings.stuckAfterMs, 100)) {
    await queues.scheduleOrderRetry(overdue.id, overdue.retries, 0);
  }
  if (reenqueued + compensated > 0) deps.log.warn({ reenqueued, compensated }, 'reconciler repaired orders');
  return { reenqueued, compensated };
}

/** A scheduled retry of a dead-lettered order: reopen it as a new generation, if its cause has passed. */
async function retryOrder(deps: StepDeps, queues: OrderQueues, policy: RetryPolicy, deadLetterId: number) {
  const letter = await findDeadLetter(deps.db, deadLetterId);
  if (letter?.status !== 'retry_scheduled') return { skipped: `dead letter is ${letter?.status}` };
  const order = await findOrder(deps.db, letter.order_id);
  if (order?.status !== 'FAILED' || order.generation !== letter.generation) {
    await updateDeadLetter(deps.db, letter.id, ['retry_scheduled'], { status: 'resolved', note: 'the order moved on' });
    return { skipped: 'order moved on' };
  }
  if (letter.error_code === 'out_of_stock') {
    const levels = new Map(
      (
        await getStockLevels(
          deps.db,
          order.region,
          order.items.map((i) => i.sku),
        )
      ).map((l) => [l.sku, l]),
    );
    if (order.items.some((i) => (levels.get(i.sku)?.available ?? 0) < i.quantity)) {
      const retries = letter.retries + 1;
      const next = decideDeadLetter(
        { errorCode: letter.error_code, retries: order.generation - 1 + retries, captured: false },
        policy,
      );
      if (next.action !== 'retry') {
        await updateDeadLetter(deps.db, letter.id, ['retry_scheduled'], {
          status: 'parked',
          note: next.note,
          retryAt: null,
        });
        return { parked: next.note };
      }
      await updateDeadLetter(deps.db, letter.id, ['retry_scheduled'], {
        status: 'retry_scheduled',
        note: `still out of stock; ${next.note}`,
        retries,
        retryAt: new Date(Date.now() + next.delayMs),
      });
      await queues.scheduleOrderRetry(letter.id, retries, next.delayMs);
      return { rescheduled: next.note };
    }
  }
  const generation = await deps.db.transaction(async (tx) => {
    const moved = await updateDeadLetter(tx, letter.id, ['retry_scheduled'], {
      status: 'replayed',
      note: 'retried automatically',
    });
    if (!moved) return null;
    return reopenFailedOrder(tx, {
      orderId: order.id,
      generation: order.generation,
      actor: 'worker:retry',
      reason: `retry after ${letter.error_code}`,
    });
  });
  if (generation === null) return { skipped: 'already handled' };
  await deps.invalidateOrder(order.id, order.customer_id);
  await queues.enqueueOrder({
    orderId: order.id,
    generation,
    round: 0,
    order: await loadOrderSnapshot(deps.db, order.id),
  });
  return { reopened: generation };
}
