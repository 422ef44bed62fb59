import { randomBytes, randomInt } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import {
  createControlRoutes,
  createRandom,
  type FaultCounters,
  type FaultSettings,
  faultSettingsSchema,
  injectFaults,
} from './faults.ts';
import {
  errorResponse,
  handleErrorsAsJson,
  type IdempotencyStore,
  idempotencyKeys,
  notFound,
  parseBody,
} from './protocol.ts';

// A fake parcel carrier: creates shipments with a tracking number and a label, cancels them, and
// reports tracking events, with the same idempotency keys, outages and slow answers as the gateway.

export type CarrierSettings = FaultSettings;
export type CarrierOptions = Partial<CarrierSettings> & { seed?: number };

/** The country code the carrier never delivers to, to exercise the undeliverable path. */
export const undeliverableCountry = 'XX';

type ShipmentEvent = { at: string; status: 'label_created' | 'cancelled'; description: string };
type Shipment = {
  id: string;
  reference: string;
  service: 'standard' | 'express';
  trackingNumber: string;
  address: z.infer<typeof shipmentBody>['address'];
  parcels: Array<{ sku: string; quantity: number }>;
  status: 'label_created' | 'cancelled';
  events: ShipmentEvent[];
};

export type CarrierStats = {
  byReference: Record<string, { shipments: number; cancellations: number }>;
  requests: number;
  failuresInjected: number;
};

const text = z.string().trim().min(1);
const shipmentBody = z.object({
  reference: text,
  service: z.enum(['standard', 'express']).default('standard'),
  address: z.object({
    name: text,
    line1: text,
    line2: z.string().optional(),
    city: text,
    postalCode: text,
    country: z
      .string()
      .regex(/^[A-Za-z]{2}$/, 'Expected a 2-letter country code')
      .transform((s) => s.toUpperCase()),
  }),
  parcels: z.array(z.object({ sku: text, quantity: z.number().int().positive() })).min(1),
});
const settingsSchema = faultSettingsSchema.partial().strict();

function trackingNumber(): string {
  return `SBX${String(randomInt(0, 1_000_000)).padStart(6, '0')}${String(randomInt(0, 1_000_000)).padStart(6, '0')}`;
}

function shipmentView(shipment: Shipment, origin: string) {
  return {
    id: shipment.id,
    carrier: 'sandbox-post',
    reference: shipment.reference,
    service: shipment.service,
    trackingNumber: shipment.trackingNumber,
    labelUrl: `${origin}/v1/shipments/${shipment.id}/label`,
    status: shipment.status,
    events: shipment.events,
  };
}

function labelText(shipment: Shipment): string {
  const { address } = shipment;
  return [
    `SANDBOX POST - ${shipment.service.toUpperCase()}`,
    `Tracking: ${shipment.trackingNumber}`,
    `Reference: ${shipment.reference}`,
    '',
    address.name,
    address.line1,
    ...(address.line2 ? [address.line2] : []),
    `${address.postalCode} ${address.city}`,
    address.country,
    '',
    ...shipment.parcels.map((parcel) => `${parcel.quantity} x ${parcel.sku}`),
    '',
  ].join('\n');
}

export function createCarrier(options: CarrierOptions = {}) {
  const settings: CarrierSettings = { latencyMs: options.latencyMs ?? 0, failureRate: options.failureRate ?? 0 };
  const random = createRandom(options.seed);
  const counters: FaultCounters = { requests: 0, failuresInjected: 0 };
  const idempotency: IdempotencyStore = new Map();
  const shipments = new Map<string, Shipment>();

  function stats(): CarrierStats {
    const byReference: CarrierStats['byReference'] = {};
    for (const shipment of shipments.values()) {
      const entry = byReference[shipment.reference] ?? { shipments: 0, cancellations: 0 };
      byReference[shipment.reference] = entry;
      entry.shipments += 1;
      entry.cancellations += shipment.status === 'cancelled' ? 1 : 0;
    }
    return { byReference, requests: counters.requests, failuresInjected: counters.failuresInjected };
  }

  function reset(): void {
    idempotency.clear();
    shipments.clear();
    counters.requests = 0;
    counters.failuresInjected = 0;
    random.restart();
  }

  const app = new Hono();
  handleErrorsAsJson(app);
  app.route('/', createControlRoutes({ settings, settingsSchema, stats, reset }));
  app.use('/v1/*', injectFaults({ settings, random, counters, unavailableCode: 'carrier_unavailable' }));
  app.use('/v1/*', idempotencyKeys({ store: idempotency }));

  app.post('/v1/shipments', async (c) => {
    const parsed = await parseBody(c, shipmentBody);
    if (!parsed.ok) return parsed.response;
    const { reference, service, address, parcels } = parsed.data;
    if (address.country === undeliverableCountry) {
      return errorResponse(c, 422, 'address_undeliverable', `We do not deliver to country ${address.country}`);
    }
    const shipment: Shipment = {
      id: `shp_${randomBytes(12).toString('hex')}`,
      reference,
      service,
      trackingNumber: trackingNumber(),
      address,
      parcels,
      status: 'label_created',
      events: [{ at: new Date().toISOString(), status: 'label_created', description: 'Shipping label created' }],
    };
    shipments.set(shipment.id, shipment);
    return c.json(shipmentView(shipment, new URL(c.req.url).origin), 201);
  });

  app.get('/v1/shipments/:id', (c) => {
    const shipment = shipments.get(c.req.param('id'));
    if (!shipment) return notFound(c, 'shipment', c.req.param('id'));
    return c.json(shipmentView(shipment, new URL(c.req.url).origin));
  });

  app.get('/v1/shipments/:id/events', (c) => {
    const shipment = shipments.get(c.req.param('id'));
    if (!shipment) return notFound(c, 'shipment', c.req.param('id'));
    return c.json({ id: shipment.id, status: shipment.status, events: shipment.events });
  });

  app.get('/v1/shipments/:id/label', (c) => {
    const shipment = shipments.get(c.req.param('id'));
    if (!shipment) return notFound(c, 'shipment', c.req.param('id'));
    return c.text(labelText(shipment));
  });

  app.post('/v1/shipments/:id/cancel', (c) => {
    const shipment = shipments.get(c.req.param('id'));
    if (!shipment) return notFound(c, 'shipment', c.req.param('id'));
    if (shipment.status !== 'cancelled') {
      shipment.status = 'cancelled';
      shipment.events.push({ at: new Date().toISOString(), status: 'cancelled', description: 'Shipment cancelled' });
    }
    return c.json({ id: shipment.id, status: 'cancelled' }, 200);
  });

  return { app, settings, seed: random.seed, stats, reset };
}

export type CarrierSandbox = ReturnType<typeof createCarrier>;
