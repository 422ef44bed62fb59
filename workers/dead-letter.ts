import type { Job } from 'bullmq';
import type { DeadLetterJobData } from '../queues/pipeline.ts';
import { transitionOrder } from '../sql/orders.ts';
import { compensateOrder } from './compensate-order.ts';
import type { StepDeps } from './step.ts';

/**
 * A step failed for good. The order is normally already FAILED (the step's failure transaction did it,
 * so that a parallel step stops at once); this makes sure of it, then runs the compensations. A
 * compensation that fails throws, and the dead-letter job retries with backoff until it succeeds.
 */
export function createDeadLetterProcessor(deps: StepDeps) {
  return async (job: Job<DeadLetterJobData>) => {
    const { orderId, step, errorCode, message } = job.data;
    await deps.db.transaction((tx) =>
      transitionOrder(tx, {
        orderId,
        to: 'FAILED',
        actor: 'worker:dead-letter',
        reason: message,
        failure: { reason: errorCode, step },
      }),
    );
    const undone = await compensateOrder(deps, orderId);
    deps.log.info({ orderId, step, errorCode, undone }, 'dead letter handled');
    return { undone };
  };
}
