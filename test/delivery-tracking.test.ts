import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrder } from '../sql/orders.ts';
import { findShipment } from '../sql/shipments.ts';
import { trackShipments } from '../workers/maintenance.ts';
import { ship } from '../workers/steps/ship.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

// Delivery tracking on the real servers: orderflow polls the sandbox carrier (over HTTP) for the events
// of every shipment on its way and stores them; GET /orders/{id} shows them, through its cache. The
// tests move shipments at the carrier with its control route and run the poll themselves, except the
// last, which lets the job scheduler run it.

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const BATCH = 50;
type TrackingView = {
  status: string;
  deliveredAt: string | null;
  events: Array<{ status: string; description: string; at: string }>;
};

/** A COMPLETED order and its shipment's id at the carrier. */
async function shippedOrder(sku = 'BERSERK-41') {
  const placed = await h.placeOrder(orderBody({ items: [{ sku, quantity: 1 }] }));
  expect(placed.status).toBe(201);
  const order = await h.waitForTerminal(placed.body.id);
  expect(order.status).toBe('COMPLETED');
  const shipment = await findShipment(h.deps.db, order.id);
  return { orderId: order.id, carrierShipmentId: shipment!.carrier_shipment_id };
}

async function advanceAtCarrier(carrierShipmentId: string, to: 'next' | 'delivered' = 'next') {
  const response = await fetch(`${h.sandbox.carrier.url}/_sandbox/shipments/${carrierShipmentId}/advance`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ to }),
  });
  return { status: response.status, body: (await response.json()) as TrackingView };
}

async function trackingShown(orderId: string): Promise<TrackingView> {
  const read = await h.request('GET', `/orders/${orderId}`, { key: h.customerKey });
  expect(read.status).toBe(200);
  return read.body.shipment as TrackingView;
}

const statuses = (view: { events: Array<{ status: string }> }) => view.events.map((e) => e.status);

describe('delivery tracking', () => {
  it('shows in_transit … delivered with deliveredAt once the carrier moved the shipment and the poll ran', async () => {
    const { orderId, carrierShipmentId } = await shippedOrder();
    expect(await trackingShown(orderId)).toMatchObject({ status: 'label_created', deliveredAt: null });

    await advanceAtCarrier(carrierShipmentId);
    await trackShipments(h.deps, BATCH);
    // The poll invalidated the cached tracking that the read above filled.
    expect(await trackingShown(orderId)).toMatchObject({ status: 'in_transit', deliveredAt: null });

    const atCarrier = await advanceAtCarrier(carrierShipmentId, 'delivered');
    await trackShipments(h.deps, BATCH);
    const shown = await trackingShown(orderId);

    expect(statuses(shown)).toEqual(['label_created', 'in_transit', 'out_for_delivery', 'delivered']);
    expect(shown.events).toEqual(atCarrier.body.events);
    expect(shown.status).toBe('delivered');
    expect(shown.deliveredAt).toBe(atCarrier.body.events.at(-1)!.at);
    expect((await findShipment(h.deps.db, orderId))?.delivered_at).toBe(Date.parse(shown.deliveredAt!));
  });

  it('stores and shows a failed delivery attempt, then the delivery after it', async () => {
    h.sandbox.carrier.settings.exceptionRate = 1;
    let shipped: Awaited<ReturnType<typeof shippedOrder>>;
    try {
      shipped = await shippedOrder();
    } finally {
      h.sandbox.carrier.settings.exceptionRate = 0;
    }
    await advanceAtCarrier(shipped.carrierShipmentId);
    await advanceAtCarrier(shipped.carrierShipmentId);
    await advanceAtCarrier(shipped.carrierShipmentId);
    await trackShipments(h.deps, BATCH);

    const failedAttempt = await trackingShown(shipped.orderId);
    expect(failedAttempt).toMatchObject({ status: 'exception', deliveredAt: null });
    expect(failedAttempt.events.at(-1)).toMatchObject({
      status: 'exception',
      description: expect.stringMatching(/Delivery attempt failed/),
    });

    await advanceAtCarrier(shipped.carrierShipmentId, 'delivered');
    await trackShipments(h.deps, BATCH);
    const delivered = await trackingShown(shipped.orderId);
    expect(statuses(delivered)).toEqual([
      'label_created',
      'in_transit',
      'out_for_delivery',
      'exception',
      'out_for_delivery',
      'delivered',
    ]);
    expect(delivered.deliveredAt).not.toBeNull();
  });

  it('adds nothing twice when the same events are polled again, and stops polling a delivered shipment', async () => {
    const { orderId, carrierShipmentId } = await shippedOrder();
    await advanceAtCarrier(carrierShipmentId);

    await trackShipments(h.deps, BATCH);
    const once = await findShipment(h.deps.db, orderId);
    const again = await trackShipments(h.deps, BATCH);
    const twice = await findShipment(h.deps.db, orderId);

    expect(statuses(once!)).toEqual(['label_created', 'in_transit']);
    expect(again.events).toBe(0);
    expect(twice!.events).toEqual(once!.events);
    expect(twice!.tracked_at).toBeGreaterThanOrEqual(once!.tracked_at!);

    await advanceAtCarrier(carrierShipmentId, 'delivered');
    await trackShipments(h.deps, BATCH);
    const delivered = await findShipment(h.deps.db, orderId);
    await trackShipments(h.deps, BATCH);
    const after = await findShipment(h.deps.db, orderId);

    expect(delivered!.status).toBe('delivered');
    expect(after).toEqual(delivered);
  });

  it('leaves a shipment to the next poll when the carrier is down, and picks it up then', async () => {
    const { orderId, carrierShipmentId } = await shippedOrder();
    await advanceAtCarrier(carrierShipmentId, 'delivered');

    h.sandbox.carrier.settings.failureRate = 1;
    let during: Awaited<ReturnType<typeof trackShipments>>;
    try {
      during = await trackShipments(h.deps, BATCH);
    } finally {
      h.sandbox.carrier.settings.failureRate = 0;
    }
    const missed = await findShipment(h.deps.db, orderId);
    expect(during.failed).toBe(during.polled);
    expect(missed).toMatchObject({ status: 'label_created', delivered_at: null });
    expect(missed!.tracked_at).not.toBeNull();
    expect(statuses(missed!)).toEqual(['label_created']);

    const after = await trackShipments(h.deps, BATCH);
    expect(after.failed).toBe(0);
    expect(await trackingShown(orderId)).toMatchObject({ status: 'delivered', deliveredAt: expect.any(String) });
  });

  it('does not poll a cancelled shipment', async () => {
    const { orderId, carrierShipmentId } = await shippedOrder();
    // What the compensation of the ship step does to an order's label: cancelled at the carrier and here.
    await ship.compensate!(h.deps, (await findOrder(h.deps.db, orderId))!);
    expect((await advanceAtCarrier(carrierShipmentId)).status).toBe(409);

    await trackShipments(h.deps, BATCH);

    expect(await findShipment(h.deps.db, orderId)).toMatchObject({
      status: 'cancelled',
      tracked_at: null,
      delivered_at: null,
    });
  });

  it('polls by itself on the job scheduler', async () => {
    const { orderId, carrierShipmentId } = await shippedOrder();
    await advanceAtCarrier(carrierShipmentId, 'delivered');
    const maintenance = h.deps.queues.queues.maintenance;

    await h.deps.queues.scheduleTrackingPoll(100, BATCH);
    try {
      expect(await maintenance.getJobScheduler('track-shipments')).toMatchObject({ every: 100 });
      await waitFor(
        'the scheduled poll to record the delivery',
        () => findShipment(h.deps.db, orderId),
        (shipment) => shipment?.delivered_at != null,
        { describe: (shipment) => shipment && statuses(shipment) },
      );
    } finally {
      await maintenance.removeJobScheduler('track-shipments');
    }
    expect(await trackingShown(orderId)).toMatchObject({ status: 'delivered' });
  });
});
