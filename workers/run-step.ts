import { AppError, BusinessError, TransientError, toAppError } from '../domain/errors.ts';
import { isUuid } from '../domain/ids.ts';
import { statusesBefore } from '../domain/order-status.ts';
import { type StepJobData, steps as workflow } from '../queues/order-workflow.ts';
import type { NewDeadLetter } from '../sql/dead-letters.ts';
import { loadOrderSnapshot, orderSnapshot } from '../sql/orders.ts';
import { failStep, findStepOutputs, type StepRun } from '../sql/step-runtime.ts';
import type { Step, StepDeps } from './step.ts';

// The runner: one attempt of one step, start to end. It is the whole protocol between a step and the
// rest of the system:
//
//   1. the step does its outside work and answers with its output and its commit (workers/step.ts);
//   2. the runner runs that commit with the ledger row and the status change: one statement, one
//      transaction (sql/step-runtime.ts), which first locks the order row; the commits of other orders
//      that wait at the same moment share its statement and its commit (sql/group-commit.ts), and
//      their ledger rows and status changes are written together;
//   3. it answers with an outcome, which the BullMQ adapter (step-processor.ts) turns into a job result:
//
//      done           the step succeeded (now, or in an earlier attempt): its output goes to the next steps
//      retry          a transient failure with attempts left: BullMQ retries it with the step's backoff
//      ended          this failure ended the order: FAILED and its dead letter were written with it
//      already-ended  the order had ended (failed elsewhere, cancelled, or a newer generation runs):
//                     nothing of this step is recorded as done, and what it did must be undone
//      parked         a step after fulfilment failed for good: the order completed anyway (it shipped)
//                     and the step's dead letter was parked with it, for an operator to replay; nothing
//                     is undone
//
// Compensation starts in one place, the dead-letter handler (or the compensate-order job for an
// effect that landed on an ended order), never here.

export type StepOutcome =
  /** `moved`: this attempt moved the order to the step's status (not a stored success found again). */
  | { state: 'done'; output: unknown; moved: boolean }
  | { state: 'retry'; error: AppError }
  | { state: 'ended'; error: AppError; deadLetter: NewDeadLetter }
  | { state: 'already-ended'; reason: string; compensate: boolean }
  | { state: 'parked'; error: AppError };

export type Attempt = {
  number: number;
  isLast: boolean;
  worker: string;
  /** The job ran before (a crash, a stalled lock) or was re-enqueued: look for a stored success first. */
  recovering: boolean;
};

export async function runStep(
  step: Step,
  deps: StepDeps,
  data: StepJobData,
  inputs: Record<string, unknown>,
  attempt: Attempt,
): Promise<StepOutcome> {
  const { db } = deps;
  const { orderId, generation } = data;
  const declared = workflow[step.name];
  const run: StepRun = {
    orderId: String(orderId),
    generation: Number(generation) || 0,
    step: step.name,
    attempt: attempt.number,
    worker: attempt.worker,
    startedAt: Date.now(),
    status: declared.status ?? null,
    from: declared.status ? statusesBefore(declared.status) : [],
    afterFulfilment: declared.afterFulfilment === true,
  };
  const parsed = orderSnapshot.safeParse(data.order);
  let customerId = parsed.success ? parsed.data.customerId : undefined;
  try {
    if (!isUuid(orderId)) throw new AppError('not_found', `Order ${String(orderId)} does not exist`);
    const stored = attempt.recovering ? await findStepOutputs(db, data, [step.name, ...step.needs]) : {};
    if (stored[step.name] !== undefined) return { state: 'done', output: stored[step.name], moved: false };
    const order = parsed.success ? parsed.data : await loadOrderSnapshot(db, orderId);
    if (!order) throw new AppError('not_found', `Order ${orderId} does not exist`);
    customerId = order.customerId;
    const needs = { ...stored, ...inputs };
    const missing = step.needs.filter((name) => needs[name] === undefined);
    if (missing.length > 0) Object.assign(needs, await findStepOutputs(db, data, missing));
    for (const name of step.needs) {
      if (needs[name] === undefined) throw new AppError('internal', `${step.name} ran before ${name} succeeded`);
    }

    const response = await withTimeout(
      (signal) => step.invoke({ ...deps, order, generation, inputs: needs as never, signal }),
      declared.policy.timeoutMs,
      step.name,
    );
    const answer = await deps.stepCommits.commit(run, response.commit, response.output, order);
    switch (answer.state) {
      case 'done':
        // A step after fulfilment may have resolved its parked dead letter (a replay), which the order's
        // view shows, without moving the order.
        if (answer.moved || run.afterFulfilment) await deps.invalidateOrder(orderId, customerId);
        return { state: 'done', output: answer.output, moved: answer.moved };
      case 'ended':
        return {
          state: 'already-ended',
          reason: `generation ${generation} of the order has ended (${answer.status})`,
          compensate: step.compensate !== undefined,
        };
      case 'missing':
        throw new AppError('not_found', `Order ${orderId} does not exist`);
      case 'rejected':
        throw rejection(answer.code, answer.details);
    }
  } catch (caught) {
    const error = classify(caught);
    const final = !error.retryable || attempt.isLast;
    const { order: _order, ...payload } = data;
    // A step after fulfilment never fails the order: its final failure moves it to the step's status.
    const from = run.afterFulfilment ? run.from : statusesBefore('FAILED');
    const { endedOrder, parked } = await failStep(
      db,
      { ...run, from, orderUuid: isUuid(orderId) ? orderId : null, payload },
      { code: error.code, message: error.message },
      final,
    );
    if ((endedOrder || parked) && customerId) await deps.invalidateOrder(orderId, customerId);
    if (!final) return { state: 'retry', error };
    if (parked) return { state: 'parked', error };
    if (endedOrder) {
      const deadLetter = {
        orderId: String(orderId),
        generation: Number(generation) || 0,
        step: step.name,
        errorCode: error.code,
        message: error.message,
        attempts: attempt.number,
        payload,
      };
      return { state: 'ended', error, deadLetter };
    }
    return { state: 'already-ended', reason: error.message, compensate: step.compensate !== undefined };
  }
}

// Errors we did not classify may be a blip we have not met before (a new network error), so they get
// the step's retries; after the last one they end the order like any other failure.
function classify(error: unknown): AppError {
  const appError = toAppError(error);
  if (appError.code !== 'internal') return appError;
  return new AppError('internal', appError.message, { retryable: true, cause: error });
}

/** A commit that refused: the business failure it stands for. */
function rejection(code: string, details: unknown): BusinessError {
  const lines = Array.isArray(details) ? (details as Array<{ sku: string; problem?: string }>) : [];
  if (code === 'out_of_stock') {
    return new BusinessError('out_of_stock', `Not enough stock for ${lines.map((l) => l.sku).join(', ')}`, lines);
  }
  if (code === 'invalid_order') {
    return new BusinessError('invalid_order', lines.map((l) => `${l.sku}: ${l.problem}`).join('; '), lines);
  }
  return new BusinessError(code as never, `The step was refused (${code})`, lines);
}

async function withTimeout<T>(work: (signal: AbortSignal) => Promise<T>, ms: number, step: string): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new TransientError('step_timeout', `${step} took longer than ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([work(controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
