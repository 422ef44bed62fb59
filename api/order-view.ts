import { z } from '@hono/zod-openapi';
import { AppError } from '../domain/errors.ts';
import { orderStatuses } from '../domain/order-status.ts';
import type { Db } from '../sql/database.ts';
import { loadOrderGroups } from '../sql/order-view.ts';
import { orderLineSchema } from './order-request.ts';
import { returnSchema } from './return-view.ts';

/** Everything about an order straight from PostgreSQL (for answers to writes); null if the caller may not see it. */
export async function loadOrderView(db: Db, orderId: string, customerId?: string) {
  const groups = await loadOrderGroups(db, orderId, ['placed', 'status', 'tracking']).catch((error) => {
    if (error instanceof AppError && error.code === 'not_found') return null;
    throw error;
  });
  if (!groups?.placed || !groups.status || !groups.tracking) return null;
  if (customerId !== undefined && groups.placed.customerId !== customerId) return null;
  return { ...groups.placed, ...groups.status, ...groups.tracking };
}

// The answers' schemas, for the OpenAPI document (sql/order-view.ts builds the fields). Timestamps are
// ISO 8601 text, null where nothing happened yet.
const moment = z.string().nullable();

export const orderViewSchema = z
  .object({
    id: z.string(),
    customerId: z.string(),
    region: z.string(),
    currency: z.string(),
    totalCents: z.int(),
    items: z.array(orderLineSchema.extend({ finalSale: z.boolean() })),
    shippingAddress: z.object({
      name: z.string(),
      line1: z.string(),
      line2: z.string().optional(),
      city: z.string(),
      postalCode: z.string(),
      country: z.string(),
    }),
    createdAt: moment,
    status: z.enum(orderStatuses),
    failure: z.object({ reason: z.string(), step: z.string().nullable() }).nullable(),
    generation: z.int(),
    updatedAt: moment,
    history: z.array(
      z.object({
        from: z.enum(orderStatuses).nullable(),
        to: z.enum(orderStatuses),
        actor: z.string(),
        reason: z.string(),
        at: moment,
      }),
    ),
    timeline: z.array(
      z.object({
        generation: z.int(),
        step: z.string(),
        attempt: z.int(),
        worker: z.string(),
        outcome: z.enum(['running', 'succeeded', 'failed', 'skipped']),
        startedAt: moment,
        finishedAt: moment,
        durationMs: z.number().nullable(),
        error: z.object({ code: z.string().nullable(), message: z.string().nullable() }).nullable(),
      }),
    ),
    payment: z.object({
      state: z.string(),
      operations: z.array(
        z.object({
          generation: z.int(),
          kind: z.enum(['authorization', 'capture', 'void', 'refund']),
          status: z.string(),
          amountCents: z.int(),
          gatewayId: z.string().nullable(),
          declineCode: z.string().nullable(),
          at: moment,
        }),
      ),
    }),
    notifications: z.array(
      z.object({ kind: z.string(), channel: z.string(), recipient: z.string(), subject: z.string(), sentAt: moment }),
    ),
    // The shipping confirmation: sent, failed after shipment (its parked dead letter), or being resent.
    notification: z
      .object({
        status: z.enum(['sent', 'failed', 'resending']),
        sentAt: moment,
        deadLetterId: z.int().nullable(),
        error: z.object({ code: z.string(), message: z.string() }).nullable(),
      })
      .nullable(),
    compensations: z
      .array(
        z.object({
          generation: z.int(),
          step: z.string(),
          outcome: z.enum(['done', 'failed']),
          detail: z.string().nullable(),
        }),
      )
      .readonly(),
    returns: z.array(returnSchema),
    shipment: z
      .object({
        carrier: z.string(),
        trackingNumber: z.string(),
        labelUrl: z.string(),
        status: z.string(),
        deliveredAt: moment,
        events: z.array(z.object({ status: z.string(), description: z.string(), at: moment })),
      })
      .nullable(),
  })
  .openapi('Order');

const freshness = z.object({
  asOf: z.string(),
  ageMs: z.number(),
  source: z.string().openapi({ description: 'database, cache, or stale (PostgreSQL did not answer in time)' }),
});

/** GET /orders/{id}: the order with how fresh each group of its fields is. */
export const orderReadSchema = orderViewSchema
  .extend({
    freshness: z.object({ placed: freshness, status: freshness, tracking: freshness }),
    stale: z.boolean(),
    staleFields: z.array(z.enum(['placed', 'status', 'tracking'])),
  })
  .openapi('OrderRead');

export const cancelledOrderSchema = orderViewSchema.extend({ alreadyCancelled: z.boolean() }).openapi('CancelledOrder');
