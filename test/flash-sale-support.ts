import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { HotSku } from '../domain/heat.ts';
import type { InventoryEvent } from '../domain/stock-movements.ts';
import { fromStreamFields } from '../flash-sale/stream-fields.ts';
import { waitFor as waitUntil } from './support/wait-for.ts';

// Helpers shared by the flash-sale tests: a private Redis namespace, reading the stream and the hot hash.

export const privateNamespace = () => `oft-${randomBytes(4).toString('hex')}`;

/** Until `check` gives a truthy value, with the test's timeout as the only limit (test/support/wait-for.ts). */
export function waitFor<T>(check: () => Promise<T | undefined | null | false>, message: string): Promise<T> {
  return waitUntil(message, check) as Promise<T>;
}

/** Every entry of the stream, in stream order, repeats included. */
export async function streamEvents(redis: Redis, key: string): Promise<Array<InventoryEvent & { streamId: string }>> {
  const entries = await redis.xrange(key, '-', '+');
  return entries.map(([streamId, fields]) => {
    const event = fromStreamFields(fields);
    if (!event) throw new Error(`Stream entry ${streamId} is not an inventory event: ${fields.join(' ')}`);
    return { ...event, streamId };
  });
}

export async function hotEntry(redis: Redis, hashKey: string, region: string, sku: string): Promise<HotSku | null> {
  const raw = await redis.hget(hashKey, `${region}:${sku}`);
  return raw === null ? null : (JSON.parse(raw) as HotSku);
}

export async function deleteNamespace(redis: Redis, namespace: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
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
