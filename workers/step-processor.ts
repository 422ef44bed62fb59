import { type Job, UnrecoverableError } from 'bullmq';
import { TransientError, toAppError } from '../domain/errors.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import { type StepJobData, stepPolicies } from '../queues/pipeline.ts';
import { runStep, StepFailure } from './run-step.ts';
import type { Step, StepDeps } from './step.ts';

/**
 * Adapts a step to a BullMQ processor. Retries and backoff are BullMQ's (the step's policy); a failure
 * that is final (a business outcome, or the last attempt) goes to the dead-letter queue, and the job
 * fails without retry. Anything else thrown (a bug, a malformed job) is retried like a transient error
 * and dead-lettered after its last attempt, so a poison job never loops.
 */
export function createStepProcessor(step: Step, deps: StepDeps, queues: OrderQueues, worker: string) {
  const policy = stepPolicies[step.name];
  return async (job: Job<StepJobData>) => {
    const ref = job.data;
    const attempt = job.attemptsMade + 1;
    const isLast = attempt >= (job.opts.attempts ?? 1);
    try {
      const outcome = await withTimeout(
        runStep(step, deps, ref, { worker, isLast, number: attempt }),
        policy.timeoutMs,
        step.name,
      );
      // Validation is the one step outside the flow tree (see queues/flow.ts): it starts the rest.
      if (step.name === 'validate' && outcome.state === 'done') await queues.addFulfilmentFlow(ref);
      return outcome;
    } catch (caught) {
      const failure = caught instanceof StepFailure ? caught : new StepFailure(toAppError(caught), isLast);
      deps.log.warn(
        { orderId: ref?.orderId, step: step.name, code: failure.error.code, final: failure.final, attempt },
        failure.message,
      );
      if (!failure.final) throw caught;
      if (!failure.endedOrder) throw new UnrecoverableError(failure.message);
      await queues.addDeadLetter({
        orderId: String(ref?.orderId),
        generation: Number(ref?.generation) || 0,
        step: step.name,
        errorCode: failure.error.code,
        message: failure.error.message,
        attempts: attempt,
        payload: job.data,
      });
      throw new UnrecoverableError(failure.message);
    }
  };
}

function withTimeout<T>(work: Promise<T>, ms: number, step: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TransientError('step_timeout', `${step} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
