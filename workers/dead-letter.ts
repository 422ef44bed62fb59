import type { Job } from 'bullmq';
import { decideDeadLetter, type RetryPolicy } from '../domain/dead-letter-policy.ts';
import { toAppError } from '../domain/errors.ts';
import { isUuid } from '../domain/ids.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import type { DeadLetterJobData } from '../queues/order-workflow.ts';
import { recordDeadLetter, updateDeadLetter } from '../sql/dead-letters.ts';
import { findOrder, transitionOrder } from '../sql/orders.ts';
import { listPayments } from '../sql/payments.ts';
import { compensateOrder } from './compensate-order.ts';
import type { StepDeps } from './step.ts';

/**
 * A step failed for good. Records the dead letter, makes sure the order is FAILED (the step's failure
 * transaction normally did it already, so that a parallel step stops at once), runs the compensations,
 * then decides: retry the order later (a cause that can pass), resolve (a final business outcome), or
 * park it for an operator. A compensation that fails throws, so this job retries with backoff; after its
 * last attempt the dead letter says compensation_failed. Nothing here loops: retries are bounded by the
 * order's generation count.
 */
export function createDeadLetterProcessor(deps: StepDeps, queues: OrderQueues, retryPolicy: RetryPolicy) {
  return async (job: Job<DeadLetterJobData>) => {
    const data = job.data;
    const letter = await recordDeadLetter(deps.db, data);
    // A parked step after fulfilment (kind 'step') belongs to a shipped, completed order: it is never
    // compensated; an operator replays the step (api/dead-letters.ts).
    if (letter.kind === 'step') return { status: letter.status };
    if (letter.status !== 'received' && letter.status !== 'compensation_failed') return { status: letter.status };
    const pending = ['received', 'compensation_failed'] as const;

    const order = isUuid(data.orderId) ? await findOrder(deps.db, data.orderId) : null;
    if (!order) {
      await updateDeadLetter(deps.db, letter.id, pending, { status: 'parked', note: 'no such order: a poison job' });
      return { status: 'parked' };
    }
    await deps.db.transaction((tx) =>
      transitionOrder(tx, {
        orderId: order.id,
        to: 'FAILED',
        actor: 'worker:dead-letter',
        reason: data.message,
        failure: { reason: data.errorCode, step: data.step },
      }),
    );
    try {
      await compensateOrder(deps, { orderId: order.id, generation: data.generation });
    } catch (error) {
      if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
        const note = `compensation keeps failing: ${toAppError(error).message}`;
        await updateDeadLetter(deps.db, letter.id, pending, { status: 'compensation_failed', note });
      }
      throw error;
    }

    const captured = (await listPayments(deps.db, order.id)).some((p) => p.kind === 'capture');
    const decision = decideDeadLetter(
      { errorCode: data.errorCode, retries: order.generation - 1, captured },
      retryPolicy,
    );
    if (decision.action === 'retry') {
      const retryAt = new Date(Date.now() + decision.delayMs);
      const moved = await updateDeadLetter(deps.db, letter.id, pending, {
        status: 'retry_scheduled',
        note: decision.note,
        retryAt,
      });
      // Only the handler that moved the letter schedules its retry (a redelivered job finds it moved).
      if (moved) await queues.scheduleOrderRetry(letter.id, letter.retries, decision.delayMs);
    } else {
      await updateDeadLetter(deps.db, letter.id, pending, {
        status: decision.action === 'resolve' ? 'resolved' : 'parked',
        note: decision.note,
      });
    }
    await deps.invalidateOrder(order.id, order.customer_id);
    deps.log.info({ orderId: order.id, step: data.step, code: data.errorCode, decision }, 'dead letter handled');
    return decision;
  };
}
