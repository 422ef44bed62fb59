import { describe, expect, it } from 'vitest';
import { ratePerMinute } from '../domain/heat.ts';
import type { InventoryEvent, StockMovementKind } from '../domain/stock-movements.ts';
import { forgetOldSales, isForgettable, newSkuState, recordEvent } from './sku-state.ts';

const now = Date.parse('2025-06-01T12:00:00Z');
const windowMs = 60_000;
function event(id: number, kind: StockMovementKind, availableAfter: number, agoMs = 1_000): InventoryEvent {
  const quantity = kind === 'reserve' ? 2 : 5;
  const at = new Date(now - agoMs).toISOString();
  return { id: String(id), sku: 'BERSERK-42', region: 'eu', kind, quantity, availableAfter, orderId: null, at };
}

describe('recordEvent', () => {
  it('counts a reservation as a sale and follows the stock', () => {
    const state = newSkuState('eu', 'BERSERK-42');
    expect(recordEvent(state, event(1, 'reserve', 8), now, windowMs)).toBe('applied');
    expect(state).toMatchObject({ available: 8, lastEventId: 1n });
    expect(ratePerMinute(state.sales.values(), now, windowMs)).toBe(2);
  });

  it('ignores a repeated event: the sale counts once and the stock does not go back', () => {
    const state = newSkuState('eu', 'BERSERK-42');
    const first = event(1, 'reserve', 8);
    recordEvent(state, first, now, windowMs);
    recordEvent(state, event(2, 'release', 10), now, windowMs);
    expect(recordEvent(state, first, now, windowMs)).toBe('ignored');
    expect(recordEvent(state, event(2, 'release', 10), now, windowMs)).toBe('ignored');
    expect(state.sales.size).toBe(1);
    expect(state.available).toBe(10);
  });

  it('counts a late reservation (taken over from a dead consumer) without taking the stock back', () => {
    const state = newSkuState('eu', 'BERSERK-42');
    recordEvent(state, event(5, 'restock', 20), now, windowMs);
    expect(recordEvent(state, event(4, 'reserve', 13), now, windowMs)).toBe('applied');
    expect(state.available).toBe(20);
    expect(state.sales.size).toBe(1);
  });

  it('does not keep sales older than the window, and keeps when goods last came in', () => {
    const state = newSkuState('eu', 'BERSERK-42');
    recordEvent(state, event(1, 'reserve', 8, windowMs + 1), now, windowMs);
    recordEvent(state, event(2, 'restock', 13, 500), now, windowMs);
    expect(state.sales.size).toBe(0);
    expect(state.lastRestockAt).toBe(now - 500);
  });
});

describe('forgetOldSales and isForgettable', () => {
  it('drops the sales that left the window; a cool SKU without sales or hot entry can go', () => {
    const state = newSkuState('eu', 'BERSERK-42');
    recordEvent(state, event(1, 'reserve', 8, 30_000), now, windowMs);
    expect(isForgettable(state)).toBe(false);
    forgetOldSales(state, now + 30_000, windowMs);
    expect(state.sales.size).toBe(0);
    expect(isForgettable(state)).toBe(true);
    state.published = '{}';
    expect(isForgettable(state)).toBe(false);
  });
});
