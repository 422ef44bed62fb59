import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stepJobId } from '../queues/order-workflow.ts';
import { listDeadLetters } from '../sql/dead-letters.ts';
import { getStockLevels } from '../sql/inventory.ts';
import { findOrder } from '../sql/orders.ts';
import { listAttempts } from '../sql/step-attempts.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

// Retries, dead letters, compensation and cancellation on the real servers, with the retry and
// reconciler intervals shortened so that what takes minutes in production takes a second here.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    env: {
      PAYMENT_TIMEOUT_MS: '300',
      ORDER_RETRY_MAX: '2',
      ORDER_RETRY_BASE_DELAY_MS: '300',
      RECONCILE_INTERVAL_MS: '500',
      RECONCILE_STUCK_AFTER_MS: '20000',
    },
  });
});
afterAll(async () => {
  await h?.close();
});

const deadLetterOf = async (orderId: string) =>
  (await listDeadLetters(h.deps.db, { limit: 200 })).filter((d) => d.order_id === orderId);
const gatewayOf = (orderId: string) => h.sandbox.gateway.stats().byReference[orderId];

describe('a step that fails for good', () => {
  it('fails its parents in the flow instead of leaving them waiting for children', async () => {
    await h.setStock('FRIEREN-01-LTD', 'us', 0);
    const placed = await h.placeOrder(orderBody({ region: 'us', items: [{ sku: 'FRIEREN-01-LTD', quantity: 1 }] }));
    await h.waitForTerminal(placed.body.id);
    await h.waitForQuiet();
    const ref = { orderId: placed.body.id, generation: 1, round: 0 };
    for (const step of ['reserve', 'ship', 'notify'] as const) {
      const job = await Job.fromId(h.deps.queues.queues[step], stepJobId(ref, step));
      expect(await job?.getState(), step).toBe('failed');
    }
    const counts = await h.deps.queues.queues.reserve.getJobCounts('waiting-children');
    expect(counts['waiting-children']).toBe(0);
  });
});

describe('a payment whose answer is lost to a timeout', () => {
  it('is resolved by asking the gateway again with the same key, without a second authorization', async () => {
    h.sandbox.gateway.settings.latencyMs = 700;
    try {
      const placed = await h.placeOrder(orderBody({ items: [{ sku: 'ONEPIECE-105', quantity: 1 }] }));
      const id = placed.body.id;
      await waitFor(
        'an authorization attempt that timed out',
        () => listAttempts(h.deps.db, id),
        (attempts) => attempts.some((a) => a.step === 'authorize-payment' && a.error_code === 'provider_timeout'),
      );
      h.sandbox.gateway.settings.latencyMs = 0;
      expect((await h.waitForTerminal(id)).status).toBe('COMPLETED');
      expect(gatewayOf(id)).toMatchObject({ authorizations: 1, captures: 1, captureKeys: 1 });
    } finally {
      h.sandbox.gateway.settings.latencyMs = 0;
    }
  });
});

describe('an order that failed for want of stock', () => {
  it('is retried as a new generation once restocked, and completes with one capture', async () => {
    await h.setStock('BERSERK-41', 'us', 0);
    const placed = await h.placeOrder(orderBody({ region: 'us', items: [{ sku: 'BERSERK-41', quantity: 2 }] }));
    const id = placed.body.id;
    const failed = await h.waitForTerminal(id);
    expect(failed).toMatchObject({ status: 'FAILED', failure_reason: 'out_of_stock' });
    await waitFor(
      'its dead letter to schedule a retry',
      () => deadLetterOf(id),
      (d) => d[0]?.status === 'retry_scheduled',
    );
    await h.setStock('BERSERK-41', 'us', 5);

    const order = await waitFor(
      'the retried order to complete',
      () => findOrder(h.deps.db, id),
      (o) => o?.status === 'COMPLETED',
    );
    expect(order?.generation).toBe(2);
    const view = await h.request('GET', `/orders/${id}`, { key: h.customerKey });
    expect(view.body.history.map((e: { to: string }) => e.to)).toEqual(expect.arrayContaining(['FAILED', 'PENDING']));
    expect(gatewayOf(id)).toMatchObject({ captures: 1, captureKeys: 1 });
    expect((await deadLetterOf(id))[0]?.status).toBe('replayed');
    const [level] = await getStockLevels(h.deps.db, 'us', ['BERSERK-41']);
    expect(level).toMatchObject({ available: 3, shipped: 2, reserved: 0 });
  });

  it('is parked after its bounded retries, and an operator can replay it after a restock', async () => {
    await h.setStock('CHAINSAW-05', 'us', 0);
    const placed = await h.placeOrder(orderBody({ region: 'us', items: [{ sku: 'CHAINSAW-05', quantity: 1 }] }));
    const id = placed.body.id;
    const [parked] = await waitFor(
      'its dead letter to be parked',
      () => deadLetterOf(id),
      (d) => d.some((l) => l.status === 'parked'),
    );
    expect(parked?.note).toMatch(/still out_of_stock/);
    expect((await findOrder(h.deps.db, id))?.status).toBe('FAILED');

    const listed = await h.request('GET', '/admin/dead-letters?status=parked', { key: h.adminKey });
    expect(listed.body.deadLetters.map((d: { orderId: string }) => d.orderId)).toContain(id);
    expect((await h.request('GET', '/admin/dead-letters', { key: h.customerKey })).status).toBe(403);

    await h.setStock('CHAINSAW-05', 'us', 1);
    const replay = await h.request('POST', `/admin/dead-letters/${parked!.id}/replay`, { key: h.adminKey });
    expect(replay.status).toBe(202);
    expect(
      (
        await waitFor(
          'the replayed order to complete',
          () => findOrder(h.deps.db, id),
          (o) => o?.status === 'COMPLETED',
        )
      )?.generation,
    ).toBeGreaterThan(1);
    const again = await h.request('POST', `/admin/dead-letters/${parked!.id}/replay`, { key: h.adminKey });
    expect(again.status).toBe(409);
  });
});

describe('a poison job (its order does not exist)', () => {
  it('is dead-lettered at once, without using its retries, parked, and can be discarded', async () => {
    await h.deps.queues.queues.ship.add(
      'ship',
      { orderId: 'not-an-order', generation: 1, round: 0 },
      { attempts: 3, backoff: { type: 'fixed', delay: 50 }, jobId: 'poison-1' },
    );
    const [letter] = await waitFor(
      'the poison job to be dead-lettered and parked',
      () => deadLetterOf('not-an-order'),
      (d) => d[0]?.status === 'parked',
    );
    expect(letter).toMatchObject({ attempts: 1, step: 'ship', status: 'parked', error_code: 'not_found' });
    const discard = await h.request('POST', `/admin/dead-letters/${letter!.id}/discard`, { key: h.adminKey });
    expect(discard.status).toBe(200);
    expect(discard.body.status).toBe('discarded');
    expect((await h.request('POST', `/admin/dead-letters/${letter!.id}/discard`, { key: h.adminKey })).status).toBe(
      409,
    );
  });
});

describe('cancellation', () => {
  it('stops a step running at that moment, voids the authorization and reserves nothing', async () => {
    const before = (await getStockLevels(h.deps.db, 'eu', ['BERSERK-42']))[0]!;
    // Over the 300 ms timeout: the gateway authorizes, but no answer comes back in time while this
    // lasts, so the order cannot get past its payment (to the reservation and the capture) before the
    // cancellation, however slow the machine.
    h.sandbox.gateway.settings.latencyMs = 1_000;
    try {
      const placed = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-42', quantity: 1 }] }));
      const id = placed.body.id;
      await waitFor(
        'the authorization to be under way',
        () => listAttempts(h.deps.db, id),
        (attempts) => attempts.some((a) => a.step === 'authorize-payment'),
      );
      const cancelled = await h.request('POST', `/orders/${id}/cancel`, {
        key: h.customerKey,
        body: { reason: 'changed my mind' },
      });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('CANCELLED');
      h.sandbox.gateway.settings.latencyMs = 0;
      await h.waitForQuiet();

      expect((await findOrder(h.deps.db, id))?.status).toBe('CANCELLED');
      await waitFor(
        'the authorization to be voided',
        async () => gatewayOf(id),
        (g) => g?.voids === 1,
      );
      expect(gatewayOf(id)).toMatchObject({ authorizations: 1, voids: 1, captures: 0 });
      const after = (await getStockLevels(h.deps.db, 'eu', ['BERSERK-42']))[0]!;
      expect(after).toMatchObject({ available: before.available, reserved: before.reserved });
      const again = await h.request('POST', `/orders/${id}/cancel`, { key: h.customerKey });
      expect(again.body.alreadyCancelled).toBe(true);
    } finally {
      h.sandbox.gateway.settings.latencyMs = 0;
    }
  });

  it('answers 409 with the reason once the order has shipped, and 404 for another customer', async () => {
    const placed = await h.placeOrder(orderBody({ items: [{ sku: 'ONEPIECE-105', quantity: 1 }] }));
    await h.waitForTerminal(placed.body.id);
    const late = await h.request('POST', `/orders/${placed.body.id}/cancel`, { key: h.customerKey });
    expect(late.status).toBe(409);
    expect(late.body.error.details.status).toBe('COMPLETED');
    const stranger = await h.request('POST', `/orders/${placed.body.id}/cancel`, { key: h.keys.customers[1]!.apiKey });
    expect(stranger.status).toBe(404);
  });
});
