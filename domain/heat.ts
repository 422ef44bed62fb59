// When is a SKU hot? A pure decision over what the flash-sale controller knows of one SKU in one region:
// its recent sales, its last known stock and the sale window an operator declared, if any. Turning hot is
// immediate; cooling down needs every condition that made it hot to fall below a lower, "cool" level
// (half the hot rate; 1.5 times the hot stock, or a restock), and all of them to stay off for the
// cool-down (hysteresis), so a rate hovering around the threshold does not flip the TTL back and forth.

export const heatReasons = ['sales_rate', 'low_stock', 'declared_sale'] as const;
export type HeatReason = (typeof heatReasons)[number];

/** What the flash-sale controller publishes for each hot SKU, and the read path and API read back. */
export type HotSku = {
  sku: string;
  region: string;
  reasons: HeatReason[];
  since: string;
  ratePerMinute: number;
  available: number | null;
  /** The purchase limit per customer while hot (a declared sale can set its own). */
  purchaseLimit: number;
  flashSaleId: number | null;
};

export type HeatThresholds = {
  rateWindowMs: number;
  /** Units sold per minute over the window at or above which a SKU is hot; 0 turns this trigger off. */
  hotRatePerMinute: number;
  /** Available units at or below which a SKU is hot. */
  hotStock: number;
  /** How long every condition must stay at its cool level before a hot SKU cools down. */
  coolDownMs: number;
};

export type Heat = {
  hot: boolean;
  since: number | null;
  /** Why it is hot (never empty while hot): the conditions that are on; during the cool-down, the last ones. */
  reasons: HeatReason[];
  /** Since when every condition has been at its cool level, while still hot. */
  calmSince: number | null;
};

export type SaleRecord = { at: number; quantity: number };

export type HeatState = {
  /** Units sold (reservations), with when. Older ones than the window are simply not counted. */
  sales: Iterable<SaleRecord>;
  available: number | null;
  /** When goods last came in (a restock event). */
  lastRestockAt: number | null;
  heat: Heat;
};

export type DeclaredSale = { id: number; startsAt: number; endsAt: number; purchaseLimit: number | null };

export type HeatDecision = { heat: Heat; ratePerMinute: number; change: 'hot' | 'cool' | null };

export const coolHeat: Heat = { hot: false, since: null, reasons: [], calmSince: null };

/** Units sold per minute over the window ending now. */
export function ratePerMinute(sales: Iterable<SaleRecord>, now: number, windowMs: number): number {
  let units = 0;
  for (const sale of sales) if (sale.at > now - windowMs && sale.at <= now) units += sale.quantity;
  return units / (windowMs / 60_000);
}

export function isSaleActive(sale: DeclaredSale | undefined, now: number): sale is DeclaredSale {
  return sale !== undefined && sale.startsAt <= now && now < sale.endsAt;
}

export function decideHeat(
  state: HeatState,
  now: number,
  t: HeatThresholds,
  declaredSale?: DeclaredSale,
): HeatDecision {
  const rate = ratePerMinute(state.sales, now, t.rateWindowMs);
  const { available, heat } = state;
  const was = (reason: HeatReason) => heat.hot && heat.reasons.includes(reason);

  // Each condition is on at its hot level, and stays on down to its cool level only if it was one of the
  // reasons: a condition that never made the SKU hot must not hold it hot from inside its band (a SKU
  // that was hot for its sales, left with 25 units against a hot stock of 20, would never cool).
  // A restock while hot lifting the stock over the hot level is a real change, not noise: it turns the
  // stock condition off without waiting for the stock to clear the band.
  const restockedWhileHot = state.lastRestockAt !== null && heat.since !== null && state.lastRestockAt >= heat.since;
  const rateOn =
    t.hotRatePerMinute > 0 && (rate >= t.hotRatePerMinute || (was('sales_rate') && rate >= t.hotRatePerMinute / 2));
  const stockOn =
    available !== null &&
    (available <= t.hotStock || (was('low_stock') && available <= t.hotStock * 1.5 && !restockedWhileHot));
  const reasons: HeatReason[] = [];
  if (rateOn) reasons.push('sales_rate');
  if (stockOn) reasons.push('low_stock');
  if (isSaleActive(declaredSale, now)) reasons.push('declared_sale');

  if (!heat.hot) {
    if (reasons.length === 0) return { heat, ratePerMinute: rate, change: null };
    return { heat: { hot: true, since: now, reasons, calmSince: null }, ratePerMinute: rate, change: 'hot' };
  }
  if (reasons.length > 0) return { heat: { ...heat, reasons, calmSince: null }, ratePerMinute: rate, change: null };

  // Every condition is off. A SKU held hot only by a declared sale cools as soon as the sale is over;
  // one that was hot from its sales or its stock waits out the cool-down, keeping its reasons meanwhile.
  const calmSince = heat.calmSince ?? now;
  const heldOnlyBySale = heat.reasons.length === 1 && heat.reasons[0] === 'declared_sale';
  if (heldOnlyBySale || now - calmSince >= t.coolDownMs) {
    return { heat: coolHeat, ratePerMinute: rate, change: 'cool' };
  }
  return { heat: { ...heat, calmSince }, ratePerMinute: rate, change: null };
}
