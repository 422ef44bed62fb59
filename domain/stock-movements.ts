// Every change to a SKU's stock is a movement of one kind, written beside the change (stock_movements)
// and published as an inventory event: an order's reservation, its release, shipment and the undoing of
// one, the goods an operator brings in or corrects, and returned units put back on sale.

export const stockMovementKinds = ['reserve', 'release', 'ship', 'unship', 'restock', 'adjust', 'return'] as const;
export type StockMovementKind = (typeof stockMovementKinds)[number];

/** An inventory event as the relay publishes it on the stream (all fields are strings in Redis). */
export type InventoryEvent = {
  id: string;
  sku: string;
  region: string;
  kind: StockMovementKind;
  quantity: number;
  availableAfter: number;
  orderId: string | null;
  at: string;
};
