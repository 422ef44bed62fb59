import type { Config } from '../config/index.ts';
import type { Db } from '../sql/database.ts';
import { loadOrderGroups, type OrderFieldGroup } from '../sql/order-view.ts';
import type { RedisKeys } from './keys.ts';
import type { CacheRead, ReadThrough } from './read-through.ts';

type Groups = Awaited<ReturnType<typeof loadOrderGroups>>;
export type OrderRead = { [G in OrderFieldGroup]: CacheRead<NonNullable<Groups[G]>> };

/**
 * An order as three independently cached groups of fields, each with its own TTL (placed fields 1 h,
 * status 5 min, tracking 15 min by default) and its own as-of time. Every change to an order
 * invalidates status and tracking once its transaction has committed; the TTLs only bound staleness
 * when an invalidation is lost.
 */
export function createOrderReader(db: Db, cache: ReadThrough, keys: RedisKeys, ttl: Config['cache']['ttlMs']) {
  const ttlOf: Record<OrderFieldGroup, number> = { placed: ttl.placed, status: ttl.status, tracking: ttl.tracking };
  return {
    /** Throws not_found (never cached) when the order does not exist. */
    async read(orderId: string): Promise<OrderRead> {
      const load = (group: OrderFieldGroup) => async () => (await loadOrderGroups(db, orderId, [group]))[group]!;
      const read = (group: OrderFieldGroup) =>
        cache.read(`order-${group}`, keys.order(orderId, group), ttlOf[group], load(group));
      // Placed first: it says whether the order exists (and whose it is) before anything else is cached.
      const placed = await read('placed');
      const [status, tracking] = await Promise.all([read('status'), read('tracking')]);
      return { placed, status, tracking } as OrderRead;
    },
    invalidate(orderId: string, customerId?: string): Promise<void> {
      const stale = [keys.order(orderId, 'status'), keys.order(orderId, 'tracking')];
      return cache.invalidate(customerId ? [...stale, keys.recentOrders(customerId)] : stale);
    },
  };
}
export type OrderReader = ReturnType<typeof createOrderReader>;
