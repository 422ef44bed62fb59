import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from '../api/app.ts';
import { type RedisKeys, redisKeys } from '../cache/keys.ts';
import type { HotSku } from '../domain/heat.ts';
import {
  type FlashSaleController,
  type FlashSaleSettings,
  startFlashSaleController,
} from '../flash-sale/start-flash-sale-controller.ts';
import { createDeps, type Deps } from '../runtime/deps.ts';
import { createLogger } from '../runtime/logger.ts';
import { sql } from '../sql/database.ts';
import { endFlashSale } from '../sql/flash-sales.ts';
import { restockStock, setAvailable } from '../sql/inventory.ts';
import {
  declareSale as declareSaleOf,
  deleteNamespace,
  fastControllerSettings,
  privateNamespace,
  waitFor,
} from './flash-sale-support.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

// The door of a flash sale (SPEC §4, flash-sale/admission.ts), on the real servers: the controller seeds
// and follows a hot SKU's admission counter, the API takes tickets from it and a token from the gate.

const namespace = privateNamespace();
let h: Harness;
let keys: RedisKeys;
const running: FlashSaleController[] = [];

beforeAll(async () => {
  h = await startHarness({ env: { REDIS_NAMESPACE: namespace } });
  keys = redisKeys(namespace);
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
  await h.deps.redis.del(keys.admissionGate);
});
afterAll(async () => {
  if (h) await deleteNamespace(h.deps.redis, namespace);
  await h?.close();
});

/** Fast loops; a gate wide open (these tests are about the counter); a large purchase limit. */
async function startController(overrides: Partial<FlashSaleSettings> = {}) {
  const controller = await startFlashSaleController(h.deps, {
    ...h.config.flashSale,
    ...fastControllerSettings,
    namespace,
    purchaseLimit: 100,
    consumerName: 'admission',
    ...overrides,
  });
  running.push(controller);
  return controller;
}

async function declareSale(sku: string, region = 'eu') {
  const sale = await declareSaleOf(h.deps.db, { name: `door ${sku}`, region, skus: [sku], purchaseLimit: null });
  return sale.id;
}

const counter = async (sku: string) => h.deps.redis.hgetall(keys.admission('eu', sku));
const left = async (sku: string) => {
  const c = await counter(sku);
  return Number(c.available) - Number(c.held) - Number(c.untracked);
};
const orderCount = (sku: string) =>
  h.deps.db.oneFirst(
    sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM order_items WHERE sku = ${sku}`,
  );
const buy = (sku: string, customer = 0, quantity = 1, token?: string) =>
  h.placeOrder(
    orderBody({ items: [{ sku, quantity }], token }),
    h.keys.customers[customer % h.keys.customers.length]!.apiKey,
  );

describe('the admission counter of a hot SKU', () => {
  it('is seeded when the SKU turns hot, answers sold_out at the door at zero, and stores nothing then', async () => {
    const sku = 'FRIEREN-01-LTD';
    await h.setStock(sku, 'eu', 0);
    await h.deps.db.transaction((tx) =>
      restockStock(tx, { sku, region: 'eu', quantity: 3, nextRestockDate: '2027-01-15' }),
    );
    await startController();
    await declareSale(sku);
    const seeded = await waitFor(async () => (await counter(sku)).available, 'the counter is seeded');
    expect(Number(seeded)).toBe(3);
    expect(await left(sku)).toBe(3);

    const keyed = () =>
      h.placeOrder(orderBody({ items: [{ sku, quantity: 1 }] }), h.keys.customers[2]!.apiKey, {
        'idempotency-key': `door-${sku}`,
      });
    const accepted = [await buy(sku, 0), await buy(sku, 1), await keyed()];
    expect(accepted.map((a) => a.status)).toEqual([201, 201, 201]);
    const before = await orderCount(sku);
    const refused = await buy(sku, 3);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({
      code: 'sold_out',
      details: { sku, region: 'eu', left: 0, restockDate: '2027-01-15' },
    });
    expect(refused.body.error.message).toMatch(/sold out.*2027-01-15/);
    expect(await orderCount(sku)).toBe(before);
    // A retry of an accepted order is answered as the first time, sold out or not.
    const retried = await keyed();
    expect(retried.status).toBe(201);
    expect(retried.body.id).toBe(accepted[2]!.body.id);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');

    // The three admitted orders complete: their tickets became reservations, nothing is left.
    for (const a of accepted) expect((await h.waitForTerminal(a.body.id)).status).toBe('COMPLETED');
    await waitFor(async () => (await counter(sku)).held === '0', 'every ticket turned into a reservation');
    expect(await left(sku)).toBe(0);
  });

  it('follows restocks and adjustments', async () => {
    const sku = 'ONEPIECE-105';
    await h.setStock(sku, 'eu', 1);
    await startController();
    await declareSale(sku);
    await waitFor(async () => (await left(sku)) === 1, 'seeded with one unit');
    const first = await buy(sku);
    expect(first.status).toBe(201);
    expect((await buy(sku, 1)).status).toBe(409);
    // The order's own reservation first, so that the stock moves only by what the test does next.
    expect((await h.waitForTerminal(first.body.id)).status).toBe('COMPLETED');
    await waitFor(async () => (await counter(sku)).held === '0', 'the ticket turned into a reservation');

    await h.deps.db.transaction((tx) => restockStock(tx, { sku, region: 'eu', quantity: 2 }));
    await waitFor(async () => (await left(sku)) === 2, 'the restock reaches the counter');
    // An operator's correction (an adjustment) too.
    await setAvailable(h.deps.db, sku, 'eu', 5);
    await waitFor(async () => (await left(sku)) === 5, 'the adjustment reaches the counter');
    expect((await buy(sku, 2)).status).toBe(201);
    await h.waitForQuiet();
  });

  it('gets back the units of orders that fail or are cancelled', async () => {
    const sku = 'BERSERK-41';
    await h.setStock(sku, 'eu', 2);
    await startController();
    await declareSale(sku);
    await waitFor(async () => (await left(sku)) === 2, 'seeded with two units');

    // Declined at the gateway: the order fails before its reservation and gives its ticket back.
    const declined = await buy(sku, 0, 2, '4000000000000002');
    expect(declined.status).toBe(201);
    expect((await h.waitForTerminal(declined.body.id)).status).toBe('FAILED');
    await waitFor(async () => (await left(sku)) === 2, 'the failed order’s units are back');

    // Cancelled before its reservation (held at the gateway): its ticket comes back.
    const status = async (id: string) => (await h.request('GET', `/orders/${id}`, { key: h.adminKey })).body.status;
    const cancelAndGetBack = async (customer: number) => {
      const placed = await buy(sku, customer, 2);
      expect(placed.status).toBe(201);
      expect((await buy(sku, (customer + 1) % 3)).status).toBe(409);
      return placed.body.id as string;
    };
    h.sandbox.gateway.settings.latencyMs = 5_000;
    try {
      const early = await cancelAndGetBack(1);
      // INVENTORY_CHECK: the stock was checked, the authorization is held at the gateway.
      await waitFor(async () => (await status(early)) === 'INVENTORY_CHECK' || null, 'held at the gateway');
      const cancel = await h.request('POST', `/orders/${early}/cancel`, { key: h.keys.customers[1]!.apiKey });
      expect(cancel.status).toBe(200);
      await waitFor(async () => (await left(sku)) === 2, 'the units of the order cancelled early are back');
    } finally {
      h.sandbox.gateway.settings.latencyMs = 0;
    }

    // Cancelled after its reservation (held at the carrier): its release brings the units back.
    h.sandbox.carrier.settings.latencyMs = 5_000;
    try {
      const late = await cancelAndGetBack(2);
      await waitFor(
        async () => (await status(late)) === 'RESERVED' || null,
        'reserved; the label is held at the carrier',
      );
      const cancel = await h.request('POST', `/orders/${late}/cancel`, { key: h.keys.customers[2]!.apiKey });
      expect(cancel.status).toBe(200);
      await waitFor(async () => (await left(sku)) === 2, 'the units of the order cancelled late are back');
    } finally {
      h.sandbox.carrier.settings.latencyMs = 0;
    }
    expect((await buy(sku, 0)).status).toBe(201);
    await h.waitForQuiet();
  });

  it('is re-seeded from PostgreSQL after drifting, deleted or corrupted', async () => {
    const sku = 'BERSERK-42';
    await h.setStock(sku, 'eu', 4);
    await startController();
    await declareSale(sku);
    await waitFor(async () => (await left(sku)) === 4, 'seeded with four units');

    await h.deps.redis.del(keys.admission('eu', sku));
    await waitFor(async () => (await left(sku)) === 4, 'recreated after being deleted');

    // Corrupted: a lost give-back (a ticket of an order that never existed, old enough to be an orphan)
    // and a wrong total; the next seed recounts from the tickets and drops the orphan.
    const orphanAt = Math.floor(Date.now() / 1000) - 3_600;
    await h.deps.redis.hset(
      keys.admission('eu', sku),
      't:00000000-0000-4000-8000-000000000001',
      `3:${orphanAt}`,
      'held',
      '40',
      'available',
      '0',
    );
    await waitFor(async () => (await left(sku)) === 4, 'corrected by the next seed');
    expect((await counter(sku))['t:00000000-0000-4000-8000-000000000001']).toBeUndefined();

    // Unreadable: the API takes the normal path meanwhile (PostgreSQL decides), and the seed repairs it.
    await h.deps.redis.hset(keys.admission('eu', sku), 'available', 'garbage');
    await waitFor(async () => (await left(sku)) === 4, 'repaired after being unreadable');
  });

  it('goes away when the SKU cools down, and its orders take the normal path again', async () => {
    const sku = 'CHAINSAW-05';
    await h.setStock(sku, 'eu', 1);
    await startController({ coolDownMs: 200 });
    const saleId = await declareSale(sku);
    await waitFor(async () => (await left(sku)) === 1, 'seeded');
    expect((await buy(sku)).status).toBe(201);
    expect((await buy(sku, 1)).status).toBe(409);

    // Goods come in and the sale ends: nothing holds the SKU hot any more.
    await h.deps.db.transaction((tx) => restockStock(tx, { sku, region: 'eu', quantity: 100 }));
    await endFlashSale(h.deps.db, saleId);
    await waitFor(async () => (await h.deps.redis.exists(keys.admission('eu', sku))) === 0, 'the counter is dropped');
    // No door any more: the order is taken without a ticket, as any other.
    const late = await buy(sku, 1);
    expect(late.status).toBe(201);
    expect(await h.deps.redis.exists(keys.admission('eu', sku))).toBe(0);
    expect((await h.waitForTerminal(late.body.id)).status).toBe('COMPLETED');
    await h.waitForQuiet();
  });
});

describe('the admission gate', () => {
  it('closes to the completion rate while admitted orders pile up in front of the pipeline, and opens as they drain', async () => {
    // One SKU's own backlog is capped at the gate's threshold (the test below); the bucket closes on the
    // backlog of a sale's SKUs together. Here one order of two units, for one SKU of a three-SKU sale,
    // is more than 1 s of work at 0.01 orders/s, and the others are bought.
    const [waitingSku, firstSku, nextSku] = ['CHAINSAW-05', 'BERSERK-42', 'VAGABOND-VIZBIG-01'];
    for (const sku of [waitingSku, firstSku, nextSku]) await h.setStock(sku, 'us', 20);
    await startController({ admission: { reseedEveryMs: 100, gate: { minRate: 0.01, backlogSeconds: 1 } } });
    await declareSaleOf(h.deps.db, {
      name: 'door: the gate',
      region: 'us',
      skus: [waitingSku, firstSku, nextSku],
      purchaseLimit: null,
    });
    const seeded = async (sku: string) => (await h.deps.redis.hget(keys.admission('us', sku), 'available')) !== null;
    await waitFor(
      async () => (await seeded(waitingSku)) && (await seeded(firstSku)) && (await seeded(nextSku)),
      'seeded',
    );
    expect(await h.deps.redis.exists(keys.admissionGate)).toBe(0);

    // An admitted order that has not reserved yet (taken as the API takes it, not stored): larger than
    // its SKU's cap of one unit, it is let through alone.
    const waiting = '00000000-0000-4000-8000-00000000000a';
    expect((await h.deps.admission.admit('us', waitingSku, waiting, 2)).outcome).toBe('admitted');
    // Closed at the completion rate, here the minimum once the orders of the tests before have left the
    // 5 s window in which completions are counted.
    const gate = await waitFor(async () => {
      const g = await h.deps.redis.hgetall(keys.admissionGate);
      return Number(g.rate) === 0.01 ? g : null;
    }, 'the gate closes to the minimum rate');
    expect(Number(gate.burst)).toBe(1);
    // One order goes through on the burst; the next is told to come back in about 100 s (1 / 0.01 orders/s).
    const buyUs = (sku: string, customer: number) =>
      h.placeOrder(orderBody({ region: 'us', items: [{ sku, quantity: 1 }] }), h.keys.customers[customer]!.apiKey);
    const through = await buyUs(firstSku, 0);
    expect(through.status).toBe(201);
    const held = await buyUs(nextSku, 1);
    expect(held.status).toBe(429);
    expect(held.body.error.code).toBe('checkout_busy');
    expect(Number(held.headers.get('retry-after'))).toBeGreaterThanOrEqual(90);

    // The backlog drains (here: given back): the gate opens at the next re-seed.
    await h.deps.admission.giveBack('us', waitingSku, waiting);
    await h.waitForTerminal(through.body.id);
    await waitFor(async () => (await h.deps.redis.exists(keys.admissionGate)) === 0, 'the gate opens');
    expect((await buyUs(nextSku, 1)).status).toBe(201);
    await h.waitForQuiet();
  });

  it('lets no more units wait for the pipeline than its backlog, from the first order of a sale', async () => {
    const sku = 'VAGABOND-VIZBIG-01';
    await h.setStock(sku, 'eu', 10);
    // A backlog of 1 s at 2 orders/s: two units may wait for their reservation. No completion has been
    // measured for this SKU: the cap holds from the seed on, before the controller knows any rate.
    await startController({ admission: { reseedEveryMs: 100, gate: { minRate: 2, backlogSeconds: 1 } } });
    await declareSale(sku);
    await waitFor(async () => (await counter(sku)).maxHeld === '2' && (await left(sku)) === 10, 'seeded, capped at 2');

    // Two admitted orders that have not reserved yet (taken as the API takes them, not stored).
    const waiting = ['00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-0000000000c2'];
    for (const id of waiting) expect((await h.deps.admission.admit('eu', sku, id, 1)).outcome).toBe('admitted');
    const before = await orderCount(sku);
    const held = await buy(sku, 0);
    expect(held.status).toBe(429);
    expect(held.body.error.code).toBe('checkout_busy');
    expect(held.headers.get('retry-after')).toBe('1');
    // Nothing stored, no ticket taken, and the units are still there for whoever comes back.
    expect(await orderCount(sku)).toBe(before);
    expect((await counter(sku)).held).toBe('2');
    expect(await left(sku)).toBe(8);

    // One waiting order moves on (here: gives its ticket back): the next buyer gets in.
    await h.deps.admission.giveBack('eu', sku, waiting[0]!);
    const through = await buy(sku, 0);
    expect(through.status).toBe(201);
    await h.deps.admission.giveBack('eu', sku, waiting[1]!);
    expect((await h.waitForTerminal(through.body.id)).status).toBe('COMPLETED');
    await waitFor(async () => (await counter(sku)).held === '0', 'the ticket turned into a reservation');

    // An order larger than the backlog is not refused forever: it goes through when nothing waits.
    const large = await buy(sku, 1, 3);
    expect(large.status).toBe(201);
    expect((await h.waitForTerminal(large.body.id)).status).toBe('COMPLETED');
    await h.waitForQuiet();
  });

  it('is one bucket shared by two API processes, refusing with 429 and Retry-After once empty', async () => {
    // A second API process: its own app, pools and Redis connections.
    const log = createLogger('silent', 'test');
    const other: Deps = await createDeps(h.config, log, { failFastRedis: true, autoPipelining: true });
    try {
      const otherApp = createApp({
        ...other,
        bodyLimitBytes: h.config.http.bodyLimitBytes,
        idempotencyStaleAfterMs: 60_000,
        recentOrdersTtlMs: h.config.cache.ttlMs.recentOrders,
      });
      type Answer = { status: number; retryAfter: string | null; body: { error?: { code: string } } };
      const post = async (app: { request: typeof h.app.request }, customer: number): Promise<Answer> => {
        const response = await app.request('/orders', {
          method: 'POST',
          headers: {
            authorization: `Bearer ${h.keys.customers[customer % h.keys.customers.length]!.apiKey}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify(orderBody({ region: 'us', items: [{ sku: 'ONEPIECE-105', quantity: 1 }] })),
        });
        return {
          status: response.status,
          retryAfter: response.headers.get('retry-after'),
          body: (await response.json()) as Answer['body'],
        };
      };
      // What the controller publishes for a hot SKU (no counter: stock is not the question here) and a
      // gate of three tokens refilled at one per hour, so no token comes back during the test.
      const hot: HotSku = {
        sku: 'ONEPIECE-105',
        region: 'us',
        reasons: ['sales_rate'],
        since: new Date().toISOString(),
        ratePerMinute: 100,
        available: 50,
        purchaseLimit: 100,
        flashSaleId: null,
      };
      await h.deps.redis.hset(keys.hotSkus, keys.hotSkuField('us', 'ONEPIECE-105'), JSON.stringify(hot));
      await h.deps.admission.publishGate({ ratePerSecond: 1 / 3_600, burst: 3, expiryMs: 60_000 });

      const answers = [await post(h.app, 0), await post(otherApp, 1), await post(h.app, 2), await post(otherApp, 3)];
      expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 429]);
      expect(answers[3]!.body.error?.code).toBe('checkout_busy');
      // The next token is an hour away.
      expect(Number(answers[3]!.retryAfter)).toBeGreaterThan(3_000);

      // An order for a SKU that is not hot is never held back by the sale.
      const calm = await h.placeOrder(orderBody({ region: 'us', items: [{ sku: 'BERSERK-41', quantity: 1 }] }));
      expect(calm.status).toBe(201);
    } finally {
      await h.deps.redis.hdel(keys.hotSkus, keys.hotSkuField('us', 'ONEPIECE-105'));
      await other.close();
    }
    await h.waitForQuiet();
  });
});
