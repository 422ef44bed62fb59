import { randomUUID } from 'node:crypto';
import { createRoute, z } from '@hono/zod-openapi';
import { Job } from 'bullmq';
import { type DeadLetterStatus, deadLetterKinds, deadLetterStatuses } from '../domain/dead-letter-policy.ts';
import { AppError } from '../domain/errors.ts';
import { isUuid } from '../domain/ids.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import {
  DEAD_LETTER_QUEUE,
  type OrderRef,
  parseReturnStep,
  type ReturnJobData,
  type StepName,
  stepJobId,
  stepNames,
  stepReplayJob,
} from '../queues/order-workflow.ts';
import type { Db } from '../sql/database.ts';
import {
  claimStepReplay,
  type DeadLetter,
  findDeadLetter,
  findEnqueueRound,
  listDeadLetters,
  updateDeadLetter,
} from '../sql/dead-letters.ts';
import { iso } from '../sql/order-view.ts';
import { reopenFailedOrder } from '../sql/orders.ts';
import { listPayments } from '../sql/payments.ts';
import type { AuthEnv } from './auth.ts';
import { noBody, positiveIdParam } from './input.ts';
import { apiKey, apiRoutes, errorAnswers, jsonAnswer, openapiRoute } from './openapi.ts';

const listQuery = z.strictObject({
  status: z.enum(deadLetterStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.coerce.number().int().min(1).optional(),
});
const letterPath = z.object({ id: positiveIdParam });
const open: readonly DeadLetterStatus[] = ['received', 'retry_scheduled', 'parked', 'compensation_failed', 'resolved'];

type ReplayDeps = {
  db: Db;
  queues: OrderQueues;
  invalidateOrder(orderId: string, customerId?: string): Promise<void>;
};

/** Operators' view of the dead letters: list them, replay one, discard one. Admin keys only. */
export function deadLetterRoutes(deps: ReplayDeps) {
  const app = apiRoutes<AuthEnv>();

  openapiRoute(app, listRoute, async (c) => {
    const query = c.req.valid('query');
    const rows = await listDeadLetters(deps.db, {
      status: query.status,
      limit: query.limit,
      beforeId: query.before,
    });
    const last = rows.at(-1);
    return c.json(
      {
        deadLetters: rows.map(present),
        next: rows.length === query.limit && last ? `?before=${last.id}` : null,
      },
      200,
    );
  });

  openapiRoute(app, showRoute, async (c) => c.json(present(await load(deps.db, c.req.valid('param').id)), 200));

  // Replay, by the letter's kind. A parked step after fulfilment (the notification of a shipped order)
  // runs that step again, alone. Of an order's letter: one whose compensation kept failing gets its
  // handling run again; any other whose order is FAILED gets the order retried as a new generation
  // (never one that was captured).
  openapiRoute(app, replayRoute, async (c) => {
    const letter = await load(deps.db, c.req.valid('param').id);
    const actor = `api:${c.get('caller').name}`;
    if (letter.kind === 'step') {
      const returnStep = parseReturnStep(letter.step);
      if (returnStep) await replayReturnStep(deps, letter, returnStep, actor);
      else await replayStep(deps, letter, actor);
      return c.json({ ...present((await findDeadLetter(deps.db, letter.id))!), generation: null }, 202);
    }
    if (letter.status === 'compensation_failed') {
      const job = await Job.fromId(
        deps.queues.forOrder(letter.order_id)[DEAD_LETTER_QUEUE],
        `${letter.order_id}-g${letter.generation}-${letter.step}`,
      );
      if (!job)
        throw new AppError('conflict', 'The dead-letter job is gone; the reconciler will retry the compensation');
      await updateDeadLetter(deps.db, letter.id, ['compensation_failed'], {
        status: 'received',
        note: `compensation replayed by ${actor}`,
      });
      await job.retry('failed');
      return c.json({ ...present((await findDeadLetter(deps.db, letter.id))!), generation: null }, 202);
    }
    // A poison job's letter names no order: there is nothing to retry.
    if (!isUuid(letter.order_id)) {
      throw new AppError('conflict', 'This dead letter is for a job that names no order: discard it instead');
    }
    if ((await listPayments(deps.db, letter.order_id)).some((p) => p.kind === 'capture')) {
      throw new AppError('conflict', 'The order was charged; replaying it could charge again. Resolve it by hand.');
    }
    const nothingToReplay = () =>
      new AppError(
        'conflict',
        `Nothing to replay: the dead letter is ${letter.status} and its order is not the failed one`,
      );
    const generation = await deps.db.transaction(async (tx) => {
      if (!(await updateDeadLetter(tx, letter.id, open, { status: 'replayed', note: `replayed by ${actor}` }))) {
        throw nothingToReplay();
      }
      const reopened = await reopenFailedOrder(tx, {
        orderId: letter.order_id,
        generation: letter.generation,
        actor,
        reason: 'replayed from the dead letters',
      });
      // Thrown, not returned: the letter must not stay marked replayed when its order was not reopened.
      if (reopened === null) throw nothingToReplay();
      return reopened;
    });
    await deps.invalidateOrder(letter.order_id);
    await deps.queues.enqueueOrder({ orderId: letter.order_id, generation, round: 0 });
    return c.json({ ...present((await findDeadLetter(deps.db, letter.id))!), generation }, 202);
  });

  openapiRoute(app, discardRoute, async (c) => {
    const letter = await load(deps.db, c.req.valid('param').id);
    const note = `discarded by api:${c.get('caller').name}`;
    if (!(await updateDeadLetter(deps.db, letter.id, open, { status: 'discarded', note, retryAt: null }))) {
      throw new AppError('conflict', `The dead letter is already ${letter.status}`);
    }
    return c.json(present((await findDeadLetter(deps.db, letter.id))!), 200);
  });

  return app;
}

/**
 * Runs a parked step again, alone, as a job of its queue under a new enqueue round: it finds the
 * outputs it needs in the ledger, and its success resolves the letter in the same transaction
 * (migration 006). Claiming the letter first (parked → replayed, under the round it saw) is what makes
 * two replays run it once. A letter already resolved (the step succeeded) is a 409, and so is one being
 * replayed, unless that replay's job is gone (Redis lost it): then it is claimed again.
 */
async function replayStep(deps: ReplayDeps, letter: DeadLetter, actor: string): Promise<void> {
  const step = stepNames.find((name) => name === letter.step);
  if (letter.status === 'resolved') {
    throw new AppError(
      'conflict',
      `Nothing to replay: ${letter.step} has succeeded since (the dead letter is resolved)`,
    );
  }
  if ((letter.status !== 'parked' && letter.status !== 'replayed') || !step) {
    throw new AppError('conflict', `Nothing to replay: the dead letter is ${letter.status}`);
  }
  const round = await findEnqueueRound(deps.db, letter);
  if (round === null) throw new AppError('conflict', `Nothing to replay: order ${letter.order_id} is not this run`);
  const ref = { orderId: letter.order_id, generation: letter.generation };
  if (letter.status === 'replayed' && (await replayRunning(deps.queues, step, { ...ref, round }))) {
    throw new AppError('conflict', `A replay of ${letter.step} is running; its dead letter resolves when it succeeds`);
  }
  const claimed = await deps.db.transaction((tx) =>
    claimStepReplay(
      tx,
      letter,
      { status: letter.status as 'parked' | 'replayed', round },
      `${step} replayed by ${actor}`,
    ),
  );
  if (claimed === null) throw new AppError('conflict', `A replay of ${letter.step} is running already`);
  const job = stepReplayJob({ ...ref, round: claimed }, step);
  try {
    await deps.queues.forOrder(letter.order_id)[step].add(job.name, job.data, job.opts);
  } catch (error) {
    // Not enqueued: the letter goes back to parked, so that the operator can replay it again.
    await updateDeadLetter(deps.db, letter.id, ['replayed'], {
      status: 'parked',
      note: `the replay by ${actor} could not be enqueued; replay again`,
    });
    throw error;
  }
  await deps.invalidateOrder(letter.order_id);
}

/**
 * Runs a parked step of a return's saga again. Claiming the letter (parked → replayed) is what makes two
 * replays run it once; the job gets an id of its own (the failed one is kept for a week and would swallow
 * a re-add under its id). The step resolves the letter when it succeeds, or parks it again.
 */
async function replayReturnStep(deps: ReplayDeps, letter: DeadLetter, step: ReturnJobData, actor: string) {
  if (letter.status !== 'parked')
    throw new AppError('conflict', `Nothing to replay: the dead letter is ${letter.status}`);
  const note = `${letter.step} replayed by ${actor}`;
  if (!(await updateDeadLetter(deps.db, letter.id, ['parked'], { status: 'replayed', note }))) {
    throw new AppError('conflict', `A replay of ${letter.step} is running already`);
  }
  try {
    await deps.queues.enqueueReturnStep(step, `replay-${letter.id}-${randomUUID().slice(0, 8)}`);
  } catch (error) {
    await updateDeadLetter(deps.db, letter.id, ['replayed'], {
      status: 'parked',
      note: `the replay by ${actor} could not be enqueued; replay again`,
    });
    throw error;
  }
}

/** Whether the replay job of that round is still waiting or running (not finished, not lost). */
async function replayRunning(queues: OrderQueues, step: StepName, ref: OrderRef): Promise<boolean> {
  const job = await Job.fromId(queues.forOrder(ref.orderId)[step], stepJobId(ref, step));
  if (!job) return false;
  const state = await job.getState();
  return state !== 'completed' && state !== 'failed' && state !== 'unknown';
}

async function load(db: Db, id: number): Promise<DeadLetter> {
  const letter = await findDeadLetter(db, id);
  if (!letter) throw new AppError('not_found', `Dead letter ${id} not found`);
  return letter;
}

function present(d: DeadLetter) {
  return {
    id: d.id,
    orderId: d.order_id,
    generation: d.generation,
    kind: d.kind,
    step: d.step,
    error: { code: d.error_code, message: d.error_message },
    attempts: d.attempts,
    status: d.status,
    retries: d.retries,
    retryAt: iso(d.retry_at),
    note: d.note,
    createdAt: iso(d.created_at),
    updatedAt: iso(d.updated_at),
  };
}

const deadLetter = z
  .object({
    id: z.int(),
    orderId: z.string().openapi({ description: 'The order (a UUID), or what a poison job named instead' }),
    generation: z.int(),
    kind: z.enum(deadLetterKinds).openapi({
      description:
        '`order`: the order failed and its effects were undone (replay retries the order); `step`: a step after fulfilment failed, the order completed (replay runs the step alone)',
    }),
    step: z.string(),
    error: z.object({ code: z.string(), message: z.string() }),
    attempts: z.int(),
    status: z.enum(deadLetterStatuses),
    retries: z.int(),
    retryAt: z.string().nullable(),
    note: z.string().nullable(),
    createdAt: z.string().nullable(),
    updatedAt: z.string().nullable(),
  })
  .openapi('DeadLetter');

const admin = { tags: ['Admin'], security: apiKey };

const listRoute = createRoute({
  ...admin,
  method: 'get',
  path: '/',
  operationId: 'listDeadLetters',
  summary: 'List dead letters',
  description: 'Newest first; `next` is the query of the following page, or null on the last one.',
  request: { query: listQuery },
  responses: {
    200: jsonAnswer(
      z.object({ deadLetters: z.array(deadLetter), next: z.string().nullable() }),
      'A page of dead letters',
    ),
    ...errorAnswers(400, 401, 403, 429, 503),
  },
});

const showRoute = createRoute({
  ...admin,
  method: 'get',
  path: '/{id}',
  operationId: 'getDeadLetter',
  summary: 'Show a dead letter',
  request: { params: letterPath },
  responses: { 200: jsonAnswer(deadLetter, 'The dead letter'), ...errorAnswers(400, 401, 403, 404, 429, 503) },
});

const replayRoute = createRoute({
  ...admin,
  method: 'post',
  path: '/{id}/replay',
  operationId: 'replayDeadLetter',
  summary: 'Replay a dead letter',
  description:
    'By its kind: a parked step after fulfilment (a notification) runs again alone; a failed compensation is run again; a failed order that was never charged is retried as a new generation (`generation`). Takes no body (or `{}`).',
  request: { params: letterPath },
  middleware: [noBody()] as const,
  responses: {
    202: jsonAnswer(
      deadLetter.extend({
        generation: z.int().nullable().openapi({ description: 'The retried order’s new generation' }),
      }),
      'The replay is under way',
    ),
    ...errorAnswers(400, 401, 403, 404, 409, 413, 415, 429, 503),
  },
});

const discardRoute = createRoute({
  ...admin,
  method: 'post',
  path: '/{id}/discard',
  operationId: 'discardDeadLetter',
  summary: 'Discard a dead letter',
  description: 'Nothing more will be done about it. Takes no body (or `{}`).',
  request: { params: letterPath },
  middleware: [noBody()] as const,
  responses: {
    200: jsonAnswer(deadLetter, 'The discarded dead letter'),
    ...errorAnswers(400, 401, 403, 404, 409, 413, 415, 429, 503),
  },
});
