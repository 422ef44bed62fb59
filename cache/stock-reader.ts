import type { Config } from '../config/index.ts';
import { AppError } from '../domain/errors.ts';
import type { HotSku } from '../domain/heat.ts';
import { availabilityOf, HOT_STOCK_WARNING } from '../domain/stock-answer.ts';
import type { RedisClient } from '../runtime/redis.ts';
import type { Db } from '../sql/database.ts';
import { getStockLevels, type StockLevel } from '../sql/inventory.ts';
import { parseHotSku, type RedisKeys } from './keys.ts';
import type { CachedJson, ReadThrough } from './read-through.ts';

/** The SKU's entry in the hot hash the flash-sale controller maintains, if it is hot. */
export async function findHotSku(
  redis: RedisClient,
  keys: RedisKeys,
  region: string,
  sku: string,
): Promise<HotSku | null> {
  const field = keys.hotSkuField(region, sku);
  const raw = await redis.hget(keys.hotSkus, field);
  if (raw === null) return null;
  const hot = parseHotSku(raw);
  // Not guessed at: whether the SKU is hot decides its purchase limit.
  if (!hot) throw new Error(`The hot SKU hash holds something other than a hot SKU at ${field}`);
  return hot;
}

/**
 * check_stock: in stock / low / out, through the cache. A hot SKU gets the short TTL (5 s) and a
 * warning; the controller also invalidates its entry on every change. Never used for a write decision
 * (reservations and purchase limits read PostgreSQL).
 */
export function createStockReader(
  db: Db,
  redis: RedisClient,
  cache: ReadThrough,
  keys: RedisKeys,
  settings: Config['cache'],
) {
  return {
    async read(sku: string, region: string) {
      const key = keys.stock(region, sku);
      // Both commands leave in the same tick: one round trip for the hot flag and the cached answer.
      const [hot, [cached]] = await Promise.all([
        findHotSku(redis, keys, region, sku),
        cache.lookup(stockCache, [key]),
      ]);
      const ttl = hot ? settings.ttlMs.hotStock : settings.ttlMs.stock;
      // An entry that does not parse is a miss like any other.
      const level =
        (cached && parsed(cached)) ??
        parsed(
          await cache.readMissed(
            {
              cache: 'stock',
              key,
              ttlMs: ttl,
              load: async () => {
                const [found] = await getStockLevels(db, region, [sku]);
                if (!found) throw new AppError('not_found', `SKU ${sku} is not sold in region ${region}`);
                return found;
              },
            },
            cached,
          ),
        );
      if (!level) throw new Error(`The cached stock answer of ${region}:${sku} is not JSON`);
      const { available, restock_date } = level.value;
      const availability = availabilityOf(available, settings.lowStockThreshold);
      return {
        sku,
        region,
        availability,
        available,
        restockDate: availability === 'in_stock' ? null : restock_date,
        hot: hot !== null,
        warning: hot ? HOT_STOCK_WARNING : null,
        purchaseLimit: hot ? hot.purchaseLimit : null,
        asOf: level.asOfIso,
        ageMs: level.ageMs,
        stale: level.source === 'stale',
        source: level.source,
        ttlMs: ttl,
      };
    },
  };
}
const stockCache = ['stock'];

function parsed(read: CachedJson): (CachedJson & { value: StockLevel }) | null {
  try {
    return { ...read, value: JSON.parse(read.json) as StockLevel };
  } catch {
    return null;
  }
}
export type StockReader = ReturnType<typeof createStockReader>;
