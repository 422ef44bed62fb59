import { describe, expect, it } from 'vitest';
import {
  coolHeat,
  type DeclaredSale,
  decideHeat,
  type Heat,
  type HeatState,
  type HeatThresholds,
  ratePerMinute,
} from './heat.ts';

// One-minute window, hot at 30 units/min (cool below 15), hot at 20 units or fewer (cool above 30).
const t: HeatThresholds = { rateWindowMs: 60_000, hotRatePerMinute: 30, hotStock: 20, coolDownMs: 60_000 };
const now = 1_000_000;

/** `units` single-unit sales spread over the last minute. */
function salesOf(units: number) {
  return Array.from({ length: units }, (_, i) => ({
    at: now - 1 - i * Math.floor(59_000 / Math.max(units, 1)),
    quantity: 1,
  }));
}
function state(overrides: Partial<Omit<HeatState, 'sales'>> & { units?: number } = {}): HeatState {
  return { sales: salesOf(overrides.units ?? 0), available: 100, lastRestockAt: null, heat: coolHeat, ...overrides };
}
function hot(reasons: Heat['reasons'], since = now - 120_000, calmSince: number | null = null): Heat {
  return { hot: true, since, reasons, calmSince };
}
const sale = (startsAt: number, endsAt: number): DeclaredSale => ({ id: 7, startsAt, endsAt, purchaseLimit: 1 });

describe('ratePerMinute', () => {
  it.each([
    ['no sales', [], 0],
    [
      'units inside the window',
      [
        { at: now - 1_000, quantity: 3 },
        { at: now - 59_000, quantity: 2 },
      ],
      5,
    ],
    [
      'nothing older than the window',
      [
        { at: now - 60_000, quantity: 9 },
        { at: now - 10, quantity: 1 },
      ],
      1,
    ],
    ['nothing from the future', [{ at: now + 1, quantity: 9 }], 0],
  ])('counts %s', (_name, sales, expected) => {
    expect(ratePerMinute(sales, now, 60_000)).toBe(expected);
  });

  it('scales a shorter window to units per minute', () => {
    expect(ratePerMinute([{ at: now - 1, quantity: 2 }], now, 5_000)).toBe(24);
  });
});

describe('decideHeat for a cool SKU', () => {
  it.each<[string, HeatState, DeclaredSale | undefined, Heat['reasons']]>([
    ['selling at the hot rate', state({ units: 30 }), undefined, ['sales_rate']],
    ['down to the hot stock level', state({ available: 20 }), undefined, ['low_stock']],
    ['sold out', state({ available: 0 }), undefined, ['low_stock']],
    ['inside a declared sale', state(), sale(now - 1, now + 1), ['declared_sale']],
    [
      'with every reason at once',
      state({ units: 40, available: 3 }),
      sale(now, now + 1),
      ['sales_rate', 'low_stock', 'declared_sale'],
    ],
  ])('turns hot when %s, with the reasons', (_name, s, declared, reasons) => {
    expect(decideHeat(s, now, t, declared)).toEqual({
      heat: { hot: true, since: now, reasons, calmSince: null },
      ratePerMinute: expect.any(Number),
      change: 'hot',
    });
  });

  it.each<[string, HeatState, DeclaredSale | undefined]>([
    ['selling just under the hot rate', state({ units: 29 }), undefined],
    ['just above the hot stock level', state({ available: 21 }), undefined],
    ['of unknown stock', state({ available: null }), undefined],
    ['before a declared sale starts', state(), sale(now + 1, now + 2)],
    ['after a declared sale ended', state(), sale(now - 2, now)],
  ])('stays cool when %s', (_name, s, declared) => {
    expect(decideHeat(s, now, t, declared)).toMatchObject({ heat: coolHeat, change: null });
  });

  it('ignores the sales rate when the hot rate is 0', () => {
    expect(decideHeat(state({ units: 1000 }), now, { ...t, hotRatePerMinute: 0 }).change).toBeNull();
  });
});

describe('decideHeat for a hot SKU (hysteresis)', () => {
  it.each<[string, HeatState, DeclaredSale | undefined, Heat['reasons']]>([
    [
      'the rate fell under the hot rate but not under half of it',
      state({ units: 15, heat: hot(['sales_rate']) }),
      undefined,
      ['sales_rate'],
    ],
    [
      'the stock rose over the hot level but not over 1.5 times it',
      state({ available: 30, heat: hot(['low_stock']) }),
      undefined,
      ['low_stock'],
    ],
    [
      'a declared sale is still on',
      state({ heat: hot(['declared_sale']) }),
      sale(now - 10, now + 10),
      ['declared_sale'],
    ],
    [
      'the rate is hot again during the cool-down',
      state({ units: 30, heat: hot(['sales_rate'], now - 9e5, now - 1) }),
      undefined,
      ['sales_rate'],
    ],
  ])('stays hot, with no cool-down running, when %s', (_name, s, declared, reasons) => {
    const decision = decideHeat(s, now, t, declared);
    expect(decision.change).toBeNull();
    expect(decision.heat).toEqual({ ...s.heat, reasons, calmSince: null });
  });

  it('starts the cool-down when every condition is cool, keeping its reasons', () => {
    const s = state({ units: 14, available: 31, heat: hot(['sales_rate', 'low_stock']) });
    expect(decideHeat(s, now, t)).toEqual({
      heat: { ...s.heat, calmSince: now },
      ratePerMinute: 14,
      change: null,
    });
  });

  it.each([
    ['stays hot just before the cool-down is over', now - t.coolDownMs + 1, null],
    ['cools once every condition was cool for the whole cool-down', now - t.coolDownMs, 'cool'],
  ])('%s', (_name, calmSince, change) => {
    const s = state({ units: 0, heat: hot(['sales_rate'], now - 600_000, calmSince) });
    expect(decideHeat(s, now, t).change).toBe(change);
  });

  it('cools with the cool state (no reasons, no since)', () => {
    const s = state({ heat: hot(['sales_rate'], now - 600_000, now - t.coolDownMs) });
    expect(decideHeat(s, now, t).heat).toEqual(coolHeat);
  });

  it('counts a restock while hot as cooling the stock, even inside the band', () => {
    const since = now - 120_000;
    const restocked = state({ available: 25, lastRestockAt: since + 1, heat: hot(['low_stock'], since) });
    const restockedBefore = state({ available: 25, lastRestockAt: since - 1, heat: hot(['low_stock'], since) });
    expect(decideHeat(restocked, now, t).heat.calmSince).toBe(now);
    expect(decideHeat(restockedBefore, now, t).heat.calmSince).toBeNull();
  });

  it('does not count a restock that left the stock at the hot level', () => {
    const s = state({ available: 20, lastRestockAt: now, heat: hot(['low_stock']) });
    expect(decideHeat(s, now, t).heat).toMatchObject({ reasons: ['low_stock'], calmSince: null });
  });
});

describe('decideHeat when a declared sale ends', () => {
  it('cools at once a SKU that only the sale held hot', () => {
    const s = state({ units: 14, heat: hot(['declared_sale']) });
    expect(decideHeat(s, now, t, sale(now - 100, now))).toMatchObject({ heat: coolHeat, change: 'cool' });
    expect(decideHeat(s, now, t, undefined)).toMatchObject({ heat: coolHeat, change: 'cool' });
  });

  it('keeps hot a SKU whose rate is hot, now for its rate', () => {
    const s = state({ units: 40, heat: hot(['sales_rate', 'declared_sale']) });
    expect(decideHeat(s, now, t, sale(now - 100, now))).toMatchObject({
      heat: { hot: true, reasons: ['sales_rate'] },
      change: null,
    });
  });

  it('keeps hot a SKU whose rate was hot during the sale and is not cool yet, then waits out the cool-down', () => {
    const s = state({ units: 20, heat: hot(['sales_rate', 'declared_sale']) });
    const after = decideHeat(s, now, t);
    expect(after).toMatchObject({ heat: { hot: true, reasons: ['sales_rate'], calmSince: null }, change: null });
    const calm = decideHeat({ ...s, sales: [], heat: after.heat }, now + 1, t);
    expect(calm).toMatchObject({ heat: { hot: true, calmSince: now + 1 }, change: null });
  });

  it('cools at once a SKU that only the sale held hot, even with its rate or stock inside their bands', () => {
    const s = state({ units: 20, available: 25, heat: hot(['declared_sale']) });
    expect(decideHeat(s, now, t)).toMatchObject({ heat: coolHeat, change: 'cool' });
  });
});

describe('decideHeat keeps the band for the conditions that made the SKU hot', () => {
  it.each<[string, HeatState]>([
    ['a SKU hot for its sales, with its stock inside the band', state({ available: 25, heat: hot(['sales_rate']) })],
    [
      'a SKU hot for its stock, with its rate inside the band',
      state({ units: 20, available: 31, heat: hot(['low_stock']) }),
    ],
  ])('starts the cool-down of %s', (_name, s) => {
    expect(decideHeat(s, now, t)).toMatchObject({ heat: { hot: true, calmSince: now }, change: null });
  });
});

describe('a burst and its aftermath, step by step', () => {
  it('turns hot once, does not flap while the rate hovers around the threshold, then cools after the cool-down', () => {
    const short: HeatThresholds = { rateWindowMs: 10_000, hotRatePerMinute: 60, hotStock: 0, coolDownMs: 5_000 };
    // Units sold per second: a burst, a late sale while the rate falls through the band, then nothing.
    const perSecond = [2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const sales: Array<{ at: number; quantity: number }> = [];
    let heat = coolHeat;
    const changes: string[] = [];
    perSecond.forEach((units, second) => {
      const at = second * 1_000;
      if (units > 0) sales.push({ at, quantity: units });
      const d = decideHeat({ sales, available: 50, lastRestockAt: null, heat }, at, short);
      heat = d.heat;
      if (d.change) changes.push(`${d.change}@${second}`);
    });
    // Hot at second 4 (10 units in the window: 60/min). Under the hot rate from second 10, but not cool
    // (under 30/min) before second 13; it cools after 5 s more of that, at second 18.
    expect(changes).toEqual(['hot@4', 'cool@18']);
  });
});
