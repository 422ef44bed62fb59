import { z } from '@hono/zod-openapi';
import { dispositions, returnStatuses } from '../sql/returns.ts';
import { text } from './input.ts';

// The returns API's schemas (SPEC §5), for validation and the OpenAPI document. An order item's id is
// its SKU within the order: order_items are keyed by (order, SKU).

const moment = z.string().nullable();

// As an order's lines take a SKU (api/order-request.ts): trimmed, so blank is refused.
export const orderItemId = text(64).openapi({
  description: 'The order item: its SKU within the order (an order has one line per SKU)',
  example: 'BERSERK-41',
});

export const quoteRequestSchema = z
  .strictObject({
    items: z
      .array(z.strictObject({ orderItemId, quantity: z.int().min(1).max(10_000) }))
      .min(1)
      .max(100),
    reason: text(500, { multiline: true }),
  })
  .openapi('ReturnQuoteRequest');

const refusalReasons = [
  'not_owner',
  'order_not_returnable',
  'not_delivered',
  'window_closed',
  'unknown_item',
  'duplicate_item',
  'final_sale',
  'already_returned',
  'quantity_exceeds_bought',
] as const;

export const quoteAnswerSchema = z
  .object({
    orderId: z.string(),
    eligible: z.boolean().openapi({ description: 'Every item asked for may be returned: only then is there a token' }),
    refusal: z.object({ reason: z.enum(refusalReasons), message: z.string() }).nullable(),
    items: z.array(
      z.object({
        orderItemId: z.string(),
        quantity: z.int(),
        eligible: z.boolean(),
        sku: z.string().optional(),
        name: z.string().optional(),
        refundCents: z.int().optional(),
        reason: z.enum(refusalReasons).optional(),
        message: z.string().optional(),
      }),
    ),
    refundCents: z.int().openapi({ description: 'Computed from what was paid, capped by what is left to refund' }),
    windowEndsAt: moment,
    token: z.string().optional().openapi({ description: 'Single-use confirmation token, only when eligible' }),
    expiresAt: z.string().optional(),
  })
  .openapi('ReturnQuote');

export const createReturnSchema = z
  .strictObject({ token: z.string().min(1).max(200).openapi({ description: 'The token of an eligible quote' }) })
  .openapi('ReturnRequest');

export const receiveSchema = z
  .strictObject({
    items: z
      .array(
        z.strictObject({
          orderItemId,
          quantity: z.int().min(0).max(10_000).openapi({ description: 'Units of the item this line covers' }),
          disposition: z.enum(dispositions),
        }),
      )
      .min(1)
      .max(100),
  })
  .openapi('ReturnReceipt');

export const returnSchema = z
  .object({
    rma: z.string(),
    orderId: z.string(),
    status: z.enum(returnStatuses).openapi({
      description:
        'requested → awaiting_receipt (label booked) → received → closed (refund paid, restock done); or cancelled, or expired (not received in time)',
    }),
    reason: z.string(),
    refundCents: z.int().openapi({ description: 'What the quote promised for every item' }),
    refundedCents: z.int().nullable().openapi({ description: 'What was refunded, for what arrived' }),
    items: z.array(
      z.object({
        orderItemId: z.string(),
        sku: z.string(),
        name: z.string(),
        quantity: z.int(),
        refundCents: z.int(),
        receivedQuantity: z.int().nullable(),
        disposition: z.enum(dispositions).nullable(),
      }),
    ),
    label: z
      .object({ carrier: z.string().nullable(), trackingNumber: z.string(), url: z.string().nullable() })
      .nullable(),
    createdAt: moment,
    updatedAt: moment,
    receivedAt: moment,
    refundedAt: moment,
    restockedAt: moment,
    endedAt: moment,
    links: z.object({ self: z.string(), order: z.string() }),
  })
  .openapi('Return');

export const returnListSchema = z.object({ returns: z.array(returnSchema) }).openapi('ReturnList');
