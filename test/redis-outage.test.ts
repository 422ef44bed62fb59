import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrder } from '../sql/orders.ts';
import { watchLiveness } from '../workers/liveness.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { startPrivateRedis } from './support/redis-server.ts';

// Redis carries the work, PostgreSQL the truth: an order accepted while Redis is down is still
// completed, and workers carry on after a Redis restart without being restarted themselves.
let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
let h: Harness;
beforeAll(async () => {
  redis = await startPrivateRedis();
  h = await startHarness({
    env: { REDIS_URL: redis.url, RECONCILE_INTERVAL_MS: '300', RECONCILE_STUCK_AFTER_MS: '1500' },
    keepQueues: true,
  });
});
afterAll(async () => {
  await h?.close();
  await redis?.destroy();
});

describe('when Redis is down at submission', () => {
  it('accepts the order (it is durable in PostgreSQL) and the reconciler completes it once Redis is back', async () => {
    await redis.stop();
    const placed = await h.placeOrder(orderBody({ items: [{ sku: 'ONEPIECE-105', quantity: 1 }] }));
    expect(placed.status).toBe(201);
    expect((await findOrder(h.deps.db, placed.body.id))?.status).toBe('PENDING');

    const ready = await h.request('GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.redis.ok).toBe(false);
    expect(watchLiveness(h.workers, h.deps.redis, { staleAfterMs: 60_000, port: 0 }).check().alive).toBe(false);

    await redis.start();
    const order = await h.waitForTerminal(placed.body.id, 30_000);
    expect(order.status).toBe('COMPLETED');
    expect(order.enqueue_round).toBeGreaterThan(0);
  });
});

describe('after a Redis restart', () => {
  it('the same worker processes keep consuming without being restarted', async () => {
    await redis.stop();
    await redis.start();
    const placed = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-41', quantity: 1 }] }));
    expect((await h.waitForTerminal(placed.body.id, 30_000)).status).toBe('COMPLETED');
    expect(watchLiveness(h.workers, h.deps.redis, { staleAfterMs: 60_000, port: 0 }).check().alive).toBe(true);
  });
});

describe('readiness', () => {
  it('fails while Redis may evict keys, naming the policy', async () => {
    await h.deps.redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      const res = await h.request('GET', '/readyz');
      expect(res.status).toBe(503);
      expect(res.body.checks.redisEvictionPolicy.detail).toMatch(/allkeys-lru/);
    } finally {
      await h.deps.redis.config('SET', 'maxmemory-policy', 'noeviction');
    }
    expect((await h.request('GET', '/readyz')).status).toBe(200);
  });
});
