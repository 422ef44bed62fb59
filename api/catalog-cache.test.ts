import { describe, expect, it } from 'vitest';
import type { SellableItem } from '../sql/catalog.ts';
import { cacheSellableItems } from './catalog-cache.ts';

const item = (sku: string, price_cents: number, stocked = true): SellableItem => ({
  sku,
  name: sku,
  price_cents,
  currency: 'EUR',
  final_sale: false,
  stocked,
});

/** A catalog that counts its lookups, and a clock the test moves. */
function setup(options: { maxEntries?: number } = {}) {
  const catalog = new Map<string, SellableItem>([
    ['A', item('A', 100)],
    ['B', item('B', 200)],
    ['C', item('C', 300, false)],
  ]);
  const lookups: string[][] = [];
  let now = 0;
  const find = cacheSellableItems(
    async (_region, skus) => {
      lookups.push([...skus]);
      return skus.flatMap((sku) => (catalog.has(sku) ? [catalog.get(sku)!] : []));
    },
    { ttlMs: 1_000, maxEntries: options.maxEntries ?? 100, now: () => now },
  );
  return { catalog, lookups, find, tick: (ms: number) => (now += ms) };
}

describe('cacheSellableItems', () => {
  it('answers from memory while every SKU asked for is known and fresh', async () => {
    const { find, lookups } = setup();
    expect(await find('eu', ['A', 'B'])).toEqual([item('A', 100), item('B', 200)]);
    expect(await find('eu', ['B'])).toEqual([item('B', 200)]);
    expect(await find('eu', ['A', 'B'])).toEqual([item('A', 100), item('B', 200)]);
    expect(lookups).toEqual([['A', 'B']]);
  });

  it('looks up again when asked for fresh rows, after the TTL, and per region', async () => {
    const { find, lookups, catalog, tick } = setup();
    await find('eu', ['A']);
    catalog.set('A', item('A', 150));
    expect(await find('eu', ['A'])).toEqual([item('A', 100)]);
    expect(await find('eu', ['A'], { fresh: true })).toEqual([item('A', 150)]);
    tick(1_000);
    await find('eu', ['A']);
    await find('us', ['A']);
    expect(lookups).toEqual([['A'], ['A'], ['A'], ['A']]);
  });

  it('never remembers a SKU that is unknown or not stocked in the region', async () => {
    const { find, lookups, catalog } = setup();
    expect(await find('eu', ['C', 'Z'])).toEqual([item('C', 300, false)]);
    catalog.set('C', item('C', 300));
    catalog.set('Z', item('Z', 50));
    expect(await find('eu', ['C', 'Z'])).toEqual([item('C', 300), item('Z', 50)]);
    expect(lookups).toEqual([
      ['C', 'Z'],
      ['C', 'Z'],
    ]);
  });

  it('forgets a SKU that stopped being stocked, and the oldest entry when full', async () => {
    const { find, lookups, catalog } = setup({ maxEntries: 1 });
    await find('eu', ['A']);
    await find('eu', ['B']); // A is pushed out
    await find('eu', ['A']);
    catalog.set('A', item('A', 100, false));
    await find('eu', ['A'], { fresh: true });
    await find('eu', ['A']);
    expect(lookups).toEqual([['A'], ['B'], ['A'], ['A'], ['A']]);
  });
});
