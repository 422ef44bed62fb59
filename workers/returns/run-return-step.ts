import { type Job, UnrecoverableError } from 'bullmq';
import { AppError, toAppError } from '../../domain/errors.ts';
import { type ReturnJobData, type ReturnStepKind, returnStepPolicy } from '../../queues/order-workflow.ts';
import {
  findReturnStepOutput,
  orderGeneration,
  type ReturnStepRun,
  recordReturnStepFailure,
} from '../../sql/return-steps.ts';
import { findReturn } from '../../sql/returns.ts';
import type { StepDeps } from '../step.ts';
import { label } from './label.ts';
import { refund } from './refund.ts';
import { restock } from './restock.ts';
import type { ReturnStep } from './return-step.ts';

const returnSteps: Record<ReturnStepKind, ReturnStep> = { label, refund, restock };

/**
 * The returns queue's processor: one attempt of one return step. A success stored by an earlier attempt
 * is returned as it is; a transient failure is thrown for BullMQ to retry with the step's backoff (its
 * failed attempt in the ledger); a business failure, or the last attempt, parks the step's dead letter
 * and fails the job for good. The return stays where it was, for an operator.
 */
export function createReturnProcessor(deps: StepDeps, worker: string) {
  return async (job: Job<ReturnJobData>) => {
    const { step: kind, rma, replay } = job.data ?? ({} as ReturnJobData);
    const step = returnSteps[kind];
    if (!step || typeof rma !== 'string')
      throw new UnrecoverableError(`Not a return step: ${JSON.stringify(job.data)}`);
    const record = await findReturn(deps.db, rma);
    if (!record) throw new UnrecoverableError(`Return ${rma} does not exist`);
    const run: ReturnStepRun = {
      orderId: record.order_id,
      generation: await orderGeneration(deps.db, record.order_id),
      step: `return-${kind}:${rma}`,
      attempt: job.attemptsMade + 1,
      worker,
      startedAt: Date.now(),
    };
    const stored = await findReturnStepOutput(deps.db, run);
    if (stored !== undefined) return stored;
    try {
      const output = await step.run(deps, record, run, replay);
      await deps.invalidateOrder(record.order_id, record.customer_id);
      return output;
    } catch (caught) {
      const error = classify(caught);
      const final = !error.retryable || run.attempt >= (job.opts.attempts ?? returnStepPolicy.attempts);
      await recordReturnStepFailure(deps.db, run, error, final ? { payload: job.data, rma } : null);
      await deps.invalidateOrder(record.order_id, record.customer_id);
      if (!final) {
        deps.log.warn({ rma, step: run.step, code: error.code, attempt: run.attempt }, 'return step: retrying');
        throw error;
      }
      deps.log.error({ rma, step: run.step, code: error.code }, 'return step failed for good: parked');
      throw new UnrecoverableError(`${error.code}: ${error.message}`);
    }
  };
}

// As for the order's steps (workers/run-step.ts): an error nobody classified may be a blip, so it gets
// the step's retries before it is parked.
function classify(error: unknown): AppError {
  const appError = toAppError(error);
  if (appError.code !== 'internal') return appError;
  return new AppError('internal', appError.message, { retryable: true, cause: error });
}
