import { type Job, UnrecoverableError } from 'bullmq';
import type { OrderQueues } from '../queues/order-queues.ts';
import { flowAfter, type StepJobData } from '../queues/order-workflow.ts';
import { runStep } from './run-step.ts';
import type { Step, StepDeps } from './step.ts';

/**
 * The one adapter between the runner's outcomes and BullMQ. A job returns the outputs of its step and of
 * every step before it in the flow, so a step reads what it needs from its children's results.
 *
 * - done: the first step adds the rest of the flow (queues/order-workflow.ts); the job completes.
 * - retry: the error is thrown and BullMQ retries with the step's backoff.
 * - ended: the dead letter (already written with the failure) is handed to the dead-letter queue, whose
 *   handler compensates and decides; the job fails without retry, and so do its parents.
 * - already-ended: an effect this step made on an ended order is undone by a compensate-order job.
 *
 * Anything else thrown (the database down while recording a failure) is retried like a transient
 * error; after the last attempt the reconciler finds the order stuck and enqueues it again.
 */
export function createStepProcessor(step: Step, deps: StepDeps, queues: OrderQueues, worker: string) {
  return async (job: Job<StepJobData>) => {
    const data = job.data ?? ({} as StepJobData);
    const inputs: Record<string, unknown> = Object.assign({}, ...Object.values(await job.getChildrenValues()));
    const number = job.attemptsMade + 1;
    const outcome = await runStep(step, deps, data, inputs, {
      number,
      isLast: number >= (job.opts.attempts ?? 1),
      worker,
      recovering: job.attemptsStarted > 1 || Number(data.round) > 0,
    });
    switch (outcome.state) {
      case 'done': {
        const flow = flowAfter(step.name, data);
        if (flow) await queues.addFlow(flow);
        return { ...inputs, [step.name]: outcome.output };
      }
      case 'retry':
        deps.log.warn(
          { orderId: data.orderId, step: step.name, code: outcome.error.code, attempt: number },
          'retrying',
        );
        throw outcome.error;
      case 'ended':
        deps.log.warn({ orderId: data.orderId, step: step.name, code: outcome.error.code }, 'order failed');
        await queues.addDeadLetter(outcome.deadLetter);
        throw new UnrecoverableError(`${outcome.error.code}: ${outcome.error.message}`);
      case 'already-ended':
        if (outcome.compensate) await queues.compensateLater(data.orderId, data.generation, `${step.name}-${job.id}`);
        throw new UnrecoverableError(outcome.reason);
    }
  };
}
