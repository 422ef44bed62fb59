import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrder } from '../sql/orders.ts';
import { watchLiveness } from '../workers/liveness.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { startPrivateRedis } from './support/redis-server.ts';
import { waitFor } from './support/wait-for.ts';

// Redis carries the work, PostgreSQL the truth: an order accepted while Redis is down is still
// completed, and workers carry on after a Redis restart without being restarted themselves.
let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
let h: Harness;
beforeAll(async () => {
  redis = await startPrivateRedis();
  h = await startHarness({
    // An order counts as stuck after 5 s without progress: well above how long a step takes on a busy
    // machine, so the reconciler re-enqueues the orders Redis never got, not the ones still moving.
    env: { REDIS_URL: redis.url, RECONCILE_INTERVAL_MS: '300', RECONCILE_STUCK_AFTER_MS: '5000' },
    keepQueues: true,
  });
  // The system is up before Redis goes away: BullMQ finishes connecting a queue only once (a queue
  // whose first connection is cut short waits for Redis, or fails for good), which is not under test.
  const queues = [...Object.values(h.apiDeps.queues.queues), ...Object.values(h.deps.queues.queues)];
  await Promise.all(queues.map((queue) => queue.waitUntilReady()));
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
    // A read of it goes through the cache: Redis unreachable is a documented 503, never a 500.
    const read = await h.request('GET', `/orders/${placed.body.id}`, { key: h.customerKey });
    expect(read.status).toBe(503);
    expect(read.body.error.code).toBe('database_unavailable');

    await redis.start();
    const order = await h.waitForTerminal(placed.body.id);
    expect(order.status).toBe('COMPLETED');
    expect(order.enqueue_round).toBeGreaterThan(0);
  });
});

describe('after a Redis restart', () => {
  it('the same worker processes keep consuming without being restarted', async () => {
    await redis.stop();
    await redis.start();
    const placed = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-41', quantity: 1 }] }));
    expect((await h.waitForTerminal(placed.body.id)).status).toBe('COMPLETED');
    expect(watchLiveness(h.workers, h.deps.redis, { staleAfterMs: 60_000, port: 0 }).check().alive).toBe(true);
  });
});

describe('when a Redis restart loses the reconciler’s next run', () => {
  it('the workers schedule it again as they reconnect', async () => {
    // What a restart at the wrong moment leaves: the scheduler's next run is gone (its hand-over to a
    // worker was cut short), so no run would ever add the one after it. The maintenance worker is
    // paused meanwhile, so that it does not take a run (and add the next) while the test removes it.
    const worker = h.workers.find((w) => w.name === 'maintenance')!;
    await worker.pause();
    try {
      const maintenance = h.deps.queues.queues.maintenance;
      const key = (suffix: string) => `${h.config.redis.prefix}:maintenance:${suffix}`;
      // Removed underneath BullMQ, as the restart would have it (BullMQ itself refuses to remove a run).
      for (const job of await maintenance.getJobs(['delayed', 'wait'])) {
        if (job.name !== 'reconcile' || job.id === undefined) continue;
        await h.deps.redis.multi().zrem(key('delayed'), job.id).lrem(key('wait'), 0, job.id).del(key(job.id)).exec();
      }
      const nextRun = async () =>
        (await maintenance.getJobs(['delayed', 'wait'])).some((job) => job.name === 'reconcile');
      expect(await nextRun()).toBe(false);
      expect(await h.deps.redis.exists(key('repeat'))).toBe(1); // the schedule itself is still there

      // The workers' connection drops and comes back, as in a restart.
      const id = await h.deps.redis.client('ID');
      await h.apiDeps.redis.client('KILL', 'ID', String(id));
      await waitFor('the reconciler’s next run to be scheduled', nextRun);
    } finally {
      worker.resume();
    }
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
