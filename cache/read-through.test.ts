import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisUrl } from '../test/support/env.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { createCacheMetrics } from './metrics.ts';
import { createReadThrough } from './read-through.ts';

// Two API processes sharing one Redis: two read-throughs, each with its own connection (and its own
// in-process coalescing), on the real server. The loads are the test's, so it decides when they end.
const namespace = `oft-rt-${randomBytes(4).toString('hex')}`;
let connections: Redis[] = [];

beforeAll(() => {
  connections = [new Redis(redisUrl), new Redis(redisUrl)];
});
afterAll(async () => {
  const keys = await connections[0]!.keys(`${namespace}:*`);
  if (keys.length > 0) await connections[0]!.del(...keys);
  for (const redis of connections) redis.disconnect();
});

function apiProcess(redis: Redis, fillLockMs = 5_000) {
  // A budget longer than any test: the reads here wait for their value, never answer from a stale copy.
  return createReadThrough(redis, {
    budgetMs: 60_000,
    staleRetentionMs: 60_000,
    metrics: createCacheMetrics(new Registry()),
    fillLockMs,
  });
}

/** A load that runs until the test releases it, counting how many times it ran. */
function heldLoad<T>(value: T) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const load = async () => {
    load.calls += 1;
    await released;
    return value;
  };
  load.calls = 0;
  return { load, release };
}

describe('a cold key read by two processes at once', () => {
  it('is loaded once even when the load outlasts the fill lock: the holder keeps it, the other waits', async () => {
    const key = `${namespace}:slow`;
    const [a, b] = [apiProcess(connections[0]!, 2_000), apiProcess(connections[1]!, 2_000)];
    const { load, release } = heldLoad({ answer: 42 });
    const first = a.read('test', key, 60_000, load);
    await waitFor('the first reader to take the fill lock', () => connections[0]!.exists(`${key}:fill`));
    const second = b.read('test', key, 60_000, load);
    // The lock lives 2 s and is renewed every 2/3 s: renewed four times, it has outlived its first TTL.
    let renewals = 0;
    let lastTtl = Number.POSITIVE_INFINITY;
    await waitFor('the holder to renew its lock four times', async () => {
      const ttl = await connections[1]!.pttl(`${key}:fill`);
      if (ttl > lastTtl) renewals += 1;
      lastTtl = ttl;
      return renewals >= 4;
    });
    release();
    const answers = await Promise.all([first, second]);
    expect(answers.map((r) => r.value)).toEqual([{ answer: 42 }, { answer: 42 }]);
    expect(load.calls).toBe(1);
  });

  it('is not loaded again by a process that missed just before the other process wrote it', async () => {
    const key = `${namespace}:late`;
    // The second process's connection holds its lock attempt back until the first fill is done, as a
    // busy event loop would: its miss was read before the value existed, its lock taken after.
    const { promise: attempted, resolve: lockAttempted } = Promise.withResolvers<void>();
    const { promise: lockHeldBack, resolve: letLockThrough } = Promise.withResolvers<void>();
    const slow = connections[1]!;
    const heldBack = new Proxy(slow, {
      get(target, property) {
        if (property === 'set') {
          return async (...args: Parameters<Redis['set']>) => {
            lockAttempted();
            await lockHeldBack;
            return target.set(...args);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const [a, b] = [apiProcess(connections[0]!), apiProcess(heldBack)];
    let loads = 0;
    const load = async () => {
      loads += 1;
      return { answer: 7 };
    };
    const second = b.read('test', key, 60_000, load);
    await attempted;
    expect((await a.read('test', key, 60_000, load)).source).toBe('database');
    letLockThrough();
    expect(await second).toMatchObject({ value: { answer: 7 } });
    expect(loads).toBe(1);
  });
});

describe('a fill slower than the budget', () => {
  function withBudget(budgetMs: number) {
    const registry = new Registry();
    const cache = createReadThrough(connections[0]!, {
      budgetMs,
      staleRetentionMs: 60_000,
      metrics: createCacheMetrics(registry),
    });
    const waits = async () =>
      Number(/orderflow_cache_waits_total\{cache="test"\} (\d+)/.exec(await registry.metrics())?.[1] ?? 0);
    return { cache, waits };
  }

  it('serves the stale copy when there is one, and waits for the database when there is none', async () => {
    const key = `${namespace}:budget`;
    const { cache, waits } = withBudget(1);
    const cold = heldLoad({ answer: 1 });
    const first = cache.read('test', key, 60_000, cold.load);
    await waitFor('the read to outlast its budget and wait', waits, (n) => n === 1);
    cold.release();
    expect(await first).toMatchObject({ value: { answer: 1 }, source: 'database' });

    await cache.invalidate([key]); // the fresh copy goes, the stale one stays
    const slow = heldLoad({ answer: 2 });
    expect(await cache.read('test', key, 60_000, slow.load)).toMatchObject({ value: { answer: 1 }, source: 'stale' });
    slow.release();
    await waitFor(
      'the slow fill to land',
      () => cache.read('test', key, 60_000, slow.load),
      (r) => r.source === 'cache',
    );
    expect(slow.load.calls).toBe(1);
    expect(await waits()).toBe(1);
  });

  it('takes an entry it cannot read for a miss', async () => {
    const key = `${namespace}:corrupt`;
    const { cache } = withBudget(60_000);
    const asOf = `${Date.now()}|${new Date().toISOString()}`;
    const corrupt = [
      '{"value":1,"asOf":1}', // another format
      `of1|${Date.now()}|{"answer":2}`, // the format of an older process
      `of2|${asOf}|{"answer":`, // cut short
      `of2|${asOf}|{answer}`, // not JSON
      `of2|${Date.now()}|{"answer":2}`, // no ISO as-of
    ];
    for (const entry of corrupt) {
      await connections[0]!.set(key, entry);
      expect(await cache.read('test', key, 60_000, async () => ({ answer: 3 }))).toMatchObject({
        value: { answer: 3 },
        source: 'database',
      });
      expect(await cache.read('test', key, 60_000, async () => ({ answer: 4 }))).toMatchObject({ source: 'cache' });
    }
  });
});

describe('a cached value', () => {
  it('keeps its as-of time, in milliseconds and as ISO 8601 text, from its fill to every hit', async () => {
    const key = `${namespace}:as-of`;
    const cache = apiProcess(connections[0]!);
    const filled = await cache.read('test', key, 60_000, async () => ({ answer: 5 }));
    expect(filled).toMatchObject({ source: 'database', asOfIso: new Date(filled.asOf).toISOString() });
    const { asOf, asOfIso } = filled;
    expect(await cache.read('test', key, 60_000, async () => ({ answer: 6 }))).toMatchObject({
      value: { answer: 5 },
      source: 'cache',
      asOf,
      asOfIso,
    });
    expect(await cache.lookup(['test'], [key])).toMatchObject([
      { json: '{"answer":5}', source: 'cache', asOf, asOfIso },
    ]);
  });
});
