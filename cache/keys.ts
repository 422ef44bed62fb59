// Every Redis key outside the queues, named in one place. The API, the workers and the flash-sale
// controller all build keys here, so an invalidation always hits the key a reader fills.

export type OrderFieldGroup = 'placed' | 'status' | 'tracking';

export function redisKeys(namespace: string) {
  return {
    // Cache entries. cache/read-through.ts derives `<key>:stale`, `:ver` and `:fill` from each; the
    // braces are a hash tag, so on Redis Cluster they share a slot with their key (its scripts need that).
    order: (orderId: string, group: OrderFieldGroup) => `${namespace}:cache:{order:${orderId}:${group}}`,
    stock: (region: string, sku: string) => `${namespace}:cache:{stock:${region}:${sku}}`,
    recentOrders: (customerId: string) => `${namespace}:cache:{recent:${customerId}}`,
    /** The stream the outbox relay publishes inventory events to. */
    inventoryEvents: `${namespace}:inventory-events`,
    /** Hash of the SKUs the controller has decided are hot: field `${region}:${sku}` → HotSku JSON. */
    hotSkus: `${namespace}:hot-skus`,
    hotSkuField: (region: string, sku: string) => `${region}:${sku}`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;

/** What the flash-sale controller publishes for each hot SKU, and the read path and API read back. */
export type HotSku = {
  sku: string;
  region: string;
  reasons: Array<'sales_rate' | 'low_stock' | 'declared_sale'>;
  since: string;
  ratePerMinute: number;
  available: number | null;
  /** The purchase limit per customer while hot (a declared sale can set its own). */
  purchaseLimit: number;
  flashSaleId: number | null;
};

/** An inventory event as the relay publishes it on the stream (all fields are strings in Redis). */
export type InventoryEvent = {
  id: string;
  sku: string;
  region: string;
  kind: 'reserve' | 'release' | 'ship' | 'unship' | 'restock' | 'adjust';
  quantity: number;
  availableAfter: number;
  orderId: string | null;
  at: string;
};
