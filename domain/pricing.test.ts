import { describe, expect, it } from 'vitest';
import { type CatalogEntry, type PricedOrder, priceOrder } from './pricing.ts';

const catalog: CatalogEntry[] = [
  { sku: 'MUG', name: 'Mug', price_cents: 1250, currency: 'EUR', final_sale: false },
  { sku: 'TEE', name: 'T-shirt', price_cents: 1999, currency: 'EUR', final_sale: true },
  { sku: 'CAP', name: 'Cap', price_cents: 0, currency: 'EUR', final_sale: false },
  { sku: 'HAT', name: 'Hat', price_cents: 3000, currency: 'USD', final_sale: false },
];

describe('priceOrder', () => {
  it.each([
    [
      'prices a single line from the catalog',
      [{ sku: 'MUG', quantity: 1 }],
      {
        ok: true,
        lines: [{ sku: 'MUG', name: 'Mug', quantity: 1, unit_price_cents: 1250, final_sale: false }],
        totalCents: 1250,
        currency: 'EUR',
      },
    ],
    [
      'multiplies the unit price by the quantity',
      [{ sku: 'TEE', quantity: 3 }],
      {
        ok: true,
        lines: [{ sku: 'TEE', name: 'T-shirt', quantity: 3, unit_price_cents: 1999, final_sale: true }],
        totalCents: 5997,
        currency: 'EUR',
      },
    ],
    [
      'sums every line in cents, keeping the order of the request',
      [
        { sku: 'TEE', quantity: 2 },
        { sku: 'CAP', quantity: 5 },
        { sku: 'MUG', quantity: 1 },
      ],
      {
        ok: true,
        lines: [
          { sku: 'TEE', name: 'T-shirt', quantity: 2, unit_price_cents: 1999, final_sale: true },
          { sku: 'CAP', name: 'Cap', quantity: 5, unit_price_cents: 0, final_sale: false },
          { sku: 'MUG', name: 'Mug', quantity: 1, unit_price_cents: 1250, final_sale: false },
        ],
        totalCents: 2 * 1999 + 1250,
        currency: 'EUR',
      },
    ],
    [
      'names an unknown SKU with its index',
      [
        { sku: 'MUG', quantity: 1 },
        { sku: 'NOPE', quantity: 1 },
      ],
      { ok: false, problems: [{ field: 'items[1].sku', message: 'unknown SKU "NOPE"' }] },
    ],
    [
      'lists every unknown SKU',
      [
        { sku: 'X', quantity: 1 },
        { sku: 'MUG', quantity: 1 },
        { sku: 'Y', quantity: 2 },
      ],
      {
        ok: false,
        problems: [
          { field: 'items[0].sku', message: 'unknown SKU "X"' },
          { field: 'items[2].sku', message: 'unknown SKU "Y"' },
        ],
      },
    ],
    [
      'rejects items priced in different currencies',
      [
        { sku: 'MUG', quantity: 1 },
        { sku: 'HAT', quantity: 1 },
      ],
      { ok: false, problems: [{ field: 'items', message: 'items are priced in different currencies' }] },
    ],
    [
      'reports an unknown SKU and mixed currencies together',
      [
        { sku: 'HAT', quantity: 1 },
        { sku: 'NOPE', quantity: 1 },
        { sku: 'MUG', quantity: 1 },
      ],
      {
        ok: false,
        problems: [
          { field: 'items[1].sku', message: 'unknown SKU "NOPE"' },
          { field: 'items', message: 'items are priced in different currencies' },
        ],
      },
    ],
    [
      'takes the currency of a catalog that is all in another currency',
      [{ sku: 'HAT', quantity: 2 }],
      {
        ok: true,
        lines: [{ sku: 'HAT', name: 'Hat', quantity: 2, unit_price_cents: 3000, final_sale: false }],
        totalCents: 6000,
        currency: 'USD',
      },
    ],
  ] as Array<[string, Array<{ sku: string; quantity: number }>, PricedOrder]>)('%s', (_name, items, expected) => {
    expect(priceOrder(items, catalog)).toEqual(expected);
  });

  it('ignores a price the client might have attached to an item', () => {
    const items = [{ sku: 'MUG', quantity: 2, price: 1 }];
    expect(priceOrder(items, catalog)).toMatchObject({ ok: true, totalCents: 2500 });
  });
});
