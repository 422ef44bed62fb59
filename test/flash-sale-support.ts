import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { Registry } from 'prom-client';
import type { HotSku } from '../domain/heat.ts';
import type { InventoryEvent } from '../domain/stock-movements.ts';
import type { FlashSaleSettings } from '../flash-sale/start-flash-sale-controller.ts';
import { fromStreamFields } from '../flash-sale/stream-fields.ts';
import type { RedisClient } from '../runtime/redis.ts';
import type { Db } from '../sql/database.ts';
import { createFlashSale } from '../sql/flash-sales.ts';
import { deleteKeys } from './support/delete-keys.ts';
import { waitFor as waitUntil } from './support/wait-for.ts';

// Helpers shared by the flash-sale tests: a private Redis namespace, reading the stream and the hot hash.

export const privateNamespace = () => `oft-${randomBytes(4).toString('hex')}`;

/** Until `check` gives a truthy value, with the test's timeout as the only limit (test/support/wait-for.ts). */
export function waitFor<T>(check: () => Promise<T | undefined | null | false>, message: string): Promise<T> {
  return waitUntil(message, check) as Promise<T>;
}

/** Every entry of the stream, in stream order, repeats included. */
export async function streamEvents(
  redis: RedisClient,
  key: string,
): Promise<Array<InventoryEvent & { streamId: string }>> {
  const entries = await redis.xrange(key, '-', '+');
  return entries.map(([streamId, fields]) => {
    const event = fromStreamFields(fields);
    if (!event) throw new Error(`Stream entry ${streamId} is not an inventory event: ${fields.join(' ')}`);
    return { ...event, streamId };
  });
}

export async function hotEntry(
  redis: RedisClient,
  hashKey: string,
  region: string,
  sku: string,
): Promise<HotSku | null> {
  const raw = await redis.hget(hashKey, `${region}:${sku}`);
  return raw === null ? null : (JSON.parse(raw) as HotSku);
}

export async function deleteNamespace(redis: RedisClient, namespace: string): Promise<void> {
  await deleteKeys(redis, `${namespace}:*`);
}

export async function counterValue(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const metric = await registry.getSingleMetric(name)?.get();
  return (metric?.values ?? [])
    .filter((v) => Object.entries(labels).every(([k, value]) => v.labels[k] === value))
    .reduce((sum, v) => sum + v.value, 0);
}

/** A port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * A flash-sale controller's settings for tests about what it decides rather than when: fast loops, no
 * status port, the admission gate wide open.
 */
export const fastControllerSettings = {
  port: 0,
  evaluateEveryMs: 50,
  refreshSalesEveryMs: 50,
  relay: { intervalMs: 20 },
  consumer: { blockMs: 50 },
  admission: { reseedEveryMs: 100, gate: { minRate: 100_000, backlogSeconds: 1 } },
} satisfies Partial<FlashSaleSettings>;

/** Declares a flash sale of `skus` that began a second ago and lasts an hour. */
export function declareSale(
  db: Db,
  sale: { name: string; region: string; skus: string[]; purchaseLimit: number | null },
) {
  return createFlashSale(db, {
    ...sale,
    startsAt: new Date(Date.now() - 1_000),
    endsAt: new Date(Date.now() + 3_600_000),
  });
}
