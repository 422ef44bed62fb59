import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BusinessError, TransientError } from '../domain/errors.ts';
import { type Sandbox, startSandbox } from '../sandbox/server.ts';
import { type Carrier, type CreateShipmentInput, createCarrierClient } from './carrier.ts';

let sandbox: Sandbox;
let carrier: Carrier;

beforeAll(async () => {
  sandbox = await startSandbox({ gatewayPort: 0, carrierPort: 0, seed: 1 });
  carrier = createCarrierClient({ url: sandbox.carrier.url, timeoutMs: 1_000 });
});

afterAll(async () => {
  await sandbox.close();
});

beforeEach(() => {
  sandbox.carrier.reset();
  Object.assign(sandbox.carrier.settings, { latencyMs: 0, failureRate: 0, deliveryStageMs: 0, exceptionRate: 0 });
});

function shipment(country = 'DE'): CreateShipmentInput {
  return {
    orderId: 'order-1',
    address: { name: 'Grace Hopper', line1: 'Unter den Linden 1', city: 'Berlin', postalCode: '10117', country },
    parcels: [{ sku: 'MUG-1', quantity: 1 }],
    service: 'express',
  };
}

describe('createCarrierClient', () => {
  it('creates a shipment whose label can be fetched', async () => {
    const created = await carrier.createShipment(shipment(), 'order-1:ship');

    expect(created).toMatchObject({ carrier: 'sandbox-post', events: [{ status: 'label_created' }] });
    expect(created.trackingNumber).toMatch(/^SBX\d{12}$/);
    expect(created.labelUrl).toBe(`${sandbox.carrier.url}/v1/shipments/${created.shipmentId}/label`);
    const label = await fetch(created.labelUrl);
    expect(await label.text()).toContain(created.trackingNumber);
  });

  it('creates one shipment however often the same key is retried', async () => {
    const first = await carrier.createShipment(shipment(), 'order-1:ship');
    const again = await carrier.createShipment(shipment(), 'order-1:ship');

    expect(again.shipmentId).toBe(first.shipmentId);
    expect(sandbox.carrier.stats().byReference['order-1']).toEqual({ shipments: 1, cancellations: 0 });
  });

  it('cancels a shipment and reports the cancellation among its events', async () => {
    const { shipmentId } = await carrier.createShipment(shipment(), 'order-1:ship');

    await carrier.cancelShipment(shipmentId, 'order-1:cancel');
    await carrier.cancelShipment(shipmentId, 'order-1:cancel-again');

    const tracking = await carrier.events(shipmentId);
    expect(tracking.status).toBe('cancelled');
    expect(tracking.events.map((event) => event.status)).toEqual(['label_created', 'cancelled']);
  });

  it('reports the tracking events of a shipment moved on at the carrier', async () => {
    const { shipmentId } = await carrier.createShipment(shipment(), 'order-1:ship');
    await fetch(`${sandbox.carrier.url}/_sandbox/shipments/${shipmentId}/advance`, {
      method: 'POST',
      body: JSON.stringify({ to: 'delivered' }),
    });

    const tracking = await carrier.events(shipmentId);

    expect(tracking.status).toBe('delivered');
    expect(tracking.events.map((event) => event.status)).toEqual([
      'label_created',
      'in_transit',
      'out_for_delivery',
      'delivered',
    ]);
  });

  it('books a return label for a shipment, once per idempotency key', async () => {
    const { shipmentId, trackingNumber } = await carrier.createShipment(shipment(), 'order-1:ship');
    const input = { shipmentId, reference: 'RMA-1', parcels: [{ sku: 'MUG-1', quantity: 1 }] };

    const label = await carrier.createReturnLabel(input, 'return-RMA-1');
    const again = await carrier.createReturnLabel(input, 'return-RMA-1');
    const byTrackingNumber = await carrier.createReturnLabel(
      { trackingNumber, reference: 'RMA-2', parcels: input.parcels },
      'return-RMA-2',
    );

    expect(again).toEqual(label);
    expect(label.returnId).toMatch(/^ret_/);
    expect(label.labelUrl).toBe(`${sandbox.carrier.url}/v1/returns/${label.returnId}/label`);
    expect(await (await fetch(label.labelUrl)).text()).toContain(label.trackingNumber);
    expect(byTrackingNumber.returnId).not.toBe(label.returnId);
    expect(sandbox.carrier.stats().returnLabelsByReference).toEqual({ 'RMA-1': 1, 'RMA-2': 1 });
  });

  it('refuses a return label for an unknown shipment as provider_rejected', async () => {
    const error = await carrier
      .createReturnLabel({ shipmentId: 'shp_nope', reference: 'RMA-1', parcels: [{ sku: 'MUG-1', quantity: 1 }] }, 'k')
      .catch((e: unknown) => e);

    expect(error).toMatchObject({
      code: 'provider_rejected',
      retryable: false,
      details: { providerCode: 'shipment_unknown' },
    });
  });

  it('throws a permanent address_undeliverable business error', async () => {
    const error = await carrier.createShipment(shipment('XX'), 'order-1:ship').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(BusinessError);
    expect(error).toMatchObject({ code: 'address_undeliverable', retryable: false });
  });

  it('times out with a retryable provider_timeout', async () => {
    sandbox.carrier.settings.latencyMs = 300;
    const impatient = createCarrierClient({ url: sandbox.carrier.url, timeoutMs: 50 });

    const error = await impatient.createShipment(shipment(), 'order-1:ship').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ code: 'provider_timeout', retryable: true });
  });

  it('turns a 503 into a retryable provider_unavailable', async () => {
    sandbox.carrier.settings.failureRate = 1;

    const error = await carrier.events('shp_any').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ code: 'provider_unavailable', details: { status: 503 } });
  });
});
