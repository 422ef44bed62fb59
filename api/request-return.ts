import { createHash, randomBytes } from 'node:crypto';
import type { ReturnSettings } from '../config/index.ts';
import { AppError, ValidationError } from '../domain/errors.ts';
import { quoteReturn, type ReturnQuote } from '../domain/return-policy.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Db } from '../sql/database.ts';
import { claimIdempotencyKey, completeIdempotencyKey, releaseIdempotencyKey } from '../sql/idempotency-keys.ts';
import { createReturnFromQuote, insertQuote, loadReturnableOrder } from '../sql/return-quotes.ts';
import {
  type Disposition,
  endUnreceived,
  findReturn,
  lockReturn,
  markReceived,
  type ReturnRecord,
  returnView,
} from '../sql/returns.ts';
import type { Caller } from './auth.ts';

// The two steps of a return (SPEC §5) and what follows at the API: the quote, the return a quote's token
// creates, its receipt by an operator and its cancellation by the customer. The saga's steps run on the
// returns queue (workers/returns/); each write here invalidates the order's cached view after it commits.

export type ReturnDeps = {
  db: Db;
  queues: Pick<OrderQueues, 'enqueueReturnStep'>;
  log: Logger;
  invalidateOrder(orderId: string, customerId?: string): Promise<void>;
  idempotencyStaleAfterMs: number;
  returns: ReturnSettings;
  /** The clock of the window and the token's expiry. */
  now(): number;
};

const customerOf = (caller: Caller) => (caller.role === 'customer' ? caller.customerId : null);
const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export type QuoteAnswer = ReturnQuote & { orderId: string; token?: string; expiresAt?: number };

/**
 * Step 1: whether the items may be returned and for how much. Only an eligible quote gets a token, bound
 * to the customer, the order, the items with their quantities and the refund (a row of return_quotes; the
 * request that creates the return carries the token alone, so nothing of that can be changed).
 */
export async function quote(
  deps: ReturnDeps,
  caller: Caller,
  orderId: string,
  request: { items: Array<{ orderItemId: string; quantity: number }>; reason: string },
): Promise<QuoteAnswer> {
  const order = await loadReturnableOrder(deps.db, orderId);
  const viewer = customerOf(caller);
  // Another customer's order is "not found", as everywhere (api/read-routes.ts).
  if (!order || (viewer !== null && viewer !== order.customerId)) {
    throw new AppError('not_found', `Order ${orderId} not found`);
  }
  const now = deps.now();
  const answer = quoteReturn(
    order,
    request.items,
    viewer === null ? { role: 'admin' } : { role: 'customer', customerId: viewer },
    { windowDays: deps.returns.windowDays },
    now,
  );
  if (!answer.eligible) return { ...answer, orderId };
  const token = `rt_${randomBytes(32).toString('base64url')}`;
  const expiresAt = now + deps.returns.tokenTtlMs;
  await insertQuote(deps.db, {
    tokenHash: hashToken(token),
    customerId: order.customerId,
    orderId,
    items: answer.items.flatMap((v) =>
      v.eligible ? [{ sku: v.sku, quantity: v.quantity, refundCents: v.refundCents }] : [],
    ),
    reason: request.reason,
    refundCents: answer.refundCents,
    expiresAt,
  });
  return { ...answer, orderId, token, expiresAt };
}

export type CreatedReturn = { status: number; body: ReturnType<typeof returnView>; replayed: boolean };

/**
 * Step 2: the return a token stands for, with the Idempotency-Key handling of POST /orders (the same
 * key and body replay the first answer). The return is durable before its label step is enqueued; a lost
 * enqueue is found by the returns' sweep (workers/returns/sweep.ts).
 */
export async function createReturn(
  deps: ReturnDeps,
  caller: Caller,
  orderId: string,
  token: string,
  idempotencyKey: string | undefined,
): Promise<CreatedReturn> {
  const tokenHash = hashToken(token);
  const keyRef = idempotencyKey ? { apiKeyId: caller.apiKeyId, key: idempotencyKey } : undefined;
  if (keyRef) {
    const requestHash = createHash('sha256').update(`return\n${orderId}\n${tokenHash}`).digest('hex');
    const claim = await claimIdempotencyKey(deps.db, {
      ...keyRef,
      requestHash,
      staleAfterMs: deps.idempotencyStaleAfterMs,
    });
    if (claim.state === 'replay') {
      return { status: claim.status, body: claim.body as CreatedReturn['body'], replayed: true };
    }
    if (claim.state === 'mismatch') {
      throw new AppError('idempotency_key_reused', 'This Idempotency-Key was used with a different request body');
    }
    if (claim.state === 'in_flight') {
      throw new AppError('idempotency_key_in_flight', 'A request with this Idempotency-Key is still being processed');
    }
  }
  let record: ReturnRecord;
  try {
    record = await createReturnFromQuote(
      deps.db,
      { tokenHash, orderId, caller: customerOf(caller), rma: newRma(), now: deps.now() },
      async (tx, created) => {
        if (keyRef) await completeIdempotencyKey(tx, { ...keyRef, status: 201, body: returnView(created) });
      },
    );
  } catch (error) {
    if (keyRef) await releaseIdempotencyKey(deps.db, keyRef).catch(() => {});
    throw error;
  }
  await deps.invalidateOrder(orderId, record.customer_id);
  await enqueue(deps, record.rma, ['label']);
  return { status: 201, body: returnView(record), replayed: false };
}

/** RMA-<12 hex digits>: unique by the returns table's constraint, short enough to read over the phone. */
function newRma(): string {
  return `RMA-${randomBytes(6).toString('hex').toUpperCase()}`;
}

/** A customer's own return (or any, for an admin); another customer's is "not found". */
export function visibleReturn<T extends { customer_id: string }>(caller: Caller, rma: string, record: T | null): T {
  const viewer = customerOf(caller);
  if (!record || (viewer !== null && record.customer_id !== viewer)) {
    throw new AppError('not_found', `Return ${rma} not found`);
  }
  return record;
}

/**
 * An operator records what arrived, per item: how many units and their disposition (restock, damaged,
 * missing; an item not listed arrived not at all). Then the refund (for restock and damaged units) and
 * the restock (restock units only) run as saga steps. Receiving twice is a 409.
 */
export async function receiveReturn(
  deps: ReturnDeps,
  rma: string,
  lines: Array<{ orderItemId: string; quantity: number; disposition: Disposition }>,
): Promise<ReturnRecord> {
  const received = await deps.db.transaction(async (tx) => {
    const record = await lockReturn(tx, rma);
    if (!record) throw new AppError('not_found', `Return ${rma} not found`);
    if (record.status !== 'requested' && record.status !== 'awaiting_receipt') {
      throw new AppError('conflict', `Return ${rma} is ${record.status}: only a return awaiting receipt is received`, {
        details: { status: record.status },
      });
    }
    const problems = lines.flatMap((line, index) => {
      const item = record.items.find((i) => i.sku === line.orderItemId);
      const field = `items[${index}]`;
      if (!item) return [{ field: `${field}.orderItemId`, message: `return ${rma} has no item ${line.orderItemId}` }];
      if (lines.findIndex((l) => l.orderItemId === line.orderItemId) !== index) {
        return [{ field: `${field}.orderItemId`, message: `${line.orderItemId} is listed more than once` }];
      }
      if (line.quantity > item.quantity) {
        return [{ field: `${field}.quantity`, message: `${item.quantity} of ${item.sku} are returned, not more` }];
      }
      return [];
    });
    if (problems.length > 0) throw new ValidationError('The receipt does not match the return', problems);
    await markReceived(
      tx,
      record,
      lines.map((l) => ({
        sku: l.orderItemId,
        quantity: l.disposition === 'missing' ? 0 : l.quantity,
        disposition: l.disposition,
      })),
    );
    return record;
  });
  await deps.invalidateOrder(received.order_id, received.customer_id);
  await enqueue(deps, rma, ['refund', 'restock']);
  return reread(deps, rma);
}

/** A customer (or an operator) cancels a return until it is received: nothing is refunded, the items are free. */
export async function cancelReturn(
  deps: ReturnDeps,
  caller: Caller,
  rma: string,
): Promise<{ record: ReturnRecord; alreadyCancelled: boolean }> {
  const outcome = await deps.db.transaction(async (tx) => {
    const record = await visibleReturn(caller, rma, await lockReturn(tx, rma));
    if (record.status === 'cancelled') return { record, alreadyCancelled: true };
    if (record.status !== 'requested' && record.status !== 'awaiting_receipt') {
      throw new AppError(
        'conflict',
        `Return ${rma} is ${record.status}: it can be cancelled only until it is received`,
        {
          details: { status: record.status },
        },
      );
    }
    await endUnreceived(tx, record, 'cancelled');
    return { record, alreadyCancelled: false };
  });
  if (!outcome.alreadyCancelled) await deps.invalidateOrder(outcome.record.order_id, outcome.record.customer_id);
  return { record: await reread(deps, rma), alreadyCancelled: outcome.alreadyCancelled };
}

/** The return as committed, after the change. */
async function reread(deps: ReturnDeps, rma: string): Promise<ReturnRecord> {
  const record = await findReturn(deps.db, rma);
  if (!record) throw new AppError('internal', `Return ${rma} vanished`);
  return record;
}

async function enqueue(deps: ReturnDeps, rma: string, steps: Array<'label' | 'refund' | 'restock'>): Promise<void> {
  try {
    for (const step of steps) await deps.queues.enqueueReturnStep({ step, rma });
  } catch (error) {
    // The return is committed; the sweep enqueues its next step once it has been quiet for a while.
    deps.log.warn({ rma, err: (error as Error).message }, 'could not enqueue a return step; the sweep will');
  }
}
