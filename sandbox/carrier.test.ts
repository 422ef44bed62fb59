import { describe, expect, it } from 'vitest';
import { type CarrierOptions, createCarrier } from './carrier.ts';
import { startSandbox } from './server.ts';

type CarrierSandbox = ReturnType<typeof createCarrier>;

function post(carrier: CarrierSandbox, path: string, body: unknown, key: string | null = crypto.randomUUID()) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key) headers['idempotency-key'] = key;
  return carrier.app.request(path, { method: 'POST', headers, body: JSON.stringify(body) });
}

// The fields these tests read from the carrier's answers; each answer has only some of them.
type Answer = {
  id: string;
  status: string;
  trackingNumber: string;
  labelUrl: string;
  events: Array<{ status: string }>;
  error: { code: string; details: Array<{ field: string }> };
};

async function json(response: Response | Promise<Response>) {
  const res = await response;
  return { status: res.status, body: (await res.json()) as Answer };
}

function shipment(reference = 'order-1', country = 'NL') {
  return {
    reference,
    address: { name: 'Ada Lovelace', line1: 'Keizersgracht 1', city: 'Amsterdam', postalCode: '1015 CJ', country },
    parcels: [{ sku: 'TEE-M', quantity: 2 }],
  };
}

function carrierWith(options: CarrierOptions = {}): CarrierSandbox {
  return createCarrier({ seed: 1, ...options });
}

describe('shipments', () => {
  it('creates a shipment with a tracking number, a label and a first event', async () => {
    const carrier = carrierWith();
    const { status, body } = await json(post(carrier, '/v1/shipments', shipment()));

    expect(status).toBe(201);
    expect(body).toMatchObject({ carrier: 'sandbox-post', service: 'standard', status: 'label_created' });
    expect(body.id).toMatch(/^shp_/);
    expect(body.trackingNumber).toMatch(/^SBX\d{12}$/);
    expect(body.labelUrl).toBe(`http://localhost/v1/shipments/${body.id}/label`);
    expect(body.events).toMatchObject([{ status: 'label_created' }]);
  });

  it('replays a repeated request instead of creating a second shipment', async () => {
    const carrier = carrierWith();
    const first = await post(carrier, '/v1/shipments', shipment(), 'key-1');
    const second = await post(carrier, '/v1/shipments', shipment(), 'key-1');

    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await second.json()).toEqual(await first.json());
    expect(carrier.stats().byReference['order-1']).toEqual({ shipments: 1, cancellations: 0 });
  });

  it('rejects a key reused with another body', async () => {
    const carrier = carrierWith();
    await post(carrier, '/v1/shipments', shipment('order-1'), 'key-1');
    const { status, body } = await json(post(carrier, '/v1/shipments', shipment('order-2'), 'key-1'));

    expect(status).toBe(422);
    expect(body.error.code).toBe('idempotency_key_reused');
  });

  it('refuses an undeliverable country with 422', async () => {
    const carrier = carrierWith();
    const { status, body } = await json(post(carrier, '/v1/shipments', shipment('order-1', 'XX')));

    expect(status).toBe(422);
    expect(body.error.code).toBe('address_undeliverable');
    expect(carrier.stats().byReference).toEqual({});
  });

  it('rejects a malformed body listing every bad field', async () => {
    const carrier = carrierWith();
    const { status, body } = await json(
      post(carrier, '/v1/shipments', { reference: 'order-1', service: 'overnight', address: {}, parcels: [] }),
    );

    expect(status).toBe(400);
    expect(body.error.details.map((d) => d.field)).toEqual([
      'service',
      'address.name',
      'address.line1',
      'address.city',
      'address.postalCode',
      'address.country',
      'parcels',
    ]);
  });

  it('cancels idempotently and records the cancellation as an event', async () => {
    const carrier = carrierWith();
    const created = await json(post(carrier, '/v1/shipments', shipment()));
    const id = created.body.id;

    const first = await json(post(carrier, `/v1/shipments/${id}/cancel`, {}));
    const second = await json(post(carrier, `/v1/shipments/${id}/cancel`, {}));
    const events = await json(carrier.app.request(`/v1/shipments/${id}/events`));
    const current = await json(carrier.app.request(`/v1/shipments/${id}`));

    expect(first).toEqual({ status: 200, body: { id, status: 'cancelled' } });
    expect(second).toEqual(first);
    expect(events.body.events.map((e) => e.status)).toEqual(['label_created', 'cancelled']);
    expect(current.body.status).toBe('cancelled');
    expect(carrier.stats().byReference['order-1']).toEqual({ shipments: 1, cancellations: 1 });
  });

  it('serves a plain-text label with the tracking number and address', async () => {
    const carrier = carrierWith();
    const { body } = await json(post(carrier, '/v1/shipments', shipment()));
    const label = await carrier.app.request(`/v1/shipments/${body.id}/label`);

    expect(label.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await label.text();
    expect(text).toContain(body.trackingNumber);
    expect(text).toContain('1015 CJ Amsterdam');
  });

  it('answers 404 for an unknown shipment', async () => {
    const carrier = carrierWith();

    expect((await carrier.app.request('/v1/shipments/shp_nope/events')).status).toBe(404);
    expect((await post(carrier, '/v1/shipments/shp_nope/cancel', {})).status).toBe(404);
  });
});

describe('faults and stats', () => {
  it('answers 503 before doing anything when the failure rate is 1', async () => {
    const carrier = carrierWith({ failureRate: 1 });
    const { status, body } = await json(post(carrier, '/v1/shipments', shipment(), 'key-1'));

    expect(status).toBe(503);
    expect(body.error.code).toBe('carrier_unavailable');
    expect(carrier.stats()).toEqual({ byReference: {}, requests: 1, failuresInjected: 1 });
  });

  it('resets the connection after creating the shipment when the reset rate is 1', async () => {
    const sandbox = await startSandbox({ gatewayPort: 0, carrierPort: 0, seed: 1 });
    try {
      sandbox.carrier.settings.resetRate = 1;
      const send = () =>
        fetch(`${sandbox.carrier.url}/v1/shipments`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'key-1' },
          body: JSON.stringify(shipment()),
        });

      const reset = await send().then(
        () => undefined,
        (error: Error) => error,
      );
      expect(reset?.cause).toMatchObject({ code: 'ECONNRESET' });

      sandbox.carrier.settings.resetRate = 0;
      const retried = await send();
      expect(retried.status).toBe(201);
      expect(retried.headers.get('idempotent-replayed')).toBe('true');
      expect(sandbox.carrier.stats()).toMatchObject({
        byReference: { 'order-1': { shipments: 1 } },
        failuresInjected: 1,
      });
    } finally {
      await sandbox.close();
    }
  });

  it('reports stats and forgets them on reset', async () => {
    const carrier = carrierWith();
    await post(carrier, '/v1/shipments', shipment('order-1'));
    await post(carrier, '/v1/shipments', shipment('order-2'));

    const stats = await json(carrier.app.request('/_sandbox/stats'));
    await carrier.app.request('/_sandbox/reset', { method: 'POST' });

    expect(stats.body).toEqual({
      byReference: { 'order-1': { shipments: 1, cancellations: 0 }, 'order-2': { shipments: 1, cancellations: 0 } },
      requests: 2,
      failuresInjected: 0,
    });
    expect(carrier.stats()).toEqual({ byReference: {}, requests: 0, failuresInjected: 0 });
  });

  it('answers the health check', async () => {
    expect((await carrierWith().app.request('/healthz')).status).toBe(200);
  });
});
