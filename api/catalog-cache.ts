import type { SellableItem } from '../sql/catalog.ts';

export type FindSellable = (
  region: string,
  skus: readonly string[],
  options?: { fresh?: boolean },
) => Promise<SellableItem[]>;

/**
 * Remembers the catalog rows orders are priced from, per region and SKU, for `ttlMs`, so that placing
 * an order is one round trip to PostgreSQL, not two. It cannot sell at a stale price: the statement that
 * stores the order checks every line against the catalog (sql/orders.ts, insertOrder) and stores
 * nothing when a name, price or flag changed, and the caller then asks again with `fresh`. Only SKUs the
 * region stocks are remembered: an unknown or unstocked SKU is looked up every time, so a SKU added to
 * the catalog sells at once.
 */
export function cacheSellableItems(
  find: (region: string, skus: readonly string[]) => Promise<SellableItem[]>,
  options: { ttlMs: number; maxEntries: number; now?: () => number },
): FindSellable {
  const now = options.now ?? Date.now;
  const entries = new Map<string, { item: SellableItem; expiresAt: number }>();
  const keyOf = (region: string, sku: string) => `${region}\u0000${sku}`;
  return async function findSellable(region, skus, { fresh = false } = {}) {
    if (!fresh) {
      const at = now();
      const known = skus.map((sku) => entries.get(keyOf(region, sku)));
      if (known.every((entry) => entry !== undefined && entry.expiresAt > at)) return known.map((entry) => entry!.item);
    }
    const items = await find(region, skus);
    const expiresAt = now() + options.ttlMs;
    for (const sku of skus) entries.delete(keyOf(region, sku));
    for (const item of items) {
      if (!item.stocked) continue;
      if (entries.size >= options.maxEntries) entries.delete(entries.keys().next().value as string);
      entries.set(keyOf(region, item.sku), { item, expiresAt });
    }
    return items;
  };
}
