import { z } from 'zod';
import { type HotSku, heatReasons } from '../domain/heat.ts';
import type { OrderFieldGroup } from '../sql/order-view.ts';

// Every Redis key outside the queues, named in one place. The API, the workers and the flash-sale
// controller all build keys here, so an invalidation always hits the key a reader fills.

export function redisKeys(namespace: string) {
  return {
    // Cache entries. cache/read-through.ts derives `<key>:stale`, `:ver` and `:fill` from each; the
    // braces are a hash tag, so on Redis Cluster they share a slot with their key (its scripts need that).
    // An order's groups share one tag too: a read fetches all three with one MGET.
    order: (orderId: string, group: OrderFieldGroup) => `${namespace}:cache:{order:${orderId}}:${group}`,
    stock: (region: string, sku: string) => `${namespace}:cache:{stock:${region}:${sku}}`,
    recentOrders: (customerId: string) => `${namespace}:cache:{recent:${customerId}}`,
    /** The stream the outbox relay publishes inventory events to. */
    inventoryEvents: `${namespace}:inventory-events`,
    /** Hash of the SKUs the controller has decided are hot: field `${region}:${sku}` → HotSku JSON. */
    hotSkus: `${namespace}:hot-skus`,
    hotSkuField: (region: string, sku: string) => `${region}:${sku}`,
    /** A hot SKU's admission counter (flash-sale/admission.ts), written by the controller, taken by the API. */
    admission: (region: string, sku: string) => `${namespace}:admission:{${region}:${sku}}`,
    /** The admission gate's token bucket, shared by every API process. */
    admissionGate: `${namespace}:admission-gate`,
    /** An API key's request count in the current rate-limit window of a budget (api/rate-limit.ts). */
    rateLimit: (budget: 'writes' | 'reads', apiKeyId: number) => `${namespace}:rate-limit:${budget}:${apiKeyId}`,
    /** A support assistant's conversation (chat/sessions.ts): JSON, expiring CHAT_SESSION_TTL_MS after its last turn. */
    chatSession: (sessionId: string) => `${namespace}:chat-session:${sessionId}`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;

const hotSkuEntry = z.object({
  sku: z.string().min(1),
  region: z.string().min(1),
  reasons: z.array(z.enum(heatReasons)).min(1),
  since: z.iso.datetime({ offset: true }),
  ratePerMinute: z.number(),
  available: z.number().nullable(),
  purchaseLimit: z.number(),
  flashSaleId: z.number().nullable(),
}) satisfies z.ZodType<HotSku>;

/** A value of the hot SKU hash, or null when it is not one the controller writes (not JSON, or not a HotSku). */
export function parseHotSku(json: string): HotSku | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  const parsed = hotSkuEntry.safeParse(value);
  return parsed.success ? parsed.data : null;
}
