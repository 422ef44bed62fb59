import type { Random } from '../../sandbox/faults.ts';
import { demoAddress } from '../../scripts/seed.ts';

// The load: orders posted at a steady rate through the real API, as a store's checkout would post them,
// with an Idempotency-Key and retries on 503 or a dropped connection. Only a 201 counts as accepted.

export type Customer = { customerId: string; apiKey: string };
export type OrderBody = {
  region: string;
  items: Array<{ sku: string; quantity: number }>;
  shippingAddress: Record<string, string>;
  payment: { token: string };
};
export type PlannedOrder = { key: string; apiKey: string; body: OrderBody };
export type LoadResult = {
  submitted: number;
  accepted: string[];
  notAccepted: Array<{ key: string; status: number | string }>;
  /** Every answer the API gave, retries included, by HTTP status ('network' when there was none). */
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

/** Every order of the run, drawn up front so that the same seed always submits the same orders. */
export function planOrders(random: Random, customers: Customer[], count: number, seed: number): PlannedOrder[] {
  return Array.from({ length: count }, (_, i) => {
    const region = random.chance(0.75) ? 'eu' : 'us';
    const lines = random.chance(0.3) ? 2 : 1;
    const items = new Map<string, number>();
    while (items.size < lines) items.set(pickSku(random, region), random.chance(0.2) ? 2 : 1);
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
  onAccepted?: (count: number) => void;
}): Promise<LoadResult> {
  const result: LoadResult = { submitted: 0, accepted: [], notAccepted: [], answers: {}, serverErrors: [] };
  const interval = options.durationMs / options.orders.length;
  const start = Date.now();
  const submissions = options.orders.map(async (order, i) => {
    await sleep(Math.max(0, start + i * interval - Date.now()));
    result.submitted += 1;
    const outcome = await submitOrder(options.apiUrl, order, result);
    if (typeof outcome === 'string') {
      result.accepted.push(outcome);
      options.onAccepted?.(result.accepted.length);
    } else result.notAccepted.push({ key: order.key, status: outcome.status });
  });
  await Promise.all(submissions);
  return result;
}

async function submitOrder(
  apiUrl: string,
  order: PlannedOrder,
  result: LoadResult,
): Promise<string | { status: number | string }> {
  let last: number | string = 'never sent';
  for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
    const answer = await post(apiUrl, order);
    last = answer.status;
    result.answers[String(answer.status)] = (result.answers[String(answer.status)] ?? 0) + 1;
    if (answer.status === 201) return (JSON.parse(answer.body) as { id: string }).id;
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

async function post(apiUrl: string, order: PlannedOrder): Promise<{ status: number | 'network'; body: string }> {
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
    return { status: response.status, body: await response.text() };
  } catch (error) {
    return { status: 'network', body: (error as Error).message };
  }
}
