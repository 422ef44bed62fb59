import type { Random } from '../../sandbox/faults.ts';
import { demoAddress } from '../../scripts/seed.ts';

// The load: orders posted at a steady rate through the real API, as a store's checkout would post them,
// with an Idempotency-Key and retries on 503 or a dropped connection. Only a 201 counts as accepted. A
// share of the orders is for the flash sale's hot SKU, whose door may refuse them: 409 `sold_out` (no
// unit left to admit) and 429 `checkout_busy` (orders for hot SKUs arriving faster than the pipeline
// completes them; come back after Retry-After). Those are refusals, not failures: counted apart, never
// as accepted.

export type Customer = { customerId: string; apiKey: string };
export type OrderBody = {
  region: string;
  items: Array<{ sku: string; quantity: number }>;
  shippingAddress: Record<string, string>;
  payment: { token: string };
};
export type PlannedOrder = { key: string; apiKey: string; body: OrderBody };
/** The answers a flash sale's door gives instead of taking an order. */
export const refusalCodes = ['sold_out', 'checkout_busy'] as const;
export type RefusalCode = (typeof refusalCodes)[number];
export type HotSku = { sku: string; region: string };
export type LoadResult = {
  submitted: number;
  accepted: string[];
  /** Orders the door refused: their last answer was one of the refusals (after its retries for a 429). */
  refused: Array<{ key: string; code: RefusalCode }>;
  notAccepted: Array<{ key: string; status: number | string }>;
  /**
   * Every answer the API gave, retries included, by HTTP status and error code ('503 database_unavailable';
   * 'network' when there was none).
   */
  answers: Record<string, number>;
  /** Answers that only a bug may give: 5xx other than 503. */
  serverErrors: Array<{ status: number; body: string }>;
};

const GOOD_CARD = '4242424242424242';
const DECLINED_CARDS = ['4000000000000002', '4000000000009995', '4000000000000069'];
// Weights per line. BERSERK-42 and FRIEREN-01-LTD get limited stock (out_of_stock races and releases),
// VAGABOND-VIZBIG-01 none at all in eu (it is not sold in us).
const SKU_WEIGHTS: Array<[string, number]> = [
  ['ONEPIECE-105', 0.3],
  ['CHAINSAW-05', 0.2],
  ['BERSERK-41', 0.15],
  ['BERSERK-42', 0.15],
  ['FRIEREN-01-LTD', 0.12],
  ['VAGABOND-VIZBIG-01', 0.08],
];
const MAX_TRIES = 12;
const RETRY_DELAY_MS = 1_000;
const REQUEST_TIMEOUT_MS = 10_000;
// A checkout told to come back does so, a few times, waiting what Retry-After says (capped, so that the
// load ends on time).
const BUSY_TRIES = 3;
const MAX_RETRY_AFTER_MS = 5_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random.next() * items.length)]!;
}

function pickSku(random: Random, region: string): string {
  let roll = random.next();
  for (const [sku, weight] of SKU_WEIGHTS) {
    roll -= weight;
    if (roll < 0) return sku === 'VAGABOND-VIZBIG-01' && region !== 'eu' ? 'ONEPIECE-105' : sku;
  }
  return 'ONEPIECE-105';
}

/** Whether an order has a line for the SKU in its region. */
export function isFor(body: OrderBody, hot: HotSku): boolean {
  return body.region === hot.region && body.items.some((item) => item.sku === hot.sku);
}

/**
 * Every order of the run, drawn up front so that the same seed always submits the same orders. A share
 * of them (`hot.share`) are the flash sale's: one or two units of the hot SKU alone; the others follow
 * the usual mix, which has the hot SKU too.
 */
export function planOrders(
  random: Random,
  customers: Customer[],
  count: number,
  seed: number,
  hot: HotSku & { share: number },
): PlannedOrder[] {
  return Array.from({ length: count }, (_, i) => {
    const flash = random.chance(hot.share);
    const region = flash ? hot.region : random.chance(0.75) ? 'eu' : 'us';
    const lines = !flash && random.chance(0.3) ? 2 : 1;
    const items = new Map<string, number>();
    while (items.size < lines) items.set(flash ? hot.sku : pickSku(random, region), random.chance(0.2) ? 2 : 1);
    const token = random.chance(0.1) ? pick(random, DECLINED_CARDS) : GOOD_CARD;
    return {
      key: `faults-${seed}-${i}`,
      apiKey: pick(random, customers).apiKey,
      body: {
        region,
        items: [...items].map(([sku, quantity]) => ({ sku, quantity })),
        shippingAddress: demoAddress,
        payment: { token },
      },
    };
  });
}

/** Posts the planned orders evenly over `durationMs`, each with its own retries, and waits for all. */
export async function runLoad(options: {
  apiUrl: string;
  orders: PlannedOrder[];
  durationMs: number;
  /** Each accepted order, with its index in `orders`; `count` accepted so far. */
  onAccepted?: (count: number, id: string, index: number, order: PlannedOrder) => void;
}): Promise<LoadResult> {
  const result: LoadResult = {
    submitted: 0,
    accepted: [],
    refused: [],
    notAccepted: [],
    answers: {},
    serverErrors: [],
  };
  const interval = options.durationMs / options.orders.length;
  const start = Date.now();
  const submissions = options.orders.map(async (order, i) => {
    await sleep(Math.max(0, start + i * interval - Date.now()));
    result.submitted += 1;
    const outcome = await submitOrder(options.apiUrl, order, result);
    if ('id' in outcome) {
      result.accepted.push(outcome.id);
      options.onAccepted?.(result.accepted.length, outcome.id, i, order);
    } else if ('refused' in outcome) result.refused.push({ key: order.key, code: outcome.refused });
    else result.notAccepted.push({ key: order.key, status: outcome.status });
  });
  await Promise.all(submissions);
  return result;
}

async function submitOrder(
  apiUrl: string,
  order: PlannedOrder,
  result: LoadResult,
): Promise<{ id: string } | { refused: RefusalCode } | { status: number | string }> {
  let last: number | string = 'never sent';
  let busy = 0;
  for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
    const answer = await post(apiUrl, order);
    last = answer.status;
    const code = answer.status === 'network' ? undefined : errorCode(answer.body);
    const label = code ? `${answer.status} ${code}` : String(answer.status);
    result.answers[label] = (result.answers[label] ?? 0) + 1;
    if (answer.status === 201) return { id: (JSON.parse(answer.body) as { id: string }).id };
    if (answer.status === 409 && code === 'sold_out') return { refused: code };
    if (answer.status === 429 && code === 'checkout_busy') {
      busy += 1;
      if (busy >= BUSY_TRIES) return { refused: code };
      await sleep(Math.min(answer.retryAfterMs ?? RETRY_DELAY_MS, MAX_RETRY_AFTER_MS));
      continue;
    }
    if (typeof answer.status === 'number' && answer.status >= 500 && answer.status !== 503) {
      result.serverErrors.push({ status: answer.status, body: answer.body.slice(0, 300) });
    }
    // 409: the first try with this key is still in flight (or was cut off); it clears in a moment.
    const retryable = answer.status === 'network' || answer.status === 409 || answer.status >= 500;
    if (!retryable) return { status: answer.status };
    await sleep(RETRY_DELAY_MS);
  }
  return { status: last };
}

/** The `error.code` of an error answer (`{ error: { code, message, details } }`), if it has one. */
function errorCode(body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

async function post(
  apiUrl: string,
  order: PlannedOrder,
): Promise<{ status: number | 'network'; body: string; retryAfterMs?: number }> {
  try {
    const response = await fetch(`${apiUrl}/orders`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${order.apiKey}`,
        'content-type': 'application/json',
        'idempotency-key': order.key,
      },
      body: JSON.stringify(order.body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const retryAfter = Number(response.headers.get('retry-after'));
    return {
      status: response.status,
      body: await response.text(),
      retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
    };
  } catch (error) {
    return { status: 'network', body: (error as Error).message };
  }
}
