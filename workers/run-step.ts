import { AppError, toAppError } from '../domain/errors.ts';
import { isTerminal, type OrderStatus } from '../domain/order-status.ts';
import type { OrderRef } from '../queues/pipeline.ts';
import type { Tx } from '../sql/database.ts';
import { recordDeadLetter } from '../sql/dead-letters.ts';
import { findOrder, lockOrder, touchOrder, transitionOrder } from '../sql/orders.ts';
import { findStepOutput, finishAttempt, startAttempt, stepWasStarted } from '../sql/step-attempts.ts';
import { compensateOrder } from './compensate-order.ts';
import type { Step, StepDeps } from './step.ts';

export type StepOutcome = { state: 'done'; output: unknown } | { state: 'skipped'; reason: string };

/** A step failed; `final` says whether the order has been ended (no retry will follow). */
export class StepFailure extends Error {
  readonly error: AppError;
  readonly final: boolean;
  /** This failure ended the order (and wrote its dead letter); false when the order had ended already. */
  readonly endedOrder: boolean;
  constructor(error: AppError, final: boolean, endedOrder = final) {
    super(`${error.code}: ${error.message}`, { cause: error });
    this.name = 'StepFailure';
    this.error = error;
    this.final = final;
    this.endedOrder = endedOrder;
  }
}

/**
 * Runs one attempt of a step for an order, with its ledger row. Statuses move only along the state
 * machine and only for an order still in progress: a step that finds its order ended (cancelled, or
 * failed by the parallel step) stops, and if its effect already happened, undoes it.
 */
export async function runStep(
  step: Step,
  deps: StepDeps,
  ref: OrderRef,
  attempt: { worker: string; isLast: boolean; number: number },
): Promise<StepOutcome> {
  const { db } = deps;
  const { orderId } = ref;
  const run = { orderId, generation: ref.generation };
  const order = await findOrder(db, orderId);
  if (!order) throw new StepFailure(new AppError('not_found', `Order ${orderId} does not exist`), true);
  // An ended generation (the order failed, was cancelled, or was retried as a newer generation) may
  // still hold an effect of this step that landed after its compensation ran: an authorization whose
  // answer was lost to a timeout, a compensation that failed. A retry of the step is what comes back to
  // it, so it undoes what is left (idempotently) instead of just stopping.
  const ended = order.generation !== ref.generation || order.status === 'FAILED' || order.status === 'CANCELLED';
  if (ended) {
    if (step.compensate && (await stepWasStarted(db, run, step.name))) await compensateOrder(deps, run);
    return { state: 'skipped', reason: `generation ${ref.generation} of the order has ended (${order.status})` };
  }
  const stored = await findStepOutput(db, run, step.name);
  if (stored !== undefined) return { state: 'done', output: stored };
  if (isTerminal(order.status)) return { state: 'skipped', reason: `order is ${order.status}` };

  const actor = `worker:${step.name}`;
  const invalidate = () => deps.invalidateOrder(orderId, order.customer_id);
  const attemptId = await db.transaction(async (tx) => {
    const id = await startAttempt(tx, { ...run, step: step.name, worker: attempt.worker });
    await moveTo(tx, orderId, step.startStatus, actor, `${step.name} started`);
    return id;
  });
  await invalidate();

  let endedMeanwhile = false;
  try {
    const output = await step.run({
      ...deps,
      order,
      finish: (writes) =>
        db.transaction(async (tx) => {
          const status = await lockOrder(tx, orderId);
          const earlier = await findStepOutput(tx, run, step.name);
          if (earlier !== undefined) {
            await finishAttempt(tx, attemptId, {
              outcome: 'skipped',
              errorCode: 'duplicate',
              errorMessage: 'another attempt finished first',
            });
            return earlier as never;
          }
          const result = await writes(tx);
          await finishAttempt(tx, attemptId, { outcome: 'succeeded', output: result });
          endedMeanwhile = isTerminal(status);
          if (!endedMeanwhile) await moveTo(tx, orderId, step.endStatus, actor, `${step.name} succeeded`);
          return result;
        }),
    });
    await invalidate();
    if (endedMeanwhile) await compensateOrder(deps, run);
    return { state: 'done', output };
  } catch (caught) {
    const error = classify(caught);
    const final = !error.retryable || attempt.isLast;
    const endedOrder = await db.transaction(async (tx) => {
      await finishAttempt(tx, attemptId, { outcome: 'failed', errorCode: error.code, errorMessage: error.message });
      await touchOrder(tx, orderId);
      if (!final) return false;
      const failed = await transitionOrder(tx, {
        orderId,
        to: 'FAILED',
        actor,
        reason: error.message,
        failure: { reason: error.code, step: step.name },
      });
      if (!failed) return false;
      // The dead letter is written with the failure, so that a crash before its job is enqueued cannot
      // lose it: the reconciler enqueues dead letters left unhandled.
      await recordDeadLetter(tx, {
        ...run,
        step: step.name,
        errorCode: error.code,
        message: error.message,
        attempts: attempt.number,
        payload: ref,
      });
      return true;
    });
    await invalidate();
    // Ended by someone else while this attempt ran: that ending's dead letter covers the order; what
    // this step may have done meanwhile is undone here.
    if (final && !endedOrder && step.compensate) {
      await compensateOrder(deps, run).catch((err) =>
        deps.log.warn({ orderId, err: err.message }, 'compensation failed'),
      );
    }
    throw new StepFailure(error, final, endedOrder);
  }
}

// Errors we did not classify may be a blip we have not met before (a new network error), so they get
// the step's retries; after the last one they end the order like any other failure.
function classify(error: unknown): AppError {
  const appError = toAppError(error);
  if (appError.code !== 'internal') return appError;
  return new AppError('internal', appError.message, { retryable: true, cause: error });
}

async function moveTo(tx: Tx, orderId: string, to: OrderStatus | undefined, actor: string, reason: string) {
  const moved = to !== undefined && (await transitionOrder(tx, { orderId, to, actor, reason }));
  if (!moved) await touchOrder(tx, orderId);
}
