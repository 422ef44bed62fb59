import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sql } from '../sql/database.ts';
import { getStockLevels } from '../sql/inventory.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

const ORDERS = 300;
const SKUS = ['BERSERK-41', 'BERSERK-42', 'CHAINSAW-05'];
const STOCK = 60; // per SKU: far fewer units than the orders ask for, so many must fail for stock

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ concurrency: 20 });
  for (const sku of SKUS) await h.setStock(sku, 'eu', STOCK);
});
afterAll(async () => {
  await h?.close();
});

describe(`${ORDERS} orders submitted at once against limited stock`, () => {
  it('all reach a terminal state without overselling, and every unit is accounted for', async () => {
    const started = performance.now();
    let lowestAvailable = STOCK;
    const sampler = setInterval(() => {
      getStockLevels(h.deps.db, 'eu', SKUS).then(
        (levels) => {
          for (const level of levels) lowestAvailable = Math.min(lowestAvailable, level.available);
        },
        () => {}, // a sample lost to a busy pool is only a sample
      );
    }, 20);

    const placed = await Promise.all(
      Array.from({ length: ORDERS }, (_, i) =>
        h.placeOrder(
          orderBody({
            items: [{ sku: SKUS[i % SKUS.length]!, quantity: 1 + (i % 3) }],
            token: i % 17 === 0 ? '4000000000009995' : '4242424242424242',
          }),
        ),
      ),
    );
    expect(placed.every((p) => p.status === 201)).toBe(true);
    const orders = await Promise.all(placed.map((p) => h.waitForTerminal(p.body.id, 120_000)));
    const seconds = (performance.now() - started) / 1000;
    await h.waitForQuiet();
    clearInterval(sampler);

    const completed = orders.filter((o) => o.status === 'COMPLETED');
    const failed = orders.filter((o) => o.status === 'FAILED');
    expect(completed.length + failed.length).toBe(ORDERS);
    expect(new Set(failed.map((o) => o.failure_reason))).toEqual(new Set(['out_of_stock', 'payment_declined']));
    expect(lowestAvailable).toBeGreaterThanOrEqual(0);

    // Units that left equal the units of completed orders; nothing stays reserved once all is settled.
    for (const level of await getStockLevels(h.deps.db, 'eu', SKUS)) {
      const sold = completed
        .flatMap((o) => o.items)
        .filter((i) => i.sku === level.sku)
        .reduce((n, i) => n + i.quantity, 0);
      expect(level).toMatchObject({ on_hand: STOCK, shipped: sold, reserved: 0, available: STOCK - sold });
      expect(level.on_hand).toBe(level.available + level.reserved + level.shipped);
    }

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

    const attempts = await h.deps.db.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM step_attempts WHERE outcome = 'succeeded'`);
    console.log(
      `${ORDERS} orders: ${completed.length} completed, ${failed.length} failed, in ${seconds.toFixed(1)} s ` +
        `(${(ORDERS / seconds).toFixed(0)} orders/s, ${attempts} step successes)`,
    );
  });
});
