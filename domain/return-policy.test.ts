import { describe, expect, it } from 'vitest';
import { quoteReturn, type ReturnableOrder, type ReturnCaller } from './return-policy.ts';

const DAY = 24 * 60 * 60 * 1000;
const deliveredAt = Date.parse('2026-11-01T12:00:00Z');
const policy = { windowDays: 30 };
const owner: ReturnCaller = { role: 'customer', customerId: 'alice' };

function order(overrides: Partial<ReturnableOrder> = {}): ReturnableOrder {
  return {
    customerId: 'alice',
    status: 'COMPLETED',
    deliveredAt,
    items: [
      { id: 'BERSERK-41', sku: 'BERSERK-41', name: 'Berserk 41', quantity: 2, unitPriceCents: 1299, finalSale: false },
      {
        id: 'FRIEREN-01-LTD',
        sku: 'FRIEREN-01-LTD',
        name: 'Frieren LTD',
        quantity: 1,
        unitPriceCents: 4999,
        finalSale: true,
      },
      {
        id: 'CHAINSAW-05',
        sku: 'CHAINSAW-05',
        name: 'Chainsaw Man 5',
        quantity: 3,
        unitPriceCents: 999,
        finalSale: false,
      },
    ],
    returnedItemIds: new Set(),
    refundableCents: 2 * 1299 + 4999 + 3 * 999,
    ...overrides,
  };
}
const line = (orderItemId: string, quantity = 1) => ({ orderItemId, quantity });

describe('quoteReturn: the whole order', () => {
  it.each([
    {
      why: "another customer's order",
      o: order(),
      caller: { role: 'customer', customerId: 'bob' },
      at: deliveredAt + DAY,
      reason: 'not_owner',
    },
    {
      why: 'a cancelled order',
      o: order({ status: 'CANCELLED', deliveredAt: null }),
      caller: owner,
      at: deliveredAt,
      reason: 'order_not_returnable',
    },
    {
      why: 'a failed order',
      o: order({ status: 'FAILED', deliveredAt: null }),
      caller: owner,
      at: deliveredAt,
      reason: 'order_not_returnable',
    },
    {
      why: 'an order still in the pipeline',
      o: order({ status: 'FULFILLMENT', deliveredAt: null }),
      caller: owner,
      at: deliveredAt,
      reason: 'order_not_returnable',
    },
    {
      why: 'shipped, not delivered',
      o: order({ deliveredAt: null }),
      caller: owner,
      at: deliveredAt,
      reason: 'not_delivered',
    },
    {
      why: 'one millisecond past the window',
      o: order(),
      caller: owner,
      at: deliveredAt + 30 * DAY + 1,
      reason: 'window_closed',
    },
  ] as const)('refuses $why with $reason for every item', ({ o, caller, at, reason }) => {
    const quote = quoteReturn(o, [line('BERSERK-41'), line('CHAINSAW-05')], caller, policy, at);
    expect(quote.eligible).toBe(false);
    expect(quote.refusal?.reason).toBe(reason);
    expect(quote.refundCents).toBe(0);
    expect(quote.items.map((i) => !i.eligible && i.reason)).toEqual([reason, reason]);
  });

  it('accepts on the last millisecond of the window, and an admin for any customer', () => {
    const lastMoment = deliveredAt + 30 * DAY;
    expect(quoteReturn(order(), [line('BERSERK-41')], owner, policy, lastMoment)).toMatchObject({
      eligible: true,
      refusal: null,
      windowEndsAt: lastMoment,
    });
    expect(quoteReturn(order(), [line('BERSERK-41')], { role: 'admin' }, policy, deliveredAt).eligible).toBe(true);
  });

  it('takes its window from the policy', () => {
    const at = deliveredAt + 8 * DAY;
    expect(quoteReturn(order(), [line('BERSERK-41')], owner, { windowDays: 7 }, at).refusal?.reason).toBe(
      'window_closed',
    );
    expect(quoteReturn(order(), [line('BERSERK-41')], owner, { windowDays: 14 }, at).eligible).toBe(true);
  });
});

describe('quoteReturn: each item', () => {
  const at = deliveredAt + DAY;
  it.each([
    { why: 'a final-sale item', item: line('FRIEREN-01-LTD'), o: order(), reason: 'final_sale' },
    {
      why: 'an item with a return',
      item: line('BERSERK-41'),
      o: order({ returnedItemIds: new Set(['BERSERK-41']) }),
      reason: 'already_returned',
    },
    { why: 'more units than bought', item: line('BERSERK-41', 3), o: order(), reason: 'quantity_exceeds_bought' },
    { why: 'an item of another order', item: line('ONEPIECE-105'), o: order(), reason: 'unknown_item' },
  ] as const)('refuses $why ($reason), names it, and issues no token', ({ item, o, reason }) => {
    const quote = quoteReturn(o, [line('CHAINSAW-05'), item], owner, policy, at);
    expect(quote.eligible).toBe(false);
    expect(quote.refusal).toBeNull();
    expect(quote.items[0]).toMatchObject({ orderItemId: 'CHAINSAW-05', eligible: true, refundCents: 999 });
    expect(quote.items[1]).toMatchObject({ orderItemId: item.orderItemId, eligible: false, reason });
    // The eligible items' refund is still shown, so the customer can ask again without the refused one.
    expect(quote.refundCents).toBe(999);
  });

  it('refuses the same item asked twice in one request', () => {
    const quote = quoteReturn(order(), [line('BERSERK-41'), line('BERSERK-41')], owner, policy, at);
    expect(quote.eligible).toBe(false);
    expect(quote.items[1]).toMatchObject({ eligible: false, reason: 'duplicate_item' });
  });

  it('refunds what was paid per unit for the units returned', () => {
    const quote = quoteReturn(order(), [line('BERSERK-41', 2), line('CHAINSAW-05', 1)], owner, policy, at);
    expect(quote).toMatchObject({ eligible: true, refundCents: 2 * 1299 + 999 });
  });

  it('never quotes more than is left to refund', () => {
    const quote = quoteReturn(order({ refundableCents: 500 }), [line('BERSERK-41', 2)], owner, policy, at);
    expect(quote).toMatchObject({ eligible: true, refundCents: 500 });
  });

  it('issues nothing for an empty request', () => {
    expect(quoteReturn(order(), [], owner, policy, at).eligible).toBe(false);
  });
});
