import { z } from 'zod';
import type { Random } from '../../sandbox/faults.ts';
import { type Db, sql } from '../../sql/database.ts';
import { type Disposition, dispositions } from '../../sql/returns.ts';
import type { HotSku } from './load.ts';

// The returns load (issue 10): beside the order load, a share of the accepted orders is delivered and
// returned through the real API while the faults go on. As each picked order COMPLETES (read from the
// database, read-only), the carrier's control route delivers its parcel and the workers' tracking poll
// records it; then the customer quotes a return of one item (never a final-sale one, nor the flash sale's
// hot SKU, whose stock the flash-sale checks count), creates it with the token and an Idempotency-Key
// (sometimes twice at once, from two quotes: both answers must name one RMA), and either cancels it or
// an operator receives it with a disposition. Every return the load creates is cancelled or received, so
// none is left waiting once it is done.

export type ReturnChoice = {
  /** Two creates of the same item at once, each from its own quote and key. */
  twice: boolean;
  /** Cancelled by the customer: right after creating it, or once its label is booked. */
  cancel: 'no' | 'at-once' | 'after-label';
  disposition: Disposition;
  /** A fraction of the item's units returned (at least one). */
  share: number;
};
export type ReturnsLoadResult = {
  /** Accepted orders picked for a return, and what became of them. */
  picked: number;
  notCompleted: number;
  noReturnableItem: number;
  delivered: number;
  created: string[];
  cancelled: number;
  received: Record<Disposition, number>;
  /** Concurrent creates of one item: how many, and those whose answers did not name one RMA. */
  concurrentCreates: number;
  splitAnswers: string[];
  /** Every answer, retries included, by request, HTTP status and error code ('quote 200'). */
  answers: Record<string, number>;
  /** Answers the load did not expect (after retries), with the order they were for. */
  unexpected: Array<{ orderId: string; request: string; status: number | string; body: string }>;
  serverErrors: Array<{ status: number; body: string }>;
};

/**
 * Share of the planned orders picked for a return. About half of them end with a returnable item (the
 * rest are refused at the door, fail, or hold only the hot SKU or final-sale items): about 50 returns in a
 * full run, 14 with --quick.
 */
const PICK_SHARE = 0.19;
const DISPOSITIONS: Array<[Disposition, number]> = [
  ['restock', 0.55],
  ['damaged', 0.25],
  ['missing', 0.2],
];
const MAX_TRIES = 15;
const RETRY_DELAY_MS = 1_000;
const REQUEST_TIMEOUT_MS = 10_000;
const POLL_MS = 500;
/** How long a picked order may take to end, its delivery to be tracked, or its label to be booked. */
const WAIT_MS = 150_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The choices for each planned order (by its index), drawn up front from the seed: null when not picked. */
export function planReturns(random: Random, count: number): Array<ReturnChoice | null> {
  return Array.from({ length: count }, () => {
    if (!random.chance(PICK_SHARE)) return null;
    const twice = random.chance(0.25);
    const roll = random.next();
    const cancel = roll < 0.1 ? 'at-once' : roll < 0.2 ? 'after-label' : 'no';
    return { twice, cancel, disposition: pickDisposition(random.next()), share: random.next() };
  });
}

function pickDisposition(roll: number): Disposition {
  let left = roll;
  for (const [disposition, weight] of DISPOSITIONS) {
    left -= weight;
    if (left < 0) return disposition;
  }
  return 'restock';
}

type Answer = { status: number | 'network'; body: string; json?: unknown };
type Api = { url: string; key: string };

/** The state of the picked orders in the database, read for all of them at once every POLL_MS. */
const orderState = z.object({
  id: z.string(),
  status: z.string(),
  shipment_id: z.string().nullable(),
  delivered: z.boolean(),
});
type OrderState = z.infer<typeof orderState>;

export function startReturnsLoad(options: {
  db: Db;
  apiUrl: string;
  carrierUrl: string;
  adminKey: string;
  hot: HotSku;
  plan: Array<ReturnChoice | null>;
  keyPrefix: string;
}) {
  const result: ReturnsLoadResult = {
    picked: 0,
    notCompleted: 0,
    noReturnableItem: 0,
    delivered: 0,
    created: [],
    cancelled: 0,
    received: Object.fromEntries(dispositions.map((d) => [d, 0])) as Record<Disposition, number>,
    concurrentCreates: 0,
    splitAnswers: [],
    answers: {},
    unexpected: [],
    serverErrors: [],
  };
  const waiting = new Map<string, { until: (s: OrderState) => boolean; resolve: (s: OrderState | null) => void }>();
  let stopped = false;
  const polling = (async () => {
    while (!stopped || waiting.size > 0) {
      const ids = [...waiting.keys()];
      if (ids.length > 0) {
        // PostgreSQL restarts under the suite too: an unreadable poll is tried again.
        const rows = await options.db
          .any(sql.type(orderState)`
            SELECT o.id::text, o.status, s.carrier_shipment_id AS shipment_id, s.delivered_at IS NOT NULL AS delivered
            FROM orders o LEFT JOIN shipments s ON s.order_id = o.id WHERE o.id = ANY(${sql.array(ids, 'uuid')})`)
          .catch(() => []);
        for (const row of rows) {
          const waiter = waiting.get(row.id);
          if (waiter?.until(row)) {
            waiting.delete(row.id);
            waiter.resolve(row);
          }
        }
      }
      await sleep(POLL_MS);
    }
  })();
  const waitForOrder = (orderId: string, until: (s: OrderState) => boolean) =>
    new Promise<OrderState | null>((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(orderId);
        resolve(null);
      }, WAIT_MS);
      waiting.set(orderId, {
        until,
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
      });
    });

  const call = async (name: string, api: Api, method: string, path: string, body?: unknown, key?: string) => {
    let last: Answer = { status: 'network', body: 'never sent' };
    for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
      last = await send(api.url, method, path, api.key, body, key);
      const code = errorCode(last.json);
      const label = `${name} ${last.status}${code ? ` ${code}` : ''}`;
      result.answers[label] = (result.answers[label] ?? 0) + 1;
      if (typeof last.status === 'number' && last.status >= 500 && last.status !== 503) {
        result.serverErrors.push({ status: last.status, body: last.body.slice(0, 300) });
      }
      const retryable = last.status === 'network' || last.status >= 500 || code === 'idempotency_key_in_flight';
      if (!retryable) return { ...last, attempts: attempt };
      await sleep(RETRY_DELAY_MS);
    }
    return { ...last, attempts: MAX_TRIES };
  };
  const unexpected = (orderId: string, request: string, answer: { status: number | string; body: string }) => {
    result.unexpected.push({ orderId, request, status: answer.status, body: answer.body.slice(0, 300) });
  };

  async function returnOrder(orderId: string, customer: Api, choice: ReturnChoice, index: number): Promise<void> {
    const admin = { url: options.apiUrl, key: options.adminKey };
    const ended = await waitForOrder(orderId, (s) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(s.status));
    if (ended?.status !== 'COMPLETED' || !ended.shipment_id) {
      if (ended === null) unexpected(orderId, 'wait for the order to end', { status: 'timeout', body: '' });
      result.notCompleted += 1;
      return;
    }
    const view = await call('order', customer, 'GET', `/orders/${orderId}`);
    if (view.status !== 200) return unexpected(orderId, 'GET order', view);
    const order = view.json as { region: string; items: Array<{ sku: string; quantity: number; finalSale: boolean }> };
    const returnable = order.items.filter(
      (i) => !i.finalSale && !(i.sku === options.hot.sku && order.region === options.hot.region),
    );
    if (returnable.length === 0) {
      result.noReturnableItem += 1;
      return;
    }
    const item = returnable[index % returnable.length]!;
    const quantity = 1 + Math.floor(choice.share * item.quantity);

    const advanced = await send(options.carrierUrl, 'POST', `/_sandbox/shipments/${ended.shipment_id}/advance`, '', {
      to: 'delivered',
    });
    if (advanced.status !== 200) return unexpected(orderId, 'carrier advance', advanced);
    if (!(await waitForOrder(orderId, (s) => s.delivered))) {
      return unexpected(orderId, 'wait for the delivery to be tracked', { status: 'timeout', body: '' });
    }
    result.delivered += 1;

    const items = [{ orderItemId: item.sku, quantity }];
    const tokenFor = async () => {
      const quoted = await call('quote', customer, 'POST', `/orders/${orderId}/returns/quote`, {
        items,
        reason: 'Changed my mind',
      });
      const token = (quoted.json as { token?: string } | undefined)?.token;
      if (quoted.status !== 200 || !token) unexpected(orderId, 'quote', quoted);
      return token;
    };
    const create = async (token: string, key: string) => {
      const created = await call('create', customer, 'POST', `/orders/${orderId}/returns`, { token }, key);
      const rma = (created.json as { rma?: string; error?: { details?: { rma?: string } } } | undefined) ?? {};
      return { ...created, rma: rma.rma ?? rma.error?.details?.rma };
    };
    const key = `${options.keyPrefix}-return-${index}`;
    let rma: string | undefined;
    const first = await tokenFor();
    if (!first) return;
    if (choice.twice) {
      const second = await tokenFor();
      if (!second) return;
      result.concurrentCreates += 1;
      const answers = await Promise.all([create(first, key), create(second, `${key}-b`)]);
      const statuses = answers.map((a) => a.status).sort();
      const loser = answers.find((a) => a.status === 409);
      const one = answers[0]!.rma !== undefined && answers[0]!.rma === answers[1]!.rma;
      if (statuses.join() !== '201,409' || errorCode(loser?.json) !== 'already_returned' || !one) {
        result.splitAnswers.push(
          `${orderId}: ${answers.map((a) => `${a.status} ${errorCode(a.json) ?? ''} ${a.rma}`).join(' / ')}`,
        );
      }
      rma = answers.find((a) => a.status === 201)?.rma;
      if (!rma) return unexpected(orderId, 'create (twice at once)', answers[0]!);
    } else {
      const created = await create(first, key);
      if (created.status !== 201 || !created.rma) return unexpected(orderId, 'create', created);
      rma = created.rma;
    }
    result.created.push(rma);

    if (choice.cancel !== 'at-once' && !(await waitForLabel(rma, customer))) {
      return unexpected(orderId, `wait for ${rma}'s label`, { status: 'timeout', body: '' });
    }
    if (choice.cancel !== 'no') {
      const cancelled = await call('cancel', customer, 'POST', `/returns/${rma}/cancel`);
      if (cancelled.status !== 200) return unexpected(orderId, `cancel ${rma}`, cancelled);
      result.cancelled += 1;
      return;
    }
    const lines = [{ orderItemId: item.sku, quantity, disposition: choice.disposition }];
    const received = await call('receive', admin, 'POST', `/admin/returns/${rma}/receive`, { items: lines });
    // An answer lost after the receipt committed: the retry is told the return is received already.
    const status = (received.json as { error?: { details?: { status?: string } } } | undefined)?.error?.details?.status;
    const afterLoss =
      received.status === 409 && received.attempts > 1 && (status === 'received' || status === 'closed');
    if (received.status !== 200 && !afterLoss) return unexpected(orderId, `receive ${rma}`, received);
    result.received[choice.disposition] += 1;
  }

  async function waitForLabel(rma: string, customer: Api): Promise<boolean> {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const shown = await call('read', customer, 'GET', `/returns/${rma}`);
      if ((shown.json as { status?: string } | undefined)?.status === 'awaiting_receipt') return true;
      await sleep(POLL_MS);
    }
    return false;
  }

  const running: Array<Promise<void>> = [];
  return {
    /** Called with each accepted order and its index in the plan of the order load. */
    onAccepted(orderId: string, index: number, customerKey: string): void {
      const choice = options.plan[index];
      if (!choice) return;
      result.picked += 1;
      const customer = { url: options.apiUrl, key: customerKey };
      running.push(
        returnOrder(orderId, customer, choice, index).catch((error: unknown) =>
          unexpected(orderId, 'returns load', { status: 'error', body: (error as Error).message }),
        ),
      );
    },
    /** Waits for every picked order's return to be received or cancelled (or given up on). */
    async finish(): Promise<ReturnsLoadResult> {
      await Promise.all(running);
      stopped = true;
      await polling;
      return result;
    },
  };
}

/** The `error.code` of an error answer, if it has one. */
function errorCode(json: unknown): string | undefined {
  const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' ? code : undefined;
}

async function send(
  url: string,
  method: string,
  path: string,
  apiKey: string,
  body?: unknown,
  idempotencyKey?: string,
): Promise<Answer> {
  try {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, body: text, json };
  } catch (error) {
    return { status: 'network', body: (error as Error).message };
  }
}
