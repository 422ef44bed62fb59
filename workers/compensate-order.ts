import { AppError, toAppError } from '../domain/errors.ts';
import { compensationOrder } from '../queues/order-workflow.ts';
import { NOTHING_TO_UNDO, recordCompensation } from '../sql/compensations.ts';
import { findOrder } from '../sql/orders.ts';
import type { OrderRun } from '../sql/step-attempts.ts';
import type { StepDeps } from './step.ts';
import { steps } from './steps/index.ts';

/**
 * Undoes what an ended order left behind (label, reservation, capture, authorization), in reverse
 * pipeline order. Safe to run again and concurrently: each compensation is idempotent, and its outcome is
 * recorded for the order's view. A compensation that fails is recorded as failed (visible on the order) and the error is thrown
 * after the others have run, so the caller retries it.
 */
export async function compensateOrder(deps: StepDeps, run: OrderRun): Promise<string[]> {
  const { orderId, generation } = run;
  const found = await findOrder(deps.db, orderId);
  if (!found) throw new AppError('not_found', `Order ${orderId} does not exist`);
  // Only an ended run is undone: a request that arrives late (a step that finished on an order ended
  // meanwhile) must not touch an order that has since been retried and completed.
  const ended = found.generation !== generation || found.status === 'FAILED' || found.status === 'CANCELLED';
  if (!ended) return [];
  // The steps judge by the generation's keys, so they are given the generation being undone.
  const order = { ...found, generation };
  const undone: string[] = [];
  let firstFailure: unknown;
  for (const name of compensationOrder) {
    // Every compensation runs, each judging from what exists: an effect can exist without a recorded
    // success (an authorization whose answer was lost), or land after an earlier run found nothing. Each
    // is idempotent, so running again is safe.
    const step = steps[name];
    if (!step.compensate) continue;
    try {
      const detail = await step.compensate(deps, order);
      await recordCompensation(deps.db, {
        orderId,
        generation,
        step: step.name,
        outcome: 'done',
        detail: detail ?? NOTHING_TO_UNDO,
      });
      deps.metrics.compensated(step.name, detail ? 'undone' : 'nothing');
      if (detail) undone.push(`${step.name}: ${detail}`);
    } catch (error) {
      const appError = toAppError(error);
      deps.log.error({ orderId, step: step.name, err: appError }, 'compensation failed');
      await recordCompensation(deps.db, {
        orderId,
        generation,
        step: step.name,
        outcome: 'failed',
        detail: appError.message,
      });
      deps.metrics.compensated(step.name, 'failed');
      firstFailure ??= error;
    }
  }
  await deps.invalidateOrder(orderId, order.customer_id);
  // An order that ended before its reservation still holds its admission tickets: the units go back to
  // the sale at once (a reserved order gave its tickets up at reservation; its release raises the stock).
  for (const item of order.items) {
    await deps.admission.giveBack(order.region, item.sku, orderId).catch((error) => {
      deps.log.warn(
        { orderId, sku: item.sku, err: (error as Error).message },
        'admission ticket not given back; the next seed will',
      );
    });
  }
  if (firstFailure) throw firstFailure;
  return undone;
}
