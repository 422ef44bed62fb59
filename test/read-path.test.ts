import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app.ts';
import { loadOrderView } from '../api/order-view.ts';
import type { HotSku } from '../domain/heat.ts';
import { createDeps, type Deps } from '../runtime/deps.ts';
import { createLogger } from '../runtime/logger.ts';
import type { OrderFieldGroup } from '../sql/order-view.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

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
 * behind a database that is slow for as long as the test needs (or that goes away: `terminate`).
 */
async function lockTables(tables: 'orders, api_keys') {
  const client = new pg.Client({ connectionString: h.env.DATABASE_URL });
  await client.connect();
  await client.query('BEGIN');
  await client.query(`LOCK TABLE ${tables} IN ACCESS EXCLUSIVE MODE`);
  const release = async () => {
    await client.query('COMMIT');
    await client.end();
  };
  return Object.assign(release, {
    /** The other connections of this database that wait for a lock: behind this one. */
    async waitingBackends(): Promise<number[]> {
      const { rows } = await client.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
      );
      return rows.map((r) => r.pid);
    },
    /** Ends those connections, as when PostgreSQL goes away under them. */
    async terminate(pids: readonly number[]): Promise<void> {
      await client.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [pids]);
    },
  });
}

/** How many reads of a cache outlasted their budget with nothing stale to serve, and waited. */
async function waits(cache: string): Promise<number> {
  const text = await h.apiDeps.registry.metrics();
  return Number(new RegExp(`orderflow_cache_waits_total\\{cache="${cache}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
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

  it('serves the cached value marked stale when the database is slower than its budget, and waits for it with nothing cached', async () => {
    const known = await h.placeOrder(orderBody());
    const unknown = await h.placeOrder(orderBody());
    const cached = await get(`/orders/${known.body.id}`);
    await expireFresh(known.body.id, 'status');

    // The keys' table too: a request must not need PostgreSQL to authenticate a key it has seen. The
    // tables stay locked until the stale answer is in and the other read has outlasted its budget, so
    // the stale answer cannot have come from the database.
    const release = await lockTables('orders, api_keys');
    let none: Promise<Awaited<ReturnType<typeof get>>> | undefined;
    try {
      const stale = await get(`/orders/${known.body.id}`);
      expect(stale.status).toBe(200);
      expect(stale.body).toMatchObject({ stale: true, staleFields: ['status'], status: 'PENDING' });
      expect(stale.body.freshness.status.asOf).toBe(cached.body.freshness.status.asOf);

      // Nothing cached: the budget runs out (the read counts as waiting) and the read goes on waiting.
      const waitsBefore = await waits('order-placed');
      none = get(`/orders/${unknown.body.id}`);
      await waitFor(
        'the uncached read to outlast its budget',
        () => waits('order-placed'),
        (n) => n > waitsBefore,
      );
    } finally {
      await release();
    }
    const answer = await none;
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ id: unknown.body.id, status: 'PENDING', stale: false });
    expect(answer.body.freshness.placed.source).toBe('database');
  });

  it('answers 503 with nothing cached only when PostgreSQL is unreachable: the waiting connection is terminated', async () => {
    const unknown = await h.placeOrder(orderBody());
    await get(`/orders/${(await h.placeOrder(orderBody())).body.id}`); // the key is known: auth needs no query
    const release = await lockTables('orders, api_keys');
    try {
      const answering = get(`/orders/${unknown.body.id}`);
      const waiting = await waitFor(
        'the read to wait for the lock',
        () => release.waitingBackends(),
        (pids) => pids.length > 0,
      );
      await release.terminate(waiting);
      const none = await answering;
      expect(none.status).toBe(503);
      expect(none.body.error.code).toBe('database_unavailable');
      expect(none.headers.get('retry-after')).toBe('5');
    } finally {
      await release();
    }
    // PostgreSQL is reachable again: the same read answers.
    expect((await get(`/orders/${unknown.body.id}`)).status).toBe(200);
  });

  it('answers the same JSON from the cache as from the database', async () => {
    const placed = await h.placeOrder(orderBody());
    const id = placed.body.id;
    const view = JSON.stringify(await loadOrderView(h.deps.db, id));
    for (const source of ['database', 'cache']) {
      const { freshness, stale, staleFields, ...fields } = (await get(`/orders/${id}`)).body;
      expect(freshness.status.source).toBe(source);
      expect([stale, staleFields]).toEqual([false, []]);
      expect(JSON.stringify(fields)).toBe(view); // the same fields, in the same order
    }
  });

  it('treats a cached entry it cannot read as a miss, not an error', async () => {
    const placed = await h.placeOrder(orderBody());
    const id = placed.body.id;
    const first = await get(`/orders/${id}`);
    const { redis, keys } = h.apiDeps;
    await redis.set(keys.order(id, 'placed'), JSON.stringify({ value: { id }, asOf: Date.now() })); // another format
    await redis.set(keys.order(id, 'status'), 'not json at all');
    await redis.set(keys.order(id, 'tracking'), `of2|${Date.now()}|${new Date().toISOString()}|{"shipment":`); // cut short
    const second = await get(`/orders/${id}`);
    expect(second.status).toBe(200);
    expect(Object.values(second.body.freshness).map((f) => (f as { source: string }).source)).toEqual([
      'database',
      'database',
      'database',
    ]);
    const { freshness: _, ...fields } = second.body;
    const { freshness: __, ...firstFields } = first.body;
    expect(fields).toEqual(firstFields);
    expect((await get(`/orders/${id}`)).body.freshness.status.source).toBe('cache');

    const stock = keys.stock('eu', 'CHAINSAW-05');
    try {
      const asOf = `${Date.now()}|${new Date().toISOString()}`;
      for (const corrupt of [`of2|${asOf}|{"available":`, `of2|${asOf}|{not json}`, `of1|${Date.now()}|{}`, '']) {
        await redis.set(stock, corrupt);
        const answer = await get('/inventory/CHAINSAW-05?region=eu');
        expect(answer.status).toBe(200);
        expect(answer.body).toMatchObject({ source: 'database', availability: 'in_stock' });
      }
    } finally {
      await redis.del(stock);
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
