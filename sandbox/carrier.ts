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
  type Random,
  rate,
} from './faults.ts';
import {
  errorResponse,
  handleErrorsAsJson,
  type IdempotencyStore,
  idempotencyKeys,
  notFound,
  parseBody,
} from './protocol.ts';

// A fake parcel carrier: creates shipments with a tracking number and a label, moves them on to
// delivery, cancels them, reports their tracking events, and books return labels, with the same
// idempotency keys, outages and slow answers as the gateway.

export type CarrierSettings = FaultSettings & {
  /** Time from one tracking stage to the next when nobody advances the shipment; 0 = never by itself. */
  deliveryStageMs: number;
  /** Chance that a new shipment's route has a failed delivery attempt (an `exception`) before delivery. */
  exceptionRate: number;
};
export type CarrierOptions = Partial<CarrierSettings> & { seed?: number; clock?: () => number };

/** The country code the carrier never delivers to, to exercise the undeliverable path. */
export const undeliverableCountry = 'XX';

const stages = ['in_transit', 'out_for_delivery', 'exception', 'delivered'] as const;
type Stage = (typeof stages)[number];
export type TrackingStatus = 'label_created' | Stage | 'cancelled';
type ShipmentEvent = { at: string; status: TrackingStatus; description: string };
type Parcels = Array<{ sku: string; quantity: number }>;
type Shipment = {
  id: string;
  reference: string;
  service: 'standard' | 'express';
  trackingNumber: string;
  address: z.infer<typeof shipmentBody>['address'];
  parcels: Parcels;
  status: TrackingStatus;
  /** The stages from label to delivery, drawn when the shipment is created; `reached` of them are done. */
  route: Stage[];
  reached: number;
  events: ShipmentEvent[];
};
type ReturnLabel = { id: string; reference: string; shipment: Shipment; trackingNumber: string; parcels: Parcels };

export type CarrierStats = {
  byReference: Record<string, { shipments: number; cancellations: number }>;
  /** Return labels booked per reference (an RMA): the returns saga books one per return. */
  returnLabelsByReference: Record<string, number>;
  requests: number;
  failuresInjected: number;
};

const descriptions: Record<Stage, string> = {
  in_transit: 'Parcel in transit to the destination depot',
  out_for_delivery: 'Out for delivery',
  exception: 'Delivery attempt failed: nobody was home, we will try again',
  delivered: 'Delivered',
};

const text = z.string().trim().min(1);
const parcels = z.array(z.object({ sku: text, quantity: z.number().int().positive() })).min(1);
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
  parcels,
});
const returnBody = z
  .object({ shipmentId: text.optional(), trackingNumber: text.optional(), reference: text, parcels })
  .refine((body) => (body.shipmentId === undefined) !== (body.trackingNumber === undefined), {
    message: 'Give either shipmentId or trackingNumber (of the original shipment)',
    path: ['shipmentId'],
  });
const advanceBody = z.object({ to: z.enum(['next', 'delivered']).default('next') }).strict();
const settingsSchema = faultSettingsSchema
  .extend({ deliveryStageMs: z.number().int().min(0), exceptionRate: rate })
  .partial()
  .strict();

function trackingNumber(): string {
  return `SBX${String(randomInt(0, 1_000_000)).padStart(6, '0')}${String(randomInt(0, 1_000_000)).padStart(6, '0')}`;
}

/** A failed delivery attempt is followed by another round out for delivery, as with a real carrier. */
function drawRoute(random: Random, exceptionRate: number): Stage[] {
  return random.chance(exceptionRate)
    ? ['in_transit', 'out_for_delivery', 'exception', 'out_for_delivery', 'delivered']
    : ['in_transit', 'out_for_delivery', 'delivered'];
}

function reachNextStage(shipment: Shipment, atMs: number): void {
  const status = shipment.route[shipment.reached]!;
  shipment.reached += 1;
  shipment.status = status;
  shipment.events.push({ at: new Date(atMs).toISOString(), status, description: descriptions[status] });
}

const lastEventMs = (shipment: Shipment) => Date.parse(shipment.events.at(-1)!.at);
const onTheWay = (shipment: Shipment) => shipment.status !== 'cancelled' && shipment.reached < shipment.route.length;

/**
 * The stages a shipment reached by itself up to `now`: each one `stageMs` after the event before it.
 * They are recorded when first seen, so reading twice gives the same events, and the times follow from
 * the creation time (and any manual advance) alone.
 */
function catchUp(shipment: Shipment, stageMs: number, now: number): Shipment {
  if (stageMs <= 0) return shipment;
  while (onTheWay(shipment) && lastEventMs(shipment) + stageMs <= now) {
    reachNextStage(shipment, lastEventMs(shipment) + stageMs);
  }
  return shipment;
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

function returnView(label: ReturnLabel, origin: string) {
  return {
    id: label.id,
    carrier: 'sandbox-post',
    reference: label.reference,
    shipmentId: label.shipment.id,
    trackingNumber: label.trackingNumber,
    labelUrl: `${origin}/v1/returns/${label.id}/label`,
    parcels: label.parcels,
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

function returnLabelText(label: ReturnLabel): string {
  const { address } = label.shipment;
  return [
    'SANDBOX POST - RETURN (prepaid)',
    `Tracking: ${label.trackingNumber}`,
    `Reference: ${label.reference}`,
    `Original shipment: ${label.shipment.trackingNumber}`,
    '',
    `From: ${address.name}, ${address.postalCode} ${address.city}, ${address.country}`,
    `To: the sender of ${label.shipment.trackingNumber}`,
    '',
    ...label.parcels.map((parcel) => `${parcel.quantity} x ${parcel.sku}`),
    '',
  ].join('\n');
}

export function createCarrier(options: CarrierOptions = {}) {
  const settings: CarrierSettings = {
    latencyMs: options.latencyMs ?? 0,
    failureRate: options.failureRate ?? 0,
    deliveryStageMs: options.deliveryStageMs ?? 0,
    exceptionRate: options.exceptionRate ?? 0,
  };
  const now = options.clock ?? Date.now;
  const random = createRandom(options.seed);
  const counters: FaultCounters = { requests: 0, failuresInjected: 0 };
  const idempotency: IdempotencyStore = new Map();
  const shipments = new Map<string, Shipment>();
  const returns = new Map<string, ReturnLabel>();

  /** A shipment as it stands now, with the stages it reached by itself since it was last looked at. */
  function current(id: string): Shipment | undefined {
    const shipment = shipments.get(id);
    return shipment && catchUp(shipment, settings.deliveryStageMs, now());
  }

  function stats(): CarrierStats {
    const byReference: CarrierStats['byReference'] = {};
    for (const shipment of shipments.values()) {
      const entry = byReference[shipment.reference] ?? { shipments: 0, cancellations: 0 };
      byReference[shipment.reference] = entry;
      entry.shipments += 1;
      entry.cancellations += shipment.status === 'cancelled' ? 1 : 0;
    }
    const returnLabelsByReference: CarrierStats['returnLabelsByReference'] = {};
    for (const label of returns.values()) {
      returnLabelsByReference[label.reference] = (returnLabelsByReference[label.reference] ?? 0) + 1;
    }
    return {
      byReference,
      returnLabelsByReference,
      requests: counters.requests,
      failuresInjected: counters.failuresInjected,
    };
  }

  function reset(): void {
    idempotency.clear();
    shipments.clear();
    returns.clear();
    counters.requests = 0;
    counters.failuresInjected = 0;
    random.restart();
  }

  const app = new Hono();
  handleErrorsAsJson(app);
  app.route('/', createControlRoutes({ settings, settingsSchema, stats, reset }));

  // A control route (outside /v1, so no fault is injected): moves a shipment one stage on, or to
  // delivered, now. Each event is at least 1 ms after the one before, so none shares its time.
  app.post('/_sandbox/shipments/:id/advance', async (c) => {
    const parsed = await parseBody(c, advanceBody);
    if (!parsed.ok) return parsed.response;
    const shipment = current(c.req.param('id'));
    if (!shipment) return notFound(c, 'shipment', c.req.param('id'));
    if (shipment.status === 'cancelled') {
      return errorResponse(c, 409, 'shipment_cancelled', `Shipment ${shipment.id} was cancelled; it goes nowhere`);
    }
    do {
      if (!onTheWay(shipment)) break;
      reachNextStage(shipment, Math.max(now(), lastEventMs(shipment) + 1));
    } while (parsed.data.to === 'delivered');
    return c.json({ id: shipment.id, status: shipment.status, events: shipment.events });
  });

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
      route: drawRoute(random, settings.exceptionRate),
      reached: 0,
      events: [{ at: new Date(now()).toISOString(), status: 'label_created', description: 'Shipping label created' }],
    };
    shipments.set(shipment.id, shipment);
    return c.json(shipmentView(shipment, new URL(c.req.url).origin), 201);
  });

  app.get('/v1/shipments/:id', (c) => {
    const shipment = current(c.req.param('id'));
    if (!shipment) return notFound(c, 'shipment', c.req.param('id'));
    return c.json(shipmentView(shipment, new URL(c.req.url).origin));
  });

  app.get('/v1/shipments/:id/events', (c) => {
    const shipment = current(c.req.param('id'));
    if (!shipment) return notFound(c, 'shipment', c.req.param('id'));
    return c.json({ id: shipment.id, status: shipment.status, events: shipment.events });
  });

  app.get('/v1/shipments/:id/label', (c) => {
    const shipment = shipments.get(c.req.param('id'));
    if (!shipment) return notFound(c, 'shipment', c.req.param('id'));
    return c.text(labelText(shipment));
  });

  app.post('/v1/shipments/:id/cancel', (c) => {
    const shipment = current(c.req.param('id'));
    if (!shipment) return notFound(c, 'shipment', c.req.param('id'));
    if (shipment.status !== 'cancelled') {
      shipment.status = 'cancelled';
      shipment.events.push({
        at: new Date(Math.max(now(), lastEventMs(shipment) + 1)).toISOString(),
        status: 'cancelled',
        description: 'Shipment cancelled',
      });
    }
    return c.json({ id: shipment.id, status: 'cancelled' }, 200);
  });

  app.post('/v1/returns', async (c) => {
    const parsed = await parseBody(c, returnBody);
    if (!parsed.ok) return parsed.response;
    const { shipmentId, trackingNumber: original, reference, parcels } = parsed.data;
    const shipment = shipmentId
      ? shipments.get(shipmentId)
      : [...shipments.values()].find((s) => s.trackingNumber === original);
    if (!shipment) {
      return errorResponse(c, 422, 'shipment_unknown', `No shipment ${shipmentId ?? original} to return goods from`);
    }
    if (shipment.status === 'cancelled') {
      return errorResponse(c, 422, 'shipment_cancelled', `Shipment ${shipment.id} was cancelled: nothing to return`);
    }
    const label: ReturnLabel = {
      id: `ret_${randomBytes(12).toString('hex')}`,
      reference,
      shipment,
      trackingNumber: trackingNumber(),
      parcels,
    };
    returns.set(label.id, label);
    return c.json(returnView(label, new URL(c.req.url).origin), 201);
  });

  app.get('/v1/returns/:id', (c) => {
    const label = returns.get(c.req.param('id'));
    if (!label) return notFound(c, 'return', c.req.param('id'));
    return c.json(returnView(label, new URL(c.req.url).origin));
  });

  app.get('/v1/returns/:id/label', (c) => {
    const label = returns.get(c.req.param('id'));
    if (!label) return notFound(c, 'return', c.req.param('id'));
    return c.text(returnLabelText(label));
  });

  return { app, settings, seed: random.seed, stats, reset };
}

export type CarrierSandbox = ReturnType<typeof createCarrier>;
