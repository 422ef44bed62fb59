import { type Job, UnrecoverableError } from 'bullmq';
import type { OrderQueues } from '../queues/order-queues.ts';
import { flowAfter, hasChildren, type StepJobData, stepNames } from '../queues/order-workflow.ts';
import { runStep, type StepOutcome } from './run-step.ts';
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
 * - parked: a step after fulfilment failed for good; the order completed and the step's dead letter is
 *   parked (written with the failure); nothing is undone; the job fails without retry.
 *
 * Anything else thrown (the database down while recording a failure) is retried like a transient
 * error; after the last attempt the reconciler finds the order stuck and enqueues it again.
 *
 * Every attempt is timed by outcome here (runtime/metrics.ts); the workflow's last step done and an
 * ended order are where an order's outcome is counted.
 */
const lastStep = stepNames.at(-1);

export function createStepProcessor(step: Step, deps: StepDeps, queues: OrderQueues, worker: string) {
  return async (job: Job<StepJobData>) => {
    const data = job.data ?? ({} as StepJobData);
    // A job with no children in the flow has no results to read: that saves a round trip to Redis.
    const children = hasChildren(step.name) ? await job.getChildrenValues() : {};
    const inputs: Record<string, unknown> = Object.assign({}, ...Object.values(children));
    const number = job.attemptsMade + 1;
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    let outcome: StepOutcome;
    try {
      outcome = await runStep(step, deps, data, inputs, {
        number,
        isLast: number >= (job.opts.attempts ?? 1),
        worker,
        recovering: job.attemptsStarted > 1 || Number(data.round) > 0,
      });
    } catch (error) {
      deps.metrics.stepFinished(step.name, 'error', seconds());
      throw error;
    }
    deps.metrics.stepFinished(step.name, outcome.state, seconds());
    switch (outcome.state) {
      case 'done': {
        // Counted when this attempt completed the order: not for a success found again after a crash,
        // nor for a replayed step of an order that had completed already.
        if (step.name === lastStep && outcome.moved) deps.metrics.orderEnded('completed', 'notified');
        const flow = flowAfter(step.name, data);
        if (flow) await queues.addFlow(flow);
        return { ...inputs, [step.name]: outcome.output };
      }
      case 'retry':
        deps.metrics.stepRetried(step.name, outcome.error.code);
        deps.log.warn(
          { orderId: data.orderId, step: step.name, code: outcome.error.code, attempt: number },
          'retrying',
        );
        throw outcome.error;
      case 'ended':
        deps.log.warn({ orderId: data.orderId, step: step.name, code: outcome.error.code }, 'order failed');
        deps.metrics.orderEnded('failed', outcome.error.code);
        await queues.addDeadLetter(outcome.deadLetter);
        throw new UnrecoverableError(`${outcome.error.code}: ${outcome.error.message}`);
      case 'already-ended':
        if (outcome.compensate) await queues.compensateLater(data.orderId, data.generation, `${step.name}-${job.id}`);
        throw new UnrecoverableError(outcome.reason);
      case 'parked':
        // The order shipped and completed; only this step's dead letter waits for an operator.
        deps.log.warn({ orderId: data.orderId, step: step.name, code: outcome.error.code }, 'step parked');
        if (Number(data.round) === 0) deps.metrics.orderEnded('completed', `${step.name}_parked`);
        throw new UnrecoverableError(`${outcome.error.code}: ${outcome.error.message}`);
    }
  };
}
