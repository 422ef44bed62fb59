// How a stock level is told to a customer (SPEC §3): in stock, low or out, with the restock date when
// one is known and a warning while the SKU is hot. Pure.

export type Availability = 'in_stock' | 'low' | 'out';

export function availabilityOf(available: number, lowThreshold: number): Availability {
  if (available <= 0) return 'out';
  return available <= lowThreshold ? 'low' : 'in_stock';
}

export const HOT_STOCK_WARNING = 'Stock is changing rapidly: availability is confirmed at checkout.';
