import { z } from 'zod';
import { AppError, BusinessError } from '../domain/errors.ts';
import { getJson, parseResponse, postJson, providerErrorCode } from './http.ts';

// Adapter for the parcel carrier (the sandbox in sandbox/carrier.ts speaks its protocol).

export type ShippingAddress = {
  name: string;
  line1: string;
  line2?: string;
  city: string;
  postalCode: string;
  /** ISO 3166-1 alpha-2. */
  country: string;
};
export type Parcel = { sku: string; quantity: number };
export type ShippingService = 'standard' | 'express';
export type ShipmentEvent = { at: string; status: string; description: string };
export type CreateShipmentInput = {
  orderId: string;
  address: ShippingAddress;
  parcels: Parcel[];
  service?: ShippingService;
};
export type Shipment = {
  shipmentId: string;
  carrier: string;
  trackingNumber: string;
  labelUrl: string;
  events: ShipmentEvent[];
};

/** Where a shipment stands at the carrier: its latest status and every tracking event so far. */
export type Tracking = { status: string; events: ShipmentEvent[] };
/** The original shipment, by the carrier's id or its tracking number; `reference` is the return's RMA. */
export type CreateReturnLabelInput = ({ shipmentId: string } | { trackingNumber: string }) & {
  reference: string;
  parcels: Parcel[];
};
export type ReturnLabel = { returnId: string; carrier: string; trackingNumber: string; labelUrl: string };

export type Carrier = {
  createShipment(input: CreateShipmentInput, idempotencyKey: string): Promise<Shipment>;
  cancelShipment(shipmentId: string, idempotencyKey: string): Promise<void>;
  events(shipmentId: string): Promise<Tracking>;
  createReturnLabel(input: CreateReturnLabelInput, idempotencyKey: string): Promise<ReturnLabel>;
};

export type CarrierClientOptions = { url: string; timeoutMs: number };

const event = z.object({ at: z.string(), status: z.string(), description: z.string() });
const shipmentResponse = z.object({
  id: z.string(),
  carrier: z.string(),
  trackingNumber: z.string(),
  labelUrl: z.string(),
  events: z.array(event),
});
const cancelResponse = z.object({ status: z.literal('cancelled') });
const eventsResponse = z.object({ status: z.string(), events: z.array(event) });
const returnResponse = z.object({
  id: z.string(),
  carrier: z.string(),
  trackingNumber: z.string(),
  labelUrl: z.string(),
});

export function createCarrierClient(options: CarrierClientOptions): Carrier {
  const base = options.url.replace(/\/+$/, '');
  const { timeoutMs } = options;

  return {
    async createShipment(input, idempotencyKey) {
      const { orderId, address, parcels, service } = input;
      const response = await postJson(
        `${base}/v1/shipments`,
        { reference: orderId, service: service ?? 'standard', address, parcels },
        { timeoutMs, idempotencyKey, expect: [422] },
      );
      if (response.status === 422) {
        const code = providerErrorCode(response.body);
        if (code === 'address_undeliverable') {
          throw new BusinessError('address_undeliverable', `The carrier cannot deliver order ${orderId}`, {
            country: address.country,
            postalCode: address.postalCode,
          });
        }
        throw new AppError('provider_rejected', `Shipment for order ${orderId} refused: ${code ?? 'unknown reason'}`, {
          details: { orderId, status: response.status, providerCode: code, body: response.body },
        });
      }
      const body = parseResponse(shipmentResponse, response);
      return {
        shipmentId: body.id,
        carrier: body.carrier,
        trackingNumber: body.trackingNumber,
        labelUrl: body.labelUrl,
        events: body.events,
      };
    },

    async cancelShipment(shipmentId, idempotencyKey) {
      const response = await postJson(
        `${base}/v1/shipments/${encodeURIComponent(shipmentId)}/cancel`,
        {},
        { timeoutMs, idempotencyKey },
      );
      parseResponse(cancelResponse, response);
    },

    async events(shipmentId) {
      const response = await getJson(`${base}/v1/shipments/${encodeURIComponent(shipmentId)}/events`, { timeoutMs });
      return parseResponse(eventsResponse, response);
    },

    async createReturnLabel(input, idempotencyKey) {
      const response = await postJson(`${base}/v1/returns`, input, { timeoutMs, idempotencyKey, expect: [422] });
      if (response.status === 422) {
        const code = providerErrorCode(response.body);
        throw new AppError(
          'provider_rejected',
          `Return label ${input.reference} refused: ${code ?? 'unknown reason'}`,
          {
            details: { reference: input.reference, status: response.status, providerCode: code, body: response.body },
          },
        );
      }
      const body = parseResponse(returnResponse, response);
      return { returnId: body.id, carrier: body.carrier, trackingNumber: body.trackingNumber, labelUrl: body.labelUrl };
    },
  };
}
