import type { Config } from '../config/index.ts';
import { isUuid } from '../domain/ids.ts';
import type { Db } from '../sql/database.ts';
import { loadOrderGroups, type OrderFieldGroup } from '../sql/order-view.ts';
import type { RedisKeys } from './keys.ts';
import type { CachedJson, ReadThrough } from './read-through.ts';

/** Each group as its cached JSON (an object), and the owner read from the placed group. */
export type OrderRead = { [G in OrderFieldGroup]: CachedJson } & { customerId: string };

const groups = ['placed', 'status', 'tracking'] as const satisfies readonly OrderFieldGroup[];
const caches = groups.map((g) => `order-${g}`);

/**
 * An order as three independently cached groups of fields, each with its own TTL (placed fields 1 h,
 * status 5 min, tracking 15 min by default) and its own as-of time, all three read with one MGET. Every
 * change to an order invalidates status and tracking once its transaction has committed; the TTLs only
 * bound staleness when an invalidation is lost.
 */
export function createOrderReader(db: Db, cache: ReadThrough, keys: RedisKeys, ttl: Config['cache']['ttlMs']) {
  const ttlOf: Record<OrderFieldGroup, number> = { placed: ttl.placed, status: ttl.status, tracking: ttl.tracking };
  return {
    /** Throws not_found (never cached) when the order does not exist. */
    async read(orderId: string): Promise<OrderRead> {
      const keyOf = (group: OrderFieldGroup) => keys.order(orderId, group);
      const missed = (group: OrderFieldGroup, unreadable?: CachedJson | null) =>
        cache.readMissed(
          {
            cache: `order-${group}`,
            key: keyOf(group),
            ttlMs: ttlOf[group],
            load: async () => (await loadOrderGroups(db, orderId, [group]))[group]!,
          },
          unreadable,
        );
      const [placedHit, statusHit, trackingHit] = await cache.lookup(caches, groups.map(keyOf));
      // Placed first: it says whether the order exists (and whose it is) before anything else is cached.
      let placed = placedHit ?? null;
      let customerId = placed ? customerOf(placed.json) : undefined;
      if (placed === null || customerId === undefined) {
        placed = await missed('placed', placed);
        customerId = customerOf(placed.json);
        if (customerId === undefined) throw new Error(`The placed fields of order ${orderId} name no customer`);
      }
      if (statusHit && trackingHit) return { placed, status: statusHit, tracking: trackingHit, customerId };
      const [status, tracking] = await Promise.all([statusHit ?? missed('status'), trackingHit ?? missed('tracking')]);
      return { placed, status, tracking, customerId };
    },
    invalidate(orderId: string, customerId?: string): Promise<void> {
      const stale = [keys.order(orderId, 'status'), keys.order(orderId, 'tracking')];
      return cache.invalidate(customerId ? [...stale, keys.recentOrders(customerId)] : stale);
    },
  };
}
export type OrderReader = ReturnType<typeof createOrderReader>;

// sql/order-view.ts writes a placed group with the order's id first and its customer second, so the
// owner usually sits at a known place in the text: `{"id":"<uuid>","customerId":"<customer id>"`. The
// id, a UUID, has no character JSON escapes, so the key after it is a top-level key; a customer id with
// no backslash before its closing quote is the string JSON.parse would give. Anything else is parsed.
const OWNER_KEY = '","customerId":"';
const OWNER_AT = '{"id":"'.length + 36 + OWNER_KEY.length;

/** The placed group's customer id, or undefined if the JSON is not a placed group. */
export function customerOf(json: string): string | undefined {
  if (json.startsWith('{"id":"') && json.startsWith(OWNER_KEY, OWNER_AT - OWNER_KEY.length)) {
    const end = json.indexOf('"', OWNER_AT);
    const customerId = json.slice(OWNER_AT, end);
    if (end > OWNER_AT && isUuid(json.slice(7, 43)) && !customerId.includes('\\')) return customerId;
  }
  try {
    const { customerId } = JSON.parse(json) as { customerId?: unknown };
    return typeof customerId === 'string' ? customerId : undefined;
  } catch {
    return undefined;
  }
}
