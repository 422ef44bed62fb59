import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app.ts';
import type { HotSku } from '../domain/heat.ts';
import { createDeps, type Deps } from '../runtime/deps.ts';
import { createLogger } from '../runtime/logger.ts';
import type { OrderFieldGroup } from '../sql/order-view.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

// The read path on the real servers. No workers: orders stay where the test puts them. The TTLs are the
// defaults: a test checks the TTL each group is stored with, and lets one run out where that is the
// point, rather than waiting for it on the clock.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false });
});
afterAll(async () => {
  await h?.close();
});

const get = (path: string, key = h.customerKey) => h.request('GET', path, { key });

/** The fresh copy of an order's group goes, as when its TTL runs out; the stale copy stays. */
const expireFresh = (orderId: string, group: OrderFieldGroup) =>
  h.apiDeps.redis.del(h.apiDeps.keys.order(orderId, group));

/**
 * Takes an exclusive lock on tables until the returned function is called: every read of them waits, as
 * behind a database that is slow for as long as the test needs.
 */
async function lockTables(tables: 'orders, api_keys'): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: h.env.DATABASE_URL });
  await client.connect();
  await client.query('BEGIN');
  await client.query(`LOCK TABLE ${tables} IN ACCESS EXCLUSIVE MODE`);
  return async () => {
    await client.query('COMMIT');
    await client.end();
  };
}

describe('GET /orders/{id}', () => {
  it('caches each group of fields with its own TTL and as-of time', async () => {
    const placed = await h.placeOrder(orderBody());
    const id = placed.body.id;
    const first = await get(`/orders/${id}`);
    expect(first.status).toBe(200);
    expect(first.body.freshness.placed.source).toBe('database');

    // Each group is stored for its own TTL: placed 1 h, tracking 15 min, status 5 min.
    const ttlLeft = (group: OrderFieldGroup) => h.apiDeps.redis.pttl(h.apiDeps.keys.order(id, group));
    const ttl = h.config.cache.ttlMs;
    expect(await ttlLeft('placed')).toBeGreaterThan(ttl.tracking);
    expect(await ttlLeft('placed')).toBeLessThanOrEqual(ttl.placed);
    expect(await ttlLeft('tracking')).toBeGreaterThan(ttl.status);
    expect(await ttlLeft('tracking')).toBeLessThanOrEqual(ttl.tracking);
    expect(await ttlLeft('status')).toBeGreaterThan(0);
    expect(await ttlLeft('status')).toBeLessThanOrEqual(ttl.status);

    const second = await get(`/orders/${id}`);
    expect(Object.values(second.body.freshness).map((f) => (f as { source: string }).source)).toEqual([
      'cache',
      'cache',
      'cache',
    ]);
    expect(second.body.freshness.placed.asOf).toBe(first.body.freshness.placed.asOf);

    await expireFresh(id, 'status'); // its TTL is the shortest: it runs out first
    const third = await get(`/orders/${id}`);
    expect(third.body.freshness.status.source).toBe('database');
    expect(third.body.freshness.placed.source).toBe('cache');
    expect(third.body.stale).toBe(false);
  });

  it('shows a status change at once: the change invalidates the cached status', async () => {
    const placed = await h.placeOrder(orderBody());
    expect((await get(`/orders/${placed.body.id}`)).body.status).toBe('PENDING');
    expect((await get(`/orders/${placed.body.id}`)).body.freshness.status.source).toBe('cache');
    await h.request('POST', `/orders/${placed.body.id}/cancel`, { key: h.customerKey });
    const after = await get(`/orders/${placed.body.id}`);
    expect(after.body.status).toBe('CANCELLED');
    expect(after.body.freshness.status.source).toBe('database');
  });

  it('serves the cached value marked stale when the database is slower than its budget, and 503 with nothing cached', async () => {
    const known = await h.placeOrder(orderBody());
    const unknown = await h.placeOrder(orderBody());
    const cached = await get(`/orders/${known.body.id}`);
    await expireFresh(known.body.id, 'status');

    // The keys' table too: a request must not need PostgreSQL to authenticate a key it has seen. The
    // tables stay locked until both answers are in, so neither can have come from the database.
    const release = await lockTables('orders, api_keys');
    try {
      const stale = await get(`/orders/${known.body.id}`);
      expect(stale.status).toBe(200);
      expect(stale.body).toMatchObject({ stale: true, staleFields: ['status'], status: 'PENDING' });
      expect(stale.body.freshness.status.asOf).toBe(cached.body.freshness.status.asOf);

      const none = await get(`/orders/${unknown.body.id}`);
      expect(none.status).toBe(503);
      expect(none.headers.get('retry-after')).toBe('5');
    } finally {
      await release();
    }
  });
});

describe('GET /inventory/{sku}', () => {
  it('answers in stock, low or out, with the restock date when known', async () => {
    await h.setStock('BERSERK-41', 'us', 0);
    await h.request('POST', '/admin/inventory/BERSERK-41/restock', {
      key: h.adminKey,
      body: { region: 'us', quantity: 3, nextRestockDate: '2026-12-24' },
    });
    const low = await get('/inventory/BERSERK-41?region=us');
    expect(low.body).toMatchObject({
      availability: 'low',
      available: 3,
      restockDate: '2026-12-24',
      hot: false,
      warning: null,
    });
    expect((await get('/inventory/BERSERK-41?region=eu')).body.availability).toBe('in_stock');
    expect((await get('/inventory/VAGABOND-VIZBIG-01?region=eu')).body.availability).toBe('out');
    expect((await get('/inventory/BERSERK-41')).status).toBe(400);
    expect((await get('/inventory/NOPE?region=eu')).status).toBe(404);
  });

  it('loads a cold key once however many readers miss at once, across API processes too', async () => {
    // Two API processes; their budget is longer than any load here, so every reader waits for the one
    // fill instead of answering 503 (nothing is cached yet) when a busy machine makes the fill slow.
    const log = createLogger('silent', 'test');
    const config = { ...h.config, cache: { ...h.config.cache, dbReadBudgetMs: 60_000 } };
    const processes: Deps[] = [];
    try {
      for (let i = 0; i < 2; i++)
        processes.push(await createDeps({ ...config, db: { ...config.db, poolSize: 3 } }, log));
      const apps = processes.map((deps) =>
        createApp({ ...deps, bodyLimitBytes: 65_536, idempotencyStaleAfterMs: 60_000, recentOrdersTtlMs: 30_000 }),
      );
      const fills = async () => {
        let n = 0;
        for (const deps of processes) {
          const text = await deps.registry.metrics();
          n += Number(/orderflow_cache_fill_seconds_count\{cache="stock"\} (\d+)/.exec(text)?.[1] ?? 0);
        }
        return n;
      };
      const headers = { authorization: `Bearer ${h.customerKey}` };
      const answers = await Promise.all(
        apps.flatMap((app) =>
          Array.from({ length: 25 }, () => app.request('/inventory/ONEPIECE-105?region=us', { headers })),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
      expect(await fills()).toBe(1);
    } finally {
      for (const deps of processes) await deps.close();
    }
  });

  it('uses the short TTL, a warning and the purchase limit while the controller says the SKU is hot', async () => {
    const hot: HotSku = {
      sku: 'FRIEREN-01-LTD',
      region: 'eu',
      reasons: ['declared_sale'],
      since: new Date(Date.now() - 1_000).toISOString(),
      ratePerMinute: 0,
      available: 5,
      purchaseLimit: 2,
      flashSaleId: null,
    };
    await h.deps.redis.hset(h.deps.keys.hotSkus, h.deps.keys.hotSkuField('eu', 'FRIEREN-01-LTD'), JSON.stringify(hot));
    try {
      const answer = await get('/inventory/FRIEREN-01-LTD?region=eu');
      expect(answer.body).toMatchObject({ hot: true, ttlMs: h.config.cache.ttlMs.hotStock, purchaseLimit: 2 });
      expect(answer.body.warning).toMatch(/changing rapidly/);

      const two = await h.placeOrder(orderBody({ items: [{ sku: 'FRIEREN-01-LTD', quantity: 2 }] }));
      expect(two.status).toBe(201);
      const third = await h.placeOrder(orderBody({ items: [{ sku: 'FRIEREN-01-LTD', quantity: 1 }] }));
      expect(third.status).toBe(422);
      expect(third.body.error).toMatchObject({
        code: 'purchase_limit_exceeded',
        details: { limit: 2, alreadyOrdered: 2 },
      });
      const otherCustomer = await h.placeOrder(
        orderBody({ items: [{ sku: 'FRIEREN-01-LTD', quantity: 1 }] }),
        h.keys.customers[1]!.apiKey,
      );
      expect(otherCustomer.status).toBe(201);
    } finally {
      await h.deps.redis.hdel(h.deps.keys.hotSkus, h.deps.keys.hotSkuField('eu', 'FRIEREN-01-LTD'));
    }
  });

  it('exports the hit ratio', async () => {
    await get('/inventory/CHAINSAW-05?region=eu');
    await get('/inventory/CHAINSAW-05?region=eu');
    const metrics = await h.app.request('/metrics');
    const text = await metrics.text();
    expect(text).toMatch(/orderflow_cache_hit_ratio\{cache="stock"\} 0\.\d+/);
    expect(text).toMatch(/orderflow_cache_requests_total\{cache="stock",result="hit"\} \d+/);
  });
});

describe('GET /customers/{id}/orders', () => {
  it("lists a customer's orders newest first, page by page, and shows a new order at once", async () => {
    const grace = h.keys.customers[1]!;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await h.placeOrder(orderBody(), grace.apiKey)).body.id);
    const page1 = await get(`/customers/${grace.customerId}/orders?limit=2`, grace.apiKey);
    expect(page1.body.orders.map((o: { id: string }) => o.id)).toEqual(ids.slice(-2).reverse());
    const page2 = await get(`/customers/${grace.customerId}/orders?limit=2&before=${page1.body.next}`, grace.apiKey);
    expect(page2.body.orders[0].id).toBe(ids[ids.length - 3]);

    const newest = await h.placeOrder(orderBody(), grace.apiKey);
    expect((await get(`/customers/${grace.customerId}/orders?limit=1`, grace.apiKey)).body.orders[0].id).toBe(
      newest.body.id,
    );
    expect((await get(`/customers/${grace.customerId}/orders`, h.customerKey)).status).toBe(404);
    expect((await get(`/customers/${grace.customerId}/orders`, h.adminKey)).status).toBe(200);
    expect((await get(`/customers/${grace.customerId}/orders?before=garbage`, grace.apiKey)).status).toBe(400);
  });
});

describe('flash-sale administration', () => {
  it('declares, lists and ends a sale, refusing bad windows and unknown SKUs', async () => {
    const startsAt = new Date().toISOString();
    const endsAt = new Date(Date.now() + 3_600_000).toISOString();
    const bad = await h.request('POST', '/admin/flash-sales', {
      key: h.adminKey,
      body: { name: 'Berserk day', region: 'eu', skus: ['NOPE'], startsAt: endsAt, endsAt: startsAt },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { field: string }) => d.field)).toContain('endsAt');

    const created = await h.request('POST', '/admin/flash-sales', {
      key: h.adminKey,
      body: {
        name: 'Berserk day',
        region: 'eu',
        skus: ['BERSERK-41', 'BERSERK-42'],
        startsAt,
        endsAt,
        purchaseLimit: 1,
      },
    });
    expect(created.status).toBe(201);
    const listed = await h.request('GET', '/admin/flash-sales', { key: h.adminKey });
    expect(listed.body.flashSales[0]).toMatchObject({ id: created.body.id, purchaseLimit: 1, endedAt: null });
    const ended = await h.request('POST', `/admin/flash-sales/${created.body.id}/end`, { key: h.adminKey });
    expect(ended.body.endedAt).not.toBeNull();
    expect((await h.request('POST', `/admin/flash-sales/${created.body.id}/end`, { key: h.adminKey })).status).toBe(
      409,
    );
    expect((await h.request('GET', '/admin/hot-skus', { key: h.customerKey })).status).toBe(403);
  });
});
