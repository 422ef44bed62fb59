import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getStockLevels } from '../sql/inventory.ts';
import type { Order } from '../sql/orders.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

// Sized for a shared 2-core machine: what makes this a race is that the orders are in flight together
// against a few units each (ten reserve steps at a time per queue), not how many there are.
const ORDERS = 60;
const SKUS = ['BERSERK-41', 'BERSERK-42', 'CHAINSAW-05'];
const STOCK = 8; // per SKU, against about 36 units asked for each: most orders must fail for stock

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
  for (const sku of SKUS) await h.setStock(sku, 'eu', STOCK);
});
afterAll(async () => {
  await h?.close();
});

describe(`${ORDERS} orders submitted at once against limited stock`, () => {
  it('all reach a terminal state without overselling, and every unit is accounted for', async () => {
    // Every tenth order has a card that is declined, for a SKU with stock to spare: it fails for its
    // payment whatever the race does with the stock.
    const placed = await Promise.all(
      Array.from({ length: ORDERS }, (_, i) =>
        h.placeOrder(
          i % 10 === 9
            ? orderBody({ items: [{ sku: 'ONEPIECE-105', quantity: 1 }], token: '4000000000009995' })
            : orderBody({ items: [{ sku: SKUS[i % SKUS.length]!, quantity: 1 + (Math.floor(i / 3) % 3) }] }),
        ),
      ),
    );
    expect(placed.map((p) => p.status)).toEqual(placed.map(() => 201));
    const orders: Order[] = [];
    for (const p of placed) orders.push(await h.waitForTerminal(p.body.id));
    await h.waitForQuiet();

    const completed = orders.filter((o) => o.status === 'COMPLETED');
    const failed = orders.filter((o) => o.status === 'FAILED');
    expect(completed.length + failed.length).toBe(ORDERS);
    expect(new Set(failed.map((o) => o.failure_reason))).toEqual(new Set(['out_of_stock', 'payment_declined']));

    // Units that left equal the units of completed orders, never more than there were; nothing stays
    // reserved once all is settled. Every SKU had more asked of it than it had, so each was contended.
    for (const level of await getStockLevels(h.deps.db, 'eu', SKUS)) {
      const ofSku = (list: Order[]) =>
        list
          .flatMap((o) => o.items)
          .filter((i) => i.sku === level.sku)
          .reduce((n, i) => n + i.quantity, 0);
      const sold = ofSku(completed);
      expect(ofSku(orders)).toBeGreaterThan(STOCK);
      expect(sold).toBeLessThanOrEqual(STOCK);
      expect(level).toMatchObject({ on_hand: STOCK, shipped: sold, reserved: 0, available: STOCK - sold });
      expect(level.on_hand).toBe(level.available + level.reserved + level.shipped);
    }
    expect(failed.filter((o) => o.failure_reason === 'out_of_stock').length).toBeGreaterThanOrEqual(SKUS.length);

    // Money, counted at the gateway: one capture per completed order, none left on a failed one.
    const gateway = h.sandbox.gateway.stats().byReference;
    for (const o of completed)
      expect(gateway[o.id]).toMatchObject({ captures: 1, captureKeys: 1, capturedAmount: o.total_cents });
    for (const o of failed) expect(gateway[o.id]?.captures ?? 0).toBe(0);
    // No failed order keeps a live authorization (the customer's funds held) once everything settled.
    const held = [];
    for (const o of failed) {
      const live = (await h.deps.gateway.findAuthorizations(o.id)).filter(
        (a) => a.status === 'authorized' && !a.voided,
      );
      if (live.length > 0) held.push(o.id);
    }
    expect(held).toEqual([]);
  });
});
