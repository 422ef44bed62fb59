import type { Redis } from 'ioredis';
import { type RedisKeys, redisKeys } from '../../cache/keys.ts';
import { createApiKey } from '../../sql/api-keys.ts';
import { upsertCustomer } from '../../sql/catalog.ts';
import { createDatabase } from '../../sql/database.ts';
import { epochNow, sleep } from '../support.ts';
import type { Buyer } from './load.ts';

// Before the race: the buyers' customers and API keys (as the demo seed makes its own), the SKU's stock
// set to the units on sale, the sale declared by an operator through the admin API, and the wait until
// the flash-sale controller has made the SKU hot and, when the admission gate exists, seeded its counter.

const HOT_TIMEOUT_MS = 30_000;
const POLL_MS = 25;

/** `count` customers with a customer API key each, in one transaction. */
export async function createBuyers(databaseUrl: string, count: number): Promise<Buyer[]> {
  const db = await createDatabase({ url: databaseUrl, poolSize: 1, statementTimeoutMs: 60_000 });
  try {
    return await db.transaction(async (tx) => {
      const buyers: Buyer[] = [];
      for (let i = 1; i <= count; i++) {
        const id = `bench_buyer_${String(i).padStart(5, '0')}`;
        await upsertCustomer(tx, { id, name: `Flash-sale buyer ${i}`, email: `${id}@bench.example` });
        buyers.push({ customerId: id, apiKey: await createApiKey(tx, { name: id, role: 'customer', customerId: id }) });
      }
      return buyers;
    });
  } finally {
    await db.end();
  }
}

export type Admin = { apiUrl: string; adminKey: string };

async function adminPost(admin: Admin, path: string, body: unknown): Promise<unknown> {
  const response = await fetch(`${admin.apiUrl}/admin${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST /admin${path} answered ${response.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

export async function setStock(admin: Admin, region: string, sku: string, available: number): Promise<void> {
  await adminPost(admin, `/inventory/${sku}/adjust`, { region, available });
}

/** Declares a sale of the SKU from now for an hour; returns its id. */
export async function declareSale(
  admin: Admin,
  sale: { region: string; sku: string; purchaseLimit: number },
): Promise<number> {
  const now = Date.now();
  const created = (await adminPost(admin, '/flash-sales', {
    name: `bench flash sale ${new Date(now).toISOString()}`,
    region: sale.region,
    skus: [sale.sku],
    startsAt: new Date(now).toISOString(),
    endsAt: new Date(now + 60 * 60_000).toISOString(),
    purchaseLimit: sale.purchaseLimit,
  })) as { id: number };
  return created.id;
}

/**
 * The admission counter's key. Taken from cache/keys.ts when it names one (the admission gate's code
 * defines it there); the pattern the gate was specified with otherwise.
 */
export function admissionKey(namespace: string, region: string, sku: string): string {
  const keys = redisKeys(namespace) as RedisKeys & { admission?: (region: string, sku: string) => string };
  return keys.admission?.(region, sku) ?? `${namespace}:admission:{${region}:${sku}}`;
}

export type Readiness = {
  /** ms from the sale's declaration to the hot hash entry. */
  hotAfterMs: number;
  hotEntry: unknown;
  admissionKey: string;
  /** ms from the declaration to the counter's existence; null when it did not appear in time. */
  admissionAfterMs: number | null;
};

/**
 * Waits, from `declaredAt` (epoch ms), for the hot hash entry (an error after 30 s: the controller is not
 * doing its job) and then, up to `admissionWaitMs`, for the admission counter.
 */
export async function waitUntilHot(
  redis: Redis,
  target: { namespace: string; region: string; sku: string; declaredAt: number; admissionWaitMs: number },
  signal: AbortSignal,
  failure: () => string | undefined,
  log: (message: string) => void,
): Promise<Readiness> {
  const keys = redisKeys(target.namespace);
  const field = keys.hotSkuField(target.region, target.sku);
  const counter = admissionKey(target.namespace, target.region, target.sku);
  let raw: string | null = null;
  for (const deadline = performance.now() + HOT_TIMEOUT_MS; raw === null; await sleep(POLL_MS)) {
    signal.throwIfAborted();
    const failed = failure();
    if (failed) throw new Error(`while waiting for the SKU to turn hot, ${failed}`);
    raw = await redis.hget(keys.hotSkus, field);
    if (raw === null && performance.now() > deadline) {
      throw new Error(
        `the flash-sale controller did not make ${field} hot within ${HOT_TIMEOUT_MS} ms of the declared sale (no field ${field} in ${keys.hotSkus})`,
      );
    }
  }
  const hotAfterMs = epochNow() - target.declaredAt;
  log(`${field} is hot after ${Math.round(hotAfterMs)} ms: ${raw}`);
  for (const deadline = performance.now() + target.admissionWaitMs; ; await sleep(POLL_MS)) {
    signal.throwIfAborted();
    const failed = failure();
    if (failed) throw new Error(`while waiting for the admission counter, ${failed}`);
    if ((await redis.exists(counter)) === 1) {
      const admissionAfterMs = epochNow() - target.declaredAt;
      log(`admission counter ${counter} seeded after ${Math.round(admissionAfterMs)} ms`);
      return { hotAfterMs, hotEntry: JSON.parse(raw), admissionKey: counter, admissionAfterMs };
    }
    if (performance.now() > deadline) break;
  }
  log(
    [
      '',
      `WARNING: the admission counter ${counter} did not appear within ${target.admissionWaitMs / 1000} s of the`,
      '         sale turning hot. The admission gate is not running (not built yet, or broken): the race goes',
      '         on without it, every order goes to the pipeline, and the results say so.',
      '',
    ].join('\n'),
  );
  return { hotAfterMs, hotEntry: JSON.parse(raw), admissionKey: counter, admissionAfterMs: null };
}

/** The counter's contents (a hash, or whatever type the gate gave it), for the record. */
export async function readCounter(redis: Redis, key: string): Promise<unknown> {
  const type = await redis.type(key);
  if (type === 'none') return null;
  if (type === 'hash') return redis.hgetall(key);
  if (type === 'string') return redis.get(key);
  return { type };
}
