import { Job } from 'bullmq';
import { Hono } from 'hono';
import { z } from 'zod';
import { type DeadLetterStatus, deadLetterStatuses } from '../domain/dead-letter-policy.ts';
import { AppError } from '../domain/errors.ts';
import { isUuid } from '../domain/ids.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import { DEAD_LETTER_QUEUE } from '../queues/order-workflow.ts';
import type { Db } from '../sql/database.ts';
import { type DeadLetter, findDeadLetter, listDeadLetters, updateDeadLetter } from '../sql/dead-letters.ts';
import { iso } from '../sql/order-view.ts';
import { reopenFailedOrder } from '../sql/orders.ts';
import { listPayments } from '../sql/payments.ts';
import type { AuthEnv } from './auth.ts';
import { noBody, pathParams, positiveIdParam, queryParams } from './input.ts';

const listQuery = z.strictObject({
  status: z.enum(deadLetterStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.coerce.number().int().min(1).optional(),
});
const letterPath = z.object({ id: positiveIdParam });
const open: readonly DeadLetterStatus[] = ['received', 'retry_scheduled', 'parked', 'compensation_failed', 'resolved'];

/** Operators' view of the dead letters: list them, replay one, discard one. Admin keys only. */
export function deadLetterRoutes(deps: {
  db: Db;
  queues: OrderQueues;
  invalidateOrder(orderId: string, customerId?: string): Promise<void>;
}) {
  const app = new Hono<AuthEnv>();

  app.get('/', queryParams(listQuery), async (c) => {
    const query = c.req.valid('query');
    const rows = await listDeadLetters(deps.db, {
      status: query.status,
      limit: query.limit,
      beforeId: query.before,
    });
    const last = rows.at(-1);
    return c.json({
      deadLetters: rows.map(present),
      next: rows.length === query.limit && last ? `?before=${last.id}` : null,
    });
  });

  app.get('/:id', pathParams(letterPath), async (c) => c.json(present(await load(deps.db, c.req.valid('param').id))));

  // Replay: a dead letter whose compensation kept failing gets its handling run again; any other whose
  // order is FAILED gets the order retried as a new generation (never one that was captured).
  app.post('/:id/replay', pathParams(letterPath), noBody(), async (c) => {
    const letter = await load(deps.db, c.req.valid('param').id);
    const actor = `api:${c.get('caller').name}`;
    if (letter.status === 'compensation_failed') {
      const job = await Job.fromId(
        deps.queues.queues[DEAD_LETTER_QUEUE],
        `${letter.order_id}-g${letter.generation}-${letter.step}`,
      );
      if (!job)
        throw new AppError('conflict', 'The dead-letter job is gone; the reconciler will retry the compensation');
      await updateDeadLetter(deps.db, letter.id, ['compensation_failed'], {
        status: 'received',
        note: `compensation replayed by ${actor}`,
      });
      await job.retry('failed');
      return c.json(present((await findDeadLetter(deps.db, letter.id))!), 202);
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

  app.post('/:id/discard', pathParams(letterPath), noBody(), async (c) => {
    const letter = await load(deps.db, c.req.valid('param').id);
    const note = `discarded by api:${c.get('caller').name}`;
    if (!(await updateDeadLetter(deps.db, letter.id, open, { status: 'discarded', note, retryAt: null }))) {
      throw new AppError('conflict', `The dead letter is already ${letter.status}`);
    }
    return c.json(present((await findDeadLetter(deps.db, letter.id))!));
  });

  return app;
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
