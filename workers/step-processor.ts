import { type Job, UnrecoverableError } from 'bullmq';
import type { OrderQueues } from '../queues/order-queues.ts';
import type { StepJobData } from '../queues/pipeline.ts';
import { runStep, StepFailure } from './run-step.ts';
import type { Step, StepDeps } from './step.ts';

/** Adapts a step to a BullMQ processor: attempts and dead letters are BullMQ's, the rest is the step's. */
export function createStepProcessor(step: Step, deps: StepDeps, queues: OrderQueues, worker: string) {
  return async (job: Job<StepJobData>) => {
    const { orderId } = job.data;
    const isLast = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    try {
      const outcome = await runStep(step, deps, orderId, { worker, isLast });
      // Validation is the one step outside the flow tree (see queues/flow.ts): it starts the rest.
      if (step.name === 'validate' && outcome.state === 'done') await queues.addFulfilmentFlow(orderId);
      return outcome;
    } catch (error) {
      if (!(error instanceof StepFailure)) throw error;
      deps.log.warn(
        { orderId, step: step.name, code: error.error.code, final: error.final, attempt: job.attemptsMade + 1 },
        error.message,
      );
      if (!error.final) throw error;
      await queues.addDeadLetter({
        orderId,
        step: step.name,
        errorCode: error.error.code,
        message: error.error.message,
        attempts: job.attemptsMade + 1,
      });
      throw new UnrecoverableError(error.message);
    }
  };
}
