import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisKeys, redisKeys } from '../cache/keys.ts';
import type { HotSku } from '../domain/heat.ts';
import { startRelay } from '../flash-sale/relay.ts';
import {
  CONSUMER_GROUP,
  type FlashSaleController,
  type FlashSaleSettings,
  startFlashSaleController,
} from '../flash-sale/start-flash-sale-controller.ts';
import { toStreamFields } from '../flash-sale/stream-fields.ts';
import { createFlashSale, endFlashSale } from '../sql/flash-sales.ts';
import { restockStock } from '../sql/inventory.ts';
import {
  counterValue,
  deleteNamespace,
  freePort,
  hotEntry,
  privateNamespace,
  streamEvents,
  waitFor,
} from './flash-sale-support.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

const namespace = privateNamespace();
let h: Harness;
let keys: RedisKeys;
const running: FlashSaleController[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  h = await startHarness({ env: { REDIS_NAMESPACE: namespace } });
  keys = redisKeys(namespace);
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((c) => c.stop()));
});
afterAll(async () => {
  if (h) await deleteNamespace(h.deps.redis, namespace);
  await h?.close();
});

/** Fast loops, a large purchase limit (the API applies it to our own test orders), and `overrides`. */
async function startController(consumerName: string, overrides: Partial<FlashSaleSettings> = {}) {
  const controller = await startFlashSaleController(h.deps, {
    ...h.config.flashSale,
    namespace,
    port: 0,
    purchaseLimit: 100,
    consumerName,
    evaluateEveryMs: 100,
    refreshSalesEveryMs: 100,
    relay: { intervalMs: 20 },
    consumer: { blockMs: 100 },
    ...overrides,
  });
  running.push(controller);
  return controller;
}
const hot = (region: string, sku: string) => hotEntry(h.deps.redis, keys.hotSkus, region, sku);
const pendingCount = async () => ((await h.deps.redis.xpending(keys.inventoryEvents, CONSUMER_GROUP)) as [number])[0];
async function order(sku: string, customer = 0, quantity = 1) {
  const placed = await h.placeOrder(orderBody({ items: [{ sku, quantity }] }), h.keys.customers[customer]!.apiKey);
  expect(placed.status).toBe(201);
  return placed.body.id as string;
}
async function completedOrder(sku: string) {
  expect((await h.waitForTerminal(await order(sku))).status).toBe('COMPLETED');
}

describe('a SKU selling fast', () => {
  it('turns hot by itself from its sales rate, stays hot through the burst, and cools down after it', async () => {
    // Window 10 s, hot at 12/min (2 units in the window), cool under 6/min (no unit in it) for 2 s. The
    // controller runs on the test's clock: real time until the test stops it at the moments it checks,
    // which the two sales are only about 0.1 s apart in real time to show.
    const windowMs = 10_000;
    const coolDownMs = 2_000;
    let stoppedAt: number | undefined;
    const controller = await startController('burst', {
      rateWindowMs: windowMs,
      hotRatePerMinute: 12,
      hotStock: 0,
      coolDownMs,
      clock: () => stoppedAt ?? Date.now(),
    });
    const state = () => controller.states.get('eu:ONEPIECE-105');
    const seen: Array<HotSku | null> = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        seen.push(await hot('eu', 'ONEPIECE-105'));
        await sleep(50);
      }
    })();

    // Two units in one order: hot from its sales rate.
    const orders = [await order('ONEPIECE-105', 0, 2)];
    const first = await waitFor(() => hot('eu', 'ONEPIECE-105'), 'the SKU turns hot');
    expect(first.reasons).toEqual(['sales_rate']);
    // One more unit.
    await h.deps.redis.set(keys.stock('eu', 'ONEPIECE-105'), '{"cached":"before the change"}');
    orders.push(await order('ONEPIECE-105', 1));
    // Every change of a hot SKU drops its cached stock.
    await waitFor(async () => (await h.deps.redis.exists(keys.stock('eu', 'ONEPIECE-105'))) === 0, 'invalidated');
    const [firstSale, lastSale] = await waitFor(async () => {
      const sales = (await streamEvents(h.deps.redis, keys.inventoryEvents))
        .filter((e) => e.kind === 'reserve' && orders.includes(e.orderId ?? ''))
        .map((e) => Date.parse(e.at));
      return sales.length === 2 ? sales : null;
    }, 'both orders reserved');
    expect(lastSale).toBeGreaterThan(firstSale!);

    // The first order has left the window and the second is still in it: one unit, 6/min, the cool
    // level, which must not cool the SKU down.
    stoppedAt = (firstSale! + lastSale!) / 2 + windowMs;
    await waitFor(
      async () => state()?.heat.hot && state()?.ratePerMinute === 6,
      'one unit in the window while the SKU stays hot',
    );
    expect(state()?.heat.calmSince).toBeNull();
    // The window is empty: the cool-down starts then, and the SKU stays hot until it has run out.
    stoppedAt = lastSale! + windowMs;
    await waitFor(
      async () => state()?.heat.hot && state()?.ratePerMinute === 0,
      'an empty window while the SKU stays hot',
    );
    expect(state()?.heat.calmSince).toBe(lastSale! + windowMs);
    expect(await hot('eu', 'ONEPIECE-105')).not.toBeNull();
    stoppedAt += coolDownMs;
    await waitFor(async () => (await hot('eu', 'ONEPIECE-105')) === null, 'the SKU cools down');
    watching = false;
    await watcher;

    const firstHot = seen.findIndex((e) => e !== null);
    const lastHot = seen.findLastIndex((e) => e !== null);
    const during = seen.slice(firstHot, lastHot + 1);
    expect(during.every((e) => e !== null && e.since === first.since)).toBe(true);
    expect(await counterValue(controller.registry, 'orderflow_flash_sale_decisions_total', { direction: 'hot' })).toBe(
      1,
    );
    expect(await counterValue(controller.registry, 'orderflow_flash_sale_decisions_total', { direction: 'cool' })).toBe(
      1,
    );
  });
});

describe('a declared sale window', () => {
  it('makes its SKUs hot for its duration, with its purchase limit, and cool as it ends', async () => {
    await startController('declared');
    const startsAt = new Date(Date.now() + 1_500);
    const sale = await createFlashSale(h.deps.db, {
      name: 'Chainsaw Man weekend',
      region: 'eu',
      skus: ['CHAINSAW-05'],
      startsAt,
      endsAt: new Date(startsAt.getTime() + 2_000),
      purchaseLimit: 1,
    });
    // Watched from the start: each reading is timed once it is in, so a controller that turned the SKU
    // hot early could be seen before startsAt, and a correct one never is.
    let seenHotAt = 0;
    const entry = await waitFor(async () => {
      const found = await hot('eu', 'CHAINSAW-05');
      seenHotAt = Date.now();
      return found;
    }, 'the sale starts');
    expect(seenHotAt).toBeGreaterThanOrEqual(startsAt.getTime());
    expect(entry).toMatchObject({
      sku: 'CHAINSAW-05',
      region: 'eu',
      reasons: ['declared_sale'],
      purchaseLimit: 1,
      flashSaleId: sale.id,
      available: 60,
    });
    await waitFor(async () => (await hot('eu', 'CHAINSAW-05')) === null, 'the sale ends');
    expect(Date.now()).toBeGreaterThanOrEqual(sale.ends_at);
  });

  it('cools a SKU at once when an operator ends the sale early', async () => {
    await startController('ended-early');
    const sale = await createFlashSale(h.deps.db, {
      name: 'Berserk day',
      region: 'us',
      skus: ['BERSERK-41'],
      startsAt: new Date(),
      endsAt: new Date(Date.now() + 3_600_000), // long after this test: only ending it early cools it
      purchaseLimit: null,
    });
    expect(await waitFor(() => hot('us', 'BERSERK-41'), 'the sale starts')).toMatchObject({ purchaseLimit: 100 });
    await endFlashSale(h.deps.db, sale.id);
    await waitFor(async () => (await hot('us', 'BERSERK-41')) === null, 'the sale is over');
  });
});

describe('a controller that stays down', () => {
  it('takes its hot SKUs with it within a few heartbeats, so purchase limits stop applying', async () => {
    // Heartbeats far apart enough that a busy machine does not miss one: the hash lives 6 s past each.
    const controller = await startController('heartbeat', { heartbeatMs: 1_000 });
    await createFlashSale(h.deps.db, {
      name: 'One Piece night',
      region: 'us',
      skus: ['ONEPIECE-105'],
      startsAt: new Date(),
      endsAt: new Date(Date.now() + 3_600_000), // outlasts the test: only the stopped controller ends it
      purchaseLimit: 1,
    });
    await waitFor(() => hot('us', 'ONEPIECE-105'), 'the sale starts');
    const twoUnits = orderBody({ region: 'us', items: [{ sku: 'ONEPIECE-105', quantity: 2 }] });
    const limited = await h.placeOrder(twoUnits, h.keys.customers[1]!.apiKey);
    expect(limited.status).toBe(422);
    expect(limited.body.error.code).toBe('purchase_limit_exceeded');
    // The hash lives 6 heartbeats past the last renewal.
    const ttl = await h.deps.redis.pttl(keys.hotSkus);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(6_000);

    // Redis lost the hash (a restart without persistence): the next heartbeat writes it again.
    await h.deps.redis.del(keys.hotSkus);
    await waitFor(() => hot('us', 'ONEPIECE-105'), 'the hot SKU is written again');

    await controller.stop();
    await waitFor(async () => (await hot('us', 'ONEPIECE-105')) === null, 'the hot SKU expires');
    const unlimited = await h.placeOrder(twoUnits, h.keys.customers[1]!.apiKey);
    expect(unlimited.status).toBe(201);
  });
});

describe('a controller that stops mid-stream', () => {
  it('loses no event: the next one takes over pending entries and counts every event once', async () => {
    // Every SKU with an event is hot here (hot stock 1000), so its entry shows the rate and stock. The
    // window (10 min) holds every sale of the test, however long a busy machine makes it.
    const settings = { hotStock: 1_000, hotRatePerMinute: 0, rateWindowMs: 600_000 };
    const first = await startController('first', settings);
    await completedOrder('BERSERK-42');
    await completedOrder('BERSERK-42');
    await waitFor(async () => first.states.get('eu:BERSERK-42')?.sales.size === 2, 'the first controller saw both');
    await first.stop();

    // While no controller runs: two more orders and a restock, published by a relay elsewhere.
    const relay = startRelay(h.deps, { streamKey: keys.inventoryEvents, intervalMs: 20 });
    await completedOrder('BERSERK-42');
    await completedOrder('BERSERK-42');
    await h.waitForQuiet();
    await h.deps.db.transaction((tx) => restockStock(tx, { sku: 'BERSERK-42', region: 'eu', quantity: 5 }));
    const published = await waitFor(async () => {
      const events = (await streamEvents(h.deps.redis, keys.inventoryEvents)).filter((e) => e.sku === 'BERSERK-42');
      return events.length === 9 && events;
    }, 'nine events (four reservations, four shipments, a restock)');
    await relay.stop();
    // A controller that crashed: it read three entries and never acknowledged them.
    await h.deps.redis.call(
      'XREADGROUP',
      ...['GROUP', CONSUMER_GROUP, 'ghost', 'COUNT', '3', 'STREAMS', keys.inventoryEvents, '>'],
    );
    expect(await pendingCount()).toBe(3);
    // And a relay that published two events twice (its commit failed after the XADDs).
    for (const event of published.slice(0, 2))
      await h.deps.redis.xadd(keys.inventoryEvents, '*', ...toStreamFields(event));

    const second = await startController('second', {
      ...settings,
      consumer: { blockMs: 100, claimIdleMs: 300, claimEveryMs: 200 },
    });
    await waitFor(async () => {
      const pending = await pendingCount();
      const [group] = (await h.deps.redis.xinfo('GROUPS', keys.inventoryEvents)) as Array<Array<string | number>>;
      const [[lastId]] = (await h.deps.redis.xrevrange(keys.inventoryEvents, '+', '-', 'COUNT', 1)) as [
        [string, string[]],
      ];
      return pending === 0 && group![group!.indexOf('last-delivered-id') + 1] === lastId;
    }, 'every entry delivered and acknowledged');

    const state = second.states.get('eu:BERSERK-42')!;
    const last = published.at(-1)!;
    expect(state.sales.size).toBe(4);
    expect(state.available).toBe(last.availableAfter);
    expect(await hot('eu', 'BERSERK-42')).toMatchObject({ ratePerMinute: 0.4, available: last.availableAfter });
    expect(
      await counterValue(second.registry, 'orderflow_flash_sale_events_total', { outcome: 'ignored' }),
    ).toBeGreaterThanOrEqual(2);
  });
});

describe('the status server', () => {
  it('serves /healthz and the Prometheus metrics', async () => {
    const port = await freePort();
    await startController('status', { port });
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', redis: 'ready' });
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain('orderflow_flash_sale_hot_skus');
    expect(metrics).toContain('orderflow_flash_sale_decisions_total');
  });
});
