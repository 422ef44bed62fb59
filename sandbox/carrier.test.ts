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
  shipmentId: string;
  reference: string;
  events: Array<{ status: string; at: string; description: string }>;
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

/** A clock the test moves by hand: the carrier's pace is time, and time is the logic here. */
function manualClock(start = Date.parse('2026-12-01T09:00:00.000Z')) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

async function eventsOf(carrier: CarrierSandbox, id: string) {
  return (await json(carrier.app.request(`/v1/shipments/${id}/events`))).body;
}

function advance(carrier: CarrierSandbox, id: string, body: unknown = {}) {
  return json(
    carrier.app.request(`/_sandbox/shipments/${id}/advance`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }),
  );
}

describe('delivery progression', () => {
  it('moves a shipment one stage per deliveryStageMs, at times that follow from its creation', async () => {
    const clock = manualClock();
    const carrier = carrierWith({ deliveryStageMs: 1_000, clock: clock.now });
    const { body } = await json(post(carrier, '/v1/shipments', shipment()));

    clock.advance(999);
    expect((await eventsOf(carrier, body.id)).events.map((e) => e.status)).toEqual(['label_created']);
    clock.advance(1_001);
    const events = await eventsOf(carrier, body.id);

    expect(events.status).toBe('out_for_delivery');
    expect(events.events.map((e) => [e.status, e.at])).toEqual([
      ['label_created', '2026-12-01T09:00:00.000Z'],
      ['in_transit', '2026-12-01T09:00:01.000Z'],
      ['out_for_delivery', '2026-12-01T09:00:02.000Z'],
    ]);
    clock.advance(60_000);
    expect((await eventsOf(carrier, body.id)).events.map((e) => e.status)).toEqual([
      'label_created',
      'in_transit',
      'out_for_delivery',
      'delivered',
    ]);
  });

  it('gives the same events however often and whenever they are read', async () => {
    const clock = manualClock();
    const carrier = carrierWith({ deliveryStageMs: 1_000, clock: clock.now });
    const { body } = await json(post(carrier, '/v1/shipments', shipment()));
    clock.advance(10_000);

    const first = await eventsOf(carrier, body.id);
    clock.advance(10_000);
    const second = await eventsOf(carrier, body.id);

    expect(second).toEqual(first);
  });

  it('draws the same routes, exceptions included, from the same seed', async () => {
    const routes = async () => {
      const clock = manualClock();
      const carrier = carrierWith({ deliveryStageMs: 1_000, exceptionRate: 0.5, seed: 7, clock: clock.now });
      const ids: string[] = [];
      for (let i = 0; i < 8; i++)
        ids.push((await json(post(carrier, '/v1/shipments', shipment(`order-${i}`)))).body.id);
      clock.advance(60_000);
      return Promise.all(ids.map(async (id) => (await eventsOf(carrier, id)).events.map((e) => e.status).join(' > ')));
    };

    const first = await routes();

    expect(await routes()).toEqual(first);
    expect(first.some((route) => route.includes('exception'))).toBe(true);
    expect(first.some((route) => !route.includes('exception'))).toBe(true);
    expect(first.every((route) => route.endsWith('delivered'))).toBe(true);
  });

  it('goes on to delivery after a failed delivery attempt', async () => {
    const carrier = carrierWith({ exceptionRate: 1 });
    const { body } = await json(post(carrier, '/v1/shipments', shipment()));

    const delivered = await advance(carrier, body.id, { to: 'delivered' });

    expect(delivered.body.events.map((e) => e.status)).toEqual([
      'label_created',
      'in_transit',
      'out_for_delivery',
      'exception',
      'out_for_delivery',
      'delivered',
    ]);
    expect(delivered.body.events[3]!.description).toMatch(/Delivery attempt failed/);
  });

  it('never moves a shipment by itself at pace 0', async () => {
    const clock = manualClock();
    const carrier = carrierWith({ clock: clock.now });
    const { body } = await json(post(carrier, '/v1/shipments', shipment()));

    clock.advance(365 * 24 * 3_600_000);

    expect(await eventsOf(carrier, body.id)).toMatchObject({ status: 'label_created', events: [{}] });
  });

  it('advances a shipment one stage at a time through the control route, each event later than the last', async () => {
    const carrier = carrierWith();
    const { body } = await json(post(carrier, '/v1/shipments', shipment()));

    const first = await advance(carrier, body.id);
    const second = await advance(carrier, body.id, { to: 'next' });

    expect(first).toMatchObject({ status: 200, body: { status: 'in_transit' } });
    expect(second.body.events.map((e) => e.status)).toEqual(['label_created', 'in_transit', 'out_for_delivery']);
    const times = second.body.events.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(times).size).toBe(times.length);
  });

  it('leaves a delivered shipment delivered when advanced again', async () => {
    const carrier = carrierWith();
    const { body } = await json(post(carrier, '/v1/shipments', shipment()));
    const delivered = await advance(carrier, body.id, { to: 'delivered' });

    expect(await advance(carrier, body.id)).toEqual(delivered);
  });

  it('never moves a cancelled shipment, by itself or when advanced', async () => {
    const clock = manualClock();
    const carrier = carrierWith({ deliveryStageMs: 1_000, clock: clock.now });
    const { body } = await json(post(carrier, '/v1/shipments', shipment()));
    await post(carrier, `/v1/shipments/${body.id}/cancel`, {});

    clock.advance(60_000);
    const advanced = await advance(carrier, body.id, { to: 'delivered' });

    expect((await eventsOf(carrier, body.id)).events.map((e) => e.status)).toEqual(['label_created', 'cancelled']);
    expect(advanced).toMatchObject({ status: 409, body: { error: { code: 'shipment_cancelled' } } });
  });

  it('advances even while the carrier fails every request, and refuses an unknown target', async () => {
    const carrier = carrierWith();
    const { body } = await json(post(carrier, '/v1/shipments', shipment()));
    carrier.settings.failureRate = 1;

    expect((await advance(carrier, body.id)).status).toBe(200);
    expect(await advance(carrier, body.id, { to: 'lost' })).toMatchObject({
      status: 400,
      body: { error: { code: 'validation_failed' } },
    });
    expect((await advance(carrier, 'shp_nope')).status).toBe(404);
  });

  it('takes its pace and exception rate through the settings route', async () => {
    const carrier = carrierWith();
    const response = await carrier.app.request('/_sandbox/settings', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ deliveryStageMs: 2_000, exceptionRate: 0.1 }),
    });

    expect(response.status).toBe(200);
    expect(carrier.settings).toMatchObject({ deliveryStageMs: 2_000, exceptionRate: 0.1 });
  });
});

describe('return labels', () => {
  function returnOf(original: { shipmentId?: string; trackingNumber?: string }, reference = 'RMA-1') {
    return { ...original, reference, parcels: [{ sku: 'TEE-M', quantity: 1 }] };
  }

  it('books a return label for a shipment, found by its id or its tracking number', async () => {
    const carrier = carrierWith();
    const { body: shipped } = await json(post(carrier, '/v1/shipments', shipment()));

    const byId = await json(post(carrier, '/v1/returns', returnOf({ shipmentId: shipped.id })));
    const byNumber = await json(
      post(carrier, '/v1/returns', returnOf({ trackingNumber: shipped.trackingNumber }, 'RMA-2')),
    );

    expect(byId.status).toBe(201);
    expect(byId.body).toMatchObject({ carrier: 'sandbox-post', reference: 'RMA-1', shipmentId: shipped.id });
    expect(byId.body.id).toMatch(/^ret_/);
    expect(byId.body.trackingNumber).toMatch(/^SBX\d{12}$/);
    expect(byId.body.labelUrl).toBe(`http://localhost/v1/returns/${byId.body.id}/label`);
    expect(byNumber.body).toMatchObject({ reference: 'RMA-2', shipmentId: shipped.id });
    expect(carrier.stats().returnLabelsByReference).toEqual({ 'RMA-1': 1, 'RMA-2': 1 });
  });

  it('serves the return label as plain text, and the return by its id', async () => {
    const carrier = carrierWith();
    const { body: shipped } = await json(post(carrier, '/v1/shipments', shipment()));
    const { body: label } = await json(post(carrier, '/v1/returns', returnOf({ shipmentId: shipped.id })));

    const text = await (await carrier.app.request(`/v1/returns/${label.id}/label`)).text();
    const fetched = await json(carrier.app.request(`/v1/returns/${label.id}`));

    expect(text).toContain(label.trackingNumber);
    expect(text).toContain(shipped.trackingNumber);
    expect(text).toContain('RMA-1');
    expect(fetched).toEqual({ status: 200, body: label });
    expect((await carrier.app.request('/v1/returns/ret_nope/label')).status).toBe(404);
  });

  it('replays a repeated request instead of booking a second label, and refuses a reused key', async () => {
    const carrier = carrierWith();
    const { body: shipped } = await json(post(carrier, '/v1/shipments', shipment()));

    const first = await post(carrier, '/v1/returns', returnOf({ shipmentId: shipped.id }), 'rma-1');
    const again = await post(carrier, '/v1/returns', returnOf({ shipmentId: shipped.id }), 'rma-1');
    const reused = await json(post(carrier, '/v1/returns', returnOf({ shipmentId: shipped.id }, 'RMA-2'), 'rma-1'));

    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual(await first.json());
    expect(reused).toMatchObject({ status: 422, body: { error: { code: 'idempotency_key_reused' } } });
    expect(carrier.stats().returnLabelsByReference).toEqual({ 'RMA-1': 1 });
  });

  it('answers 503 and books nothing when the carrier is down, and needs an idempotency key', async () => {
    const carrier = carrierWith();
    const { body: shipped } = await json(post(carrier, '/v1/shipments', shipment()));
    const noKey = await json(post(carrier, '/v1/returns', returnOf({ shipmentId: shipped.id }), null));
    carrier.settings.failureRate = 1;
    const down = await json(post(carrier, '/v1/returns', returnOf({ shipmentId: shipped.id })));

    expect(noKey).toMatchObject({ status: 400, body: { error: { code: 'idempotency_key_missing' } } });
    expect(down).toMatchObject({ status: 503, body: { error: { code: 'carrier_unavailable' } } });
    expect(carrier.stats().returnLabelsByReference).toEqual({});
  });

  it('refuses an unknown or cancelled shipment with 422, and a body naming neither or both', async () => {
    const carrier = carrierWith();
    const { body: shipped } = await json(post(carrier, '/v1/shipments', shipment()));
    await post(carrier, `/v1/shipments/${shipped.id}/cancel`, {});

    const unknown = await json(post(carrier, '/v1/returns', returnOf({ shipmentId: 'shp_nope' })));
    const cancelled = await json(post(carrier, '/v1/returns', returnOf({ shipmentId: shipped.id })));
    const neither = await json(post(carrier, '/v1/returns', returnOf({})));
    const both = await json(
      post(carrier, '/v1/returns', returnOf({ shipmentId: shipped.id, trackingNumber: shipped.trackingNumber })),
    );
    const noParcels = await json(
      post(carrier, '/v1/returns', { shipmentId: shipped.id, reference: 'RMA-1', parcels: [] }),
    );

    expect(unknown).toMatchObject({ status: 422, body: { error: { code: 'shipment_unknown' } } });
    expect(cancelled).toMatchObject({ status: 422, body: { error: { code: 'shipment_cancelled' } } });
    for (const bad of [neither, both]) {
      expect(bad).toMatchObject({ status: 400, body: { error: { code: 'validation_failed' } } });
      expect(bad.body.error.details.map((d) => d.field)).toEqual(['shipmentId']);
    }
    expect(noParcels.body.error.details.map((d) => d.field)).toEqual(['parcels']);
    expect(carrier.stats().returnLabelsByReference).toEqual({});
  });
});

describe('faults and stats', () => {
  it('answers 503 before doing anything when the failure rate is 1', async () => {
    const carrier = carrierWith({ failureRate: 1 });
    const { status, body } = await json(post(carrier, '/v1/shipments', shipment(), 'key-1'));

    expect(status).toBe(503);
    expect(body.error.code).toBe('carrier_unavailable');
    expect(carrier.stats()).toEqual({ byReference: {}, returnLabelsByReference: {}, requests: 1, failuresInjected: 1 });
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
      returnLabelsByReference: {},
      requests: 2,
      failuresInjected: 0,
    });
    expect(carrier.stats()).toEqual({ byReference: {}, returnLabelsByReference: {}, requests: 0, failuresInjected: 0 });
  });

  it('answers the health check', async () => {
    expect((await carrierWith().app.request('/healthz')).status).toBe(200);
  });
});
