import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisKeys, redisKeys } from '../cache/keys.ts';
import { startRelay } from '../flash-sale/relay.ts';
import type { Repeating } from '../flash-sale/repeat.ts';
import { getStockLevels, restockStock, setAvailable } from '../sql/inventory.ts';
import { claimUnpublished } from '../sql/inventory-events.ts';
import { deleteNamespace, privateNamespace, streamEvents, waitFor } from './flash-sale-support.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

const namespace = privateNamespace();
let h: Harness;
let keys: RedisKeys;
const relays: Repeating[] = [];

beforeAll(async () => {
  h = await startHarness({ env: { REDIS_NAMESPACE: namespace } });
  keys = redisKeys(namespace);
});
afterAll(async () => {
  await Promise.all(relays.map((r) => r.stop()));
  if (h) await deleteNamespace(h.deps.redis, namespace);
  await h?.close();
});

const available = async (sku: string, region = 'eu') => (await getStockLevels(h.deps.db, region, [sku]))[0]!.available;
/** Nothing is left to publish (with no relay holding rows at that moment). */
const nothingUnpublished = () =>
  h.deps.db.transaction(async (tx) => {
    const { events, withheld } = await claimUnpublished(tx, 1);
    return events.length + withheld === 0;
  });

describe('the outbox relay', () => {
  it('publishes every stock change of an order’s life, and restocks and adjustments, in order with the stock after each', async () => {
    relays.push(startRelay(h.deps, { streamKey: keys.inventoryEvents, intervalMs: 20 }));

    const shipped = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-41', quantity: 2 }] }));
    expect((await h.waitForTerminal(shipped.body.id)).status).toBe('COMPLETED');
    // The carrier does not deliver to XX: the shipment fails after the reservation, which is released.
    const body = orderBody({ items: [{ sku: 'CHAINSAW-05', quantity: 1 }] });
    const failed = await h.placeOrder({ ...body, shippingAddress: { ...body.shippingAddress, country: 'XX' } });
    expect((await h.waitForTerminal(failed.body.id)).status).toBe('FAILED');
    await h.waitForQuiet();
    await h.deps.db.transaction((tx) => restockStock(tx, { sku: 'CHAINSAW-05', region: 'eu', quantity: 10 }));
    await setAvailable(h.deps.db, 'CHAINSAW-05', 'eu', 50);

    const events = await waitFor(async () => {
      const all = await streamEvents(h.deps.redis, keys.inventoryEvents);
      return all.filter((e) => e.sku === 'CHAINSAW-05').length >= 4 && all;
    }, 'all six events on the stream');
    const of = (sku: string) =>
      events
        .filter((e) => e.sku === sku)
        .map(({ kind, quantity, availableAfter, orderId }) => ({ kind, quantity, availableAfter, orderId }));

    expect(of('BERSERK-41')).toEqual([
      { kind: 'reserve', quantity: 2, availableAfter: 38, orderId: shipped.body.id },
      { kind: 'ship', quantity: 2, availableAfter: 38, orderId: shipped.body.id },
    ]);
    expect(of('CHAINSAW-05')).toEqual([
      { kind: 'reserve', quantity: 1, availableAfter: 59, orderId: failed.body.id },
      { kind: 'release', quantity: 1, availableAfter: 60, orderId: failed.body.id },
      { kind: 'restock', quantity: 10, availableAfter: 70, orderId: null },
      { kind: 'adjust', quantity: -20, availableAfter: 50, orderId: null },
    ]);
    expect(events.every((e) => e.region === 'eu' && !Number.isNaN(Date.parse(e.at)))).toBe(true);
    expect(await available('CHAINSAW-05')).toBe(50);
    expect(await nothingUnpublished()).toBe(true);
  });

  it('publishes at least once and in order per SKU when two relays run side by side', async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    const before = (await streamEvents(h.deps.redis, keys.inventoryEvents)).length;
    const skus = ['ONEPIECE-105', 'BERSERK-42', 'FRIEREN-01-LTD'];
    const start = Object.fromEntries(await Promise.all(skus.map(async (s) => [s, await available(s)] as const)));
    const restockAll = (count: number) =>
      Promise.all(
        skus.flatMap((sku) =>
          Array.from({ length: count }, () =>
            h.deps.db.transaction((tx) => restockStock(tx, { sku, region: 'eu', quantity: 1 })),
          ),
        ),
      );
    // A backlog first (as after an outage), so both relays start by claiming side by side; then more
    // changes committing while they run. Small batches make the two interleave batch after batch.
    await restockAll(30);
    for (let i = 0; i < 2; i++) {
      relays.push(startRelay(h.deps, { streamKey: keys.inventoryEvents, batchSize: 5, intervalMs: 2 }));
    }
    await restockAll(30);
    const perSku = 60;

    const published = await waitFor(async () => {
      const all = (await streamEvents(h.deps.redis, keys.inventoryEvents)).slice(before);
      return new Set(all.map((e) => e.id)).size >= skus.length * perSku && all;
    }, 'every restock on the stream');
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    expect(await nothingUnpublished()).toBe(true);

    for (const sku of skus) {
      // Each restock adds one unit, so in commit order the stock after each is start+1, start+2, …:
      // any event missing or out of order breaks the sequence. Repeats are allowed (at least once).
      const seen = new Set<string>();
      const firstDeliveries = published.filter((e) => e.sku === sku && !seen.has(e.id) && seen.add(e.id));
      expect(firstDeliveries.map((e) => e.availableAfter)).toEqual(
        Array.from({ length: perSku }, (_, i) => start[sku]! + i + 1),
      );
      const ids = firstDeliveries.map((e) => BigInt(e.id));
      expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
    }
  });
});
