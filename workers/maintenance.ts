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
import { claimShipmentsToTrack, recordTracking, type ShipmentToTrack } from '../sql/tracking.ts';
import { compensateOrder } from './compensate-order.ts';
import { sweepReturns } from './returns/sweep.ts';
import type { StepDeps } from './step.ts';

export type MaintenanceSettings = { stuckAfterMs: number; retryPolicy: RetryPolicy };

/**
 * The maintenance queue: the periodic reconciler, delivery tracking, the returns' sweep, scheduled order
 * retries, deferred compensations.
 */
export function createMaintenanceProcessor(deps: StepDeps, queues: OrderQueues, settings: MaintenanceSettings) {
  return async (job: Job<MaintenanceJobData>) => {
    const data = job.data;
    if (data.kind === 'reconcile') return reconcile(deps, queues, settings);
    if (data.kind === 'track-shipments') return trackShipments(deps, data.batchSize);
    if (data.kind === 'sweep-returns') {
      const { receiptDays } = data;
      return sweepReturns(deps, queues, { receiptDays, quietMs: settings.stuckAfterMs, now: Date.now() });
    }
    if (data.kind === 'retry-order') return retryOrder(deps, queues, settings.retryPolicy, data.deadLetterId);
    return { undone: await compensateOrder(deps, { orderId: data.orderId, generation: data.generation }) };
  };
}

/** Shipments asked about at once: a slow carrier holds a run for batchSize / this many timeouts at most. */
const TRACKING_CONCURRENCY = 8;

/**
 * Delivery tracking (a return window starts at delivery): asks the carrier for the events of up to
 * `batchSize` shipments still on their way, least recently asked first, and stores the new ones.
 *
 * Polling from a job scheduler rather than a carrier webhook: orderflow exposes no inbound endpoint that
 * would have to be reachable by the carrier and signed, a webhook that is never delivered (our outage,
 * theirs) loses nothing because the next run asks again, and it runs the same way in tests and in the
 * harness. The cost is the poll interval's delay before a delivery is known, and one request per
 * shipment in transit per run, bounded by the batch size.
 */
export async function trackShipments(deps: StepDeps, batchSize: number) {
  const due = await claimShipmentsToTrack(deps.db, batchSize);
  const outcomes: Array<number | null> = [];
  for (let i = 0; i < due.length; i += TRACKING_CONCURRENCY) {
    outcomes.push(...(await Promise.all(due.slice(i, i + TRACKING_CONCURRENCY).map((s) => trackShipment(deps, s)))));
  }
  const failed = outcomes.filter((added) => added === null).length;
  const events = outcomes.reduce<number>((sum, added) => sum + (added ?? 0), 0);
  if (failed > 0) deps.log.warn({ polled: due.length, failed }, 'tracking: some shipments were not polled');
  return { polled: due.length, failed, events };
}

/** One shipment's poll: the number of new events, or null when it failed (the next run asks again). */
async function trackShipment(deps: StepDeps, shipment: ShipmentToTrack): Promise<number | null> {
  try {
    const tracking = await deps.carrier.events(shipment.carrier_shipment_id);
    const added = await recordTracking(deps.db, shipment.id, tracking);
    if (added > 0) await deps.invalidateOrder(shipment.order_id);
    return added;
  } catch (error) {
    // An outage at the carrier (or one unreadable answer) costs this shipment its turn, not the run's.
    deps.log.warn(
      { orderId: shipment.order_id, shipmentId: shipment.carrier_shipment_id, err: (error as Error).message },
      'tracking: could not poll the carrier',
    );
    return null;
  }
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
