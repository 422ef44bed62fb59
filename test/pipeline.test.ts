import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findIllegalTransition } from '../domain/order-status.ts';
import { getStockLevels } from '../sql/inventory.ts';
import { listHistory } from '../sql/orders.ts';
import { listPayments } from '../sql/payments.ts';
import { listAttempts } from '../sql/step-attempts.ts';
import { findStepOutputs } from '../sql/step-runtime.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

async function available(sku: string, region = 'eu') {
  return (await getStockLevels(h.deps.db, region, [sku]))[0]!.available;
}

describe('an order with a good card and stock', () => {
  it('goes from PENDING to COMPLETED with its history in order, one capture, a tracking number and a notification', async () => {
    const before = await available('BERSERK-41');
    const placed = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-41', quantity: 2 }] }));
    expect(placed.status).toBe(201);
    expect(placed.headers.get('location')).toBe(`/orders/${placed.body.id}`);
    expect(placed.body).toMatchObject({ status: 'PENDING', totalCents: 2 * 1499, currency: 'EUR' });

    const order = await h.waitForTerminal(placed.body.id);
    expect(order.status).toBe('COMPLETED');

    const view = await h.request('GET', `/orders/${order.id}`, { key: h.customerKey });
    const statuses = view.body.history.map((e: { to: string }) => e.to);
    expect(statuses[0]).toBe('PENDING');
    expect(statuses.slice(-3)).toEqual(['RESERVED', 'FULFILLMENT', 'COMPLETED']);
    expect(statuses).toEqual(expect.arrayContaining(['VALIDATING', 'INVENTORY_CHECK', 'PAYMENT_PROCESSING']));
    expect(
      findIllegalTransition(
        await listHistory(h.deps.db, order.id).then((rows) =>
          rows.map((r) => ({ from: r.from_status, to: r.to_status })),
        ),
      ),
    ).toBeUndefined();

    expect(view.body.timeline.map((t: { step: string; outcome: string }) => `${t.step}:${t.outcome}`).sort()).toEqual(
      ['authorize-payment', 'capture', 'check-inventory', 'notify', 'reserve', 'ship', 'validate'].map(
        (s) => `${s}:succeeded`,
      ),
    );
    expect(view.body.payment.state).toBe('captured');
    expect(view.body.shipment.trackingNumber).toMatch(/^SBX\d{12}$/);
    expect(view.body.notifications).toHaveLength(1);
    expect(view.body.notifications[0].recipient).toBe('ada@example.com');

    const atGateway = h.sandbox.gateway.stats().byReference[order.id]!;
    expect(atGateway).toMatchObject({ authorizations: 1, captures: 1, captureKeys: 1, capturedAmount: 2998 });
    expect(await available('BERSERK-41')).toBe(before - 2);
  });
});

describe('when the card is declined', () => {
  it('fails the order with payment_declined and reserves nothing', async () => {
    const before = await available('ONEPIECE-105');
    const placed = await h.placeOrder(
      orderBody({ items: [{ sku: 'ONEPIECE-105', quantity: 1 }], token: '4000000000000002' }),
    );
    const order = await h.waitForTerminal(placed.body.id);

    expect(order).toMatchObject({
      status: 'FAILED',
      failure_reason: 'payment_declined',
      failed_step: 'authorize-payment',
    });
    expect(await available('ONEPIECE-105')).toBe(before);
    const view = await h.request('GET', `/orders/${order.id}`, { key: h.customerKey });
    expect(view.body.payment.state).toBe('declined');
    expect(view.body.shipment).toBeNull();
    expect(h.sandbox.gateway.stats().byReference[order.id]).toMatchObject({ captures: 0, captureKeys: 0 });
  });
});

describe('when the stock runs out after the payment was authorized', () => {
  it('fails the order with out_of_stock at reserve and voids the authorization without capturing', async () => {
    await h.setStock('CHAINSAW-05', 'eu', 1);
    // The gateway is unavailable (503, before it authorizes anything) until the last unit has gone, so
    // the authorization comes after the inventory check and before the reservation, however slow the
    // machine: the order cannot reach the reservation without it.
    h.sandbox.gateway.settings.failureRate = 1;
    try {
      const placed = await h.placeOrder(orderBody({ items: [{ sku: 'CHAINSAW-05', quantity: 1 }] }));
      const id = placed.body.id;
      await waitFor(
        'the inventory check to pass and an authorization attempt to fail',
        async () => ({
          checked:
            'check-inventory' in
            (await findStepOutputs(h.deps.db, { orderId: id, generation: 1 }, ['check-inventory'])),
          authorizing: (await listAttempts(h.deps.db, id)).some(
            (a) => a.step === 'authorize-payment' && a.outcome === 'failed',
          ),
        }),
        (s) => s.checked && s.authorizing,
      );
      await h.setStock('CHAINSAW-05', 'eu', 0);
      h.sandbox.gateway.settings.failureRate = 0;

      const order = await h.waitForTerminal(id);
      expect(order).toMatchObject({ status: 'FAILED', failure_reason: 'out_of_stock', failed_step: 'reserve' });
      await waitFor(
        'the authorization to be voided',
        () => listPayments(h.deps.db, id),
        (payments) => payments.some((p) => p.kind === 'void'),
      );
      expect(h.sandbox.gateway.stats().byReference[id]).toMatchObject({ authorizations: 1, voids: 1, captures: 0 });
      expect(await available('CHAINSAW-05')).toBe(0);
    } finally {
      h.sandbox.gateway.settings.failureRate = 0;
    }
  });

  it('voids an authorization that completes after the parallel inventory check already failed the order', async () => {
    await h.setStock('BERSERK-42', 'us', 0);
    h.sandbox.gateway.settings.latencyMs = 500;
    try {
      const placed = await h.placeOrder(orderBody({ region: 'us', items: [{ sku: 'BERSERK-42', quantity: 1 }] }));
      const order = await h.waitForTerminal(placed.body.id);
      expect(order).toMatchObject({ status: 'FAILED', failure_reason: 'out_of_stock', failed_step: 'check-inventory' });
      await waitFor(
        'the late authorization to be voided',
        () => listPayments(h.deps.db, order.id),
        (payments) => payments.some((p) => p.kind === 'void'),
      );
      expect(h.sandbox.gateway.stats().byReference[order.id]).toMatchObject({
        authorizations: 1,
        voids: 1,
        captures: 0,
      });
    } finally {
      h.sandbox.gateway.settings.latencyMs = 0;
    }
  });
});
