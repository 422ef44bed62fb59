import { createHash, randomUUID } from 'node:crypto';
import type { RedisKeys } from '../cache/keys.ts';
import { findHotSku } from '../cache/stock-reader.ts';
import { AppError, BusinessError, ValidationError } from '../domain/errors.ts';
import type { HotSku } from '../domain/heat.ts';
import { priceOrder } from '../domain/pricing.ts';
import type { Admission } from '../flash-sale/admission.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import type { Logger } from '../runtime/logger.ts';
import type { RedisClient } from '../runtime/redis.ts';
import { findCustomerEmail } from '../sql/catalog.ts';
import type { Db, Tx } from '../sql/database.ts';
import { readIdempotencyKey, type TakenKey } from '../sql/idempotency-keys.ts';
import { lineView } from '../sql/order-view.ts';
import { insertOrder, lockCustomerSku, type OrderSnapshot, unitsOrderedSince } from '../sql/orders.ts';
import type { Caller } from './auth.ts';
import type { FindSellable } from './catalog-cache.ts';
import type { OrderRequest } from './order-request.ts';

export type PlaceOrderDeps = {
  db: Db;
  redis: RedisClient;
  keys: RedisKeys;
  queues: OrderQueues;
  admission: Admission;
  log: Logger;
  idempotencyStaleAfterMs: number;
  invalidateOrder(orderId: string, customerId?: string): Promise<void>;
  /** The catalog rows an order is priced from (api/catalog-cache.ts). */
  findSellable: FindSellable;
};
export type PlaceOrderResult = { status: number; body: OrderAccepted; replayed: boolean };
export type OrderAccepted = {
  id: string;
  status: 'PENDING';
  customerId: string;
  region: string;
  currency: string;
  totalCents: number;
  items: Array<{ sku: string; name: string; quantity: number; unitPriceCents: number; lineTotalCents: number }>;
  links: { self: string };
};

/**
 * Accepts an order: prices it from the catalog, stores it as PENDING with its history row (and the
 * Idempotency-Key with its answer) in one statement, then enqueues it. The order is durable before it
 * is enqueued; if Redis is down at that moment the caller still gets 201 and the reconciler enqueues it.
 */
export async function placeOrder(
  deps: PlaceOrderDeps,
  caller: Caller,
  request: OrderRequest,
  idempotencyKey: string | undefined,
): Promise<PlaceOrderResult> {
  const customerId = await resolveCustomer(deps.db, caller, request.customerId);
  const keyRef = idempotencyKey ? { apiKeyId: caller.apiKeyId, key: idempotencyKey } : undefined;
  const id = randomUUID();
  // A flash sale's door comes first, so a sold-out answer costs PostgreSQL nothing. A request whose
  // Idempotency-Key was admitted before is a retry: its key is looked up first, so it replays its first
  // answer, sold out or not, and only a request whose key has no answer meets the door again.
  // The hot list and the door's counters are asked at once (one write on the API's auto-pipelined
  // connection): only a SKU the controller holds hot has a counter, so the line of any other SKU comes
  // back untracked, and a sold-out answer waits for one round trip to Redis, not two.
  const keyMark = keyRef ? `${keyRef.apiKeyId}:${keyRef.key}` : '';
  const [hot, door] = await Promise.all([hotLines(deps, request), takeTickets(deps, id, request, keyMark)]);
  const requestHash = keyRef ? hashRequest(customerId, request) : '';
  let tickets = door.tickets;
  try {
    if (door.retry && keyRef) {
      // Admitted under this key before: the first answer, if there is one, whatever the stock is now.
      const known = await readIdempotencyKey(deps.db, { ...keyRef, requestHash });
      if (known) return answerFromKey(known);
      tickets = (await takeTickets(deps, id, request, '')).tickets;
    }
    await passTheGate(deps, hot, tickets);
    const actor = `api:${caller.name}`;
    // Priced from the cached catalog first; the statement that stores the order checks the prices, and
    // when one changed meanwhile the order is priced again from PostgreSQL. The key is claimed by that
    // same statement: taken already, it is answered as the first request was.
    for (let attempt = 1; attempt <= 3; attempt++) {
      const priced = await priceFromCatalog(deps, request, attempt > 1);
      const body: OrderAccepted = {
        id,
        status: 'PENDING',
        customerId,
        region: request.region,
        currency: priced.currency,
        totalCents: priced.totalCents,
        items: priced.lines.map(lineView),
        links: { self: `/orders/${id}` },
      };
      const order = {
        id,
        customerId,
        region: request.region,
        currency: priced.currency,
        totalCents: priced.totalCents,
        shippingAddress: request.shippingAddress,
        paymentToken: request.payment.token,
        items: priced.lines,
      };
      const claim = keyRef && {
        ...keyRef,
        requestHash,
        staleAfterMs: deps.idempotencyStaleAfterMs,
        status: 201,
        body,
      };
      // One statement (its own transaction); purchase limits need a transaction around it, with the
      // customer's lock.
      const inserted =
        hot.length === 0
          ? await insertOrder(deps.db, order, actor, claim)
          : await deps.db.transaction(async (tx) => {
              await enforcePurchaseLimits(tx, customerId, request.region, hot);
              return insertOrder(tx, order, actor, claim);
            });
      if (inserted.placed) {
        await enqueue(deps, id, customerId, inserted.snapshot);
        return { status: 201, body, replayed: false };
      }
      if (inserted.reason === 'key_taken' && keyRef) {
        const known = await readIdempotencyKey(deps.db, { ...keyRef, requestHash });
        if (known) {
          await giveBack(deps, tickets); // a request with the same key was first
          return answerFromKey(known);
        }
        // Released between the two statements (a request of another kind that failed): try again.
      }
    }
    // The catalog (or the key) changed under every attempt: rare enough to let the client retry.
    throw new AppError('conflict', 'The catalog changed while this order was being placed; retry');
  } catch (error) {
    await giveBack(deps, tickets);
    throw error;
  }
}

/** A request whose Idempotency-Key is taken: the first answer, or why it cannot have one. */
function answerFromKey(known: TakenKey): PlaceOrderResult {
  if (known.state === 'mismatch') {
    throw new AppError('idempotency_key_reused', 'This Idempotency-Key was used with a different request body');
  }
  if (known.state === 'in_flight') {
    throw new AppError(
      'idempotency_key_in_flight',
      'A request with this Idempotency-Key is still being processed; retry shortly',
    );
  }
  return { status: known.status, body: known.body as OrderAccepted, replayed: true };
}

/** Prices the order from the catalog; every line must be a SKU we sell in the order's region. */
async function priceFromCatalog(deps: PlaceOrderDeps, request: OrderRequest, fresh: boolean) {
  const skus = request.items.map((i) => i.sku);
  const catalog = await deps.findSellable(request.region, skus, { fresh });
  const priced = priceOrder(request.items, catalog);
  if (!priced.ok) throw new ValidationError('The order refers to things we do not sell', priced.problems);
  const stocked = new Set(catalog.filter((c) => c.stocked).map((c) => c.sku));
  const unsold = request.items.flatMap((item, i) =>
    stocked.has(item.sku)
      ? []
      : [{ field: `items[${i}].sku`, message: `"${item.sku}" is not sold in region "${request.region}"` }],
  );
  if (unsold.length > 0) throw new ValidationError('Some items are not sold in this region', unsold);
  return priced;
}

/**
 * The lines whose SKU the flash-sale controller holds hot. Without Redis there is no hot list: the order
 * is still taken (it is durable in PostgreSQL), without purchase limits or a door, rather than refused.
 */
async function hotLines(deps: PlaceOrderDeps, request: OrderRequest) {
  const hotness = await Promise.all(
    request.items.map((item) => findHotSku(deps.redis, deps.keys, request.region, item.sku)),
  ).catch((error) => {
    deps.log.warn({ err: (error as Error).message }, 'hot SKUs unknown (Redis unavailable); purchase limits skipped');
    return request.items.map(() => null);
  });
  return hotness.flatMap((h, i) => (h ? [{ hot: h, quantity: request.items[i]!.quantity }] : []));
}

/** The order is durable before it is enqueued: if Redis is down now, the reconciler enqueues it later. */
async function enqueue(deps: PlaceOrderDeps, id: string, customerId: string, snapshot: OrderSnapshot): Promise<void> {
  await deps.invalidateOrder(id, customerId);
  try {
    await deps.queues.enqueueOrder({ orderId: id, generation: 1, round: 0, order: snapshot });
  } catch (error) {
    deps.log.warn(
      { orderId: id, err: (error as Error).message },
      'order stored but not enqueued; the reconciler will pick it up',
    );
  }
}

type Ticket = { region: string; sku: string; orderId: string };

/**
 * The door of a flash sale (SPEC §4): a ticket from the admission counter of each line's SKU, which only
 * a hot SKU has (sold out → 409 at once, nothing stored; as many units waiting for the pipeline as the
 * gate allows → 429). The tickets are given back if the order is refused here or later in this request.
 * Without Redis, or without a counter, the line takes the normal path: the reserve step decides.
 */
async function takeTickets(
  deps: PlaceOrderDeps,
  orderId: string,
  request: OrderRequest,
  keyMark: string,
): Promise<{ tickets: Ticket[]; retry: boolean }> {
  const region = request.region;
  const tickets: Ticket[] = [];
  try {
    for (const { sku, quantity } of request.items) {
      const answer = await deps.admission.admit(region, sku, orderId, quantity, keyMark);
      if (answer.outcome === 'untracked') continue;
      if (answer.outcome === 'retry') {
        await giveBack(deps, tickets);
        return { tickets: [], retry: true };
      }
      // The units admitted for this SKU and not reserved yet are the backlog the gate allows: when one
      // reserves is not known here, so the buyer comes back after the shortest wait HTTP can say.
      if (answer.outcome === 'busy') throw checkoutBusy(1_000);
      if (answer.outcome === 'sold_out') {
        throw new BusinessError(
          'sold_out',
          answer.left > 0
            ? `Only ${answer.left} of ${sku} left, fewer than the ${quantity} ordered`
            : `${sku} is sold out${answer.restockDate ? `; more is expected on ${answer.restockDate}` : ''}`,
          { sku, region, left: answer.left, restockDate: answer.restockDate },
        );
      }
      tickets.push({ region, sku, orderId });
    }
    return { tickets, retry: false };
  } catch (error) {
    await giveBack(deps, tickets);
    if (error instanceof AppError) throw error;
    // Redis failed: the sale's door is open, as it is without a hot list (PostgreSQL still decides).
    deps.log.warn({ orderId, err: (error as Error).message }, 'admission unavailable (Redis); order admitted');
    return { tickets: [], retry: false };
  }
}

/**
 * Then the admission gate, for an order that holds hot SKUs (with a counter or not yet): a token from its
 * bucket, or 429 with the wait until the next one, the order's tickets given back.
 */
async function passTheGate(
  deps: PlaceOrderDeps,
  hot: ReadonlyArray<{ hot: HotSku; quantity: number }>,
  tickets: readonly Ticket[],
): Promise<void> {
  if (hot.length === 0) return;
  let waitMs: number | null;
  try {
    waitMs = await deps.admission.takeToken();
  } catch (error) {
    deps.log.warn({ err: (error as Error).message }, 'admission gate unavailable (Redis); order let through');
    return;
  }
  if (waitMs === null) return;
  await giveBack(deps, tickets);
  throw checkoutBusy(waitMs);
}

/** 429 with the wait rounded up to whole seconds (Retry-After has no finer unit), at least one. */
function checkoutBusy(waitMs: number): AppError {
  return new AppError(
    'checkout_busy',
    'Orders for this sale are arriving faster than we can complete them; retry shortly',
    {
      retryable: true,
      details: { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) },
    },
  );
}

async function giveBack(deps: PlaceOrderDeps, tickets: readonly Ticket[]): Promise<void> {
  for (const t of tickets) {
    await deps.admission.giveBack(t.region, t.sku, t.orderId).catch((error) => {
      // The controller's next seed drops a ticket whose order was never stored.
      deps.log.warn({ ...t, err: (error as Error).message }, 'admission ticket not given back');
    });
  }
}

// While a SKU is hot, each customer may buy at most its purchase limit since it turned hot. Counted in
// PostgreSQL under a per-customer, per-SKU lock, in the transaction that stores the order: two
// concurrent checkouts by one customer cannot both slip under the limit.
async function enforcePurchaseLimits(
  tx: Tx,
  customerId: string,
  region: string,
  hot: ReadonlyArray<{ hot: HotSku; quantity: number }>,
): Promise<void> {
  for (const { hot: sku, quantity } of hot) {
    await lockCustomerSku(tx, customerId, sku.sku, region);
    const bought = await unitsOrderedSince(tx, { customerId, sku: sku.sku, region, since: new Date(sku.since) });
    if (bought + quantity > sku.purchaseLimit) {
      throw new BusinessError(
        'purchase_limit_exceeded',
        `${sku.sku} is limited to ${sku.purchaseLimit} per customer during this sale; you have ${bought} already`,
        { sku: sku.sku, limit: sku.purchaseLimit, alreadyOrdered: bought, requested: quantity },
      );
    }
  }
}

async function resolveCustomer(db: Db, caller: Caller, requested: string | undefined): Promise<string> {
  if (caller.role === 'customer') {
    if (requested !== undefined && requested !== caller.customerId) {
      throw new AppError('forbidden', 'A customer API key can only place orders for its own customer');
    }
    return caller.customerId!;
  }
  if (!requested)
    throw new ValidationError('customerId is required with an admin key', [
      { field: 'customerId', message: 'is required with an admin key' },
    ]);
  if ((await findCustomerEmail(db, requested)) === null) {
    throw new ValidationError(`There is no customer ${requested}`, [
      { field: 'customerId', message: 'is not a known customer' },
    ]);
  }
  return requested;
}

/** What makes two requests "the same" for an Idempotency-Key: the customer and the parsed body. */
export function hashRequest(customerId: string, request: OrderRequest): string {
  return createHash('sha256').update(stableJson({ customerId, request })).digest('hex');
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
