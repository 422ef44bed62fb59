import { coolHeat, type Heat, type HeatState, type SaleRecord } from '../domain/heat.ts';
import type { InventoryEvent } from '../domain/stock-movements.ts';

// What the controller knows of one SKU in one region, built from inventory events. Applying an event
// is idempotent, which is what makes at-least-once delivery (relay retries, reclaimed entries,
// several relays) harmless without a separate set of seen ids:
// - a sale is kept under its event id, so a repeated reservation counts once; sales older than the
//   rate window are dropped, and a repeat that old would not count anyway;
// - the stock follows the event with the highest id (ids follow each SKU's commit order), so a
//   repeated or late event never puts an older stock level back.
// Sales are reservations. A release after a failed or cancelled order is not subtracted: it does not
// undo the demand the reservation showed, and a flash sale is about demand.

export type SkuState = {
  sku: string;
  region: string;
  /** Reservations inside the rate window, by event id. */
  sales: Map<string, SaleRecord>;
  lastEventId: bigint | null;
  available: number | null;
  lastRestockAt: number | null;
  heat: Heat;
  ratePerMinute: number;
  /** The HotSku JSON last written to the hot hash; null when the SKU has no entry there. */
  published: string | null;
};

export function newSkuState(region: string, sku: string): SkuState {
  return {
    sku,
    region,
    sales: new Map(),
    lastEventId: null,
    available: null,
    lastRestockAt: null,
    heat: coolHeat,
    ratePerMinute: 0,
    published: null,
  };
}

/** 'ignored' when the event changed nothing: a repeat, or superseded by a later event of the SKU. */
export function recordEvent(
  state: SkuState,
  event: InventoryEvent,
  now: number,
  windowMs: number,
): 'applied' | 'ignored' {
  const id = BigInt(event.id);
  const at = Date.parse(event.at);
  let applied = false;
  if (event.kind === 'reserve' && at > now - windowMs && !state.sales.has(event.id)) {
    state.sales.set(event.id, { at, quantity: event.quantity });
    applied = true;
  }
  if (event.kind === 'restock' && (state.lastRestockAt === null || at > state.lastRestockAt)) {
    state.lastRestockAt = at;
  }
  if (state.lastEventId === null || id > state.lastEventId) {
    state.lastEventId = id;
    state.available = event.availableAfter;
    applied = true;
  }
  return applied ? 'applied' : 'ignored';
}

export function forgetOldSales(state: SkuState, now: number, windowMs: number): void {
  for (const [id, sale] of state.sales) if (sale.at <= now - windowMs) state.sales.delete(id);
}

export function heatInput(state: SkuState): HeatState {
  return {
    sales: state.sales.values(),
    available: state.available,
    lastRestockAt: state.lastRestockAt,
    heat: state.heat,
  };
}

/** Nothing worth keeping: cool, no sales in the window, no entry in the hot hash. */
export function isForgettable(state: SkuState): boolean {
  return !state.heat.hot && state.sales.size === 0 && state.published === null;
}
