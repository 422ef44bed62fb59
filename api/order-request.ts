// From zod-openapi, which adds .openapi() to schemas made after it loads: the document names this one.
import { z } from '@hono/zod-openapi';
import { ValidationError } from '../domain/errors.ts';
import { fieldName, text } from './input.ts';

// The body of POST /orders. Strict objects: an unknown field is an error, not silently dropped, and a
// client-sent price, total or status is refused with a message that says why.

export const orderRequestSchema = z.strictObject({
  customerId: text(64).optional(),
  region: text(32),
  items: z
    .array(z.strictObject({ sku: text(64), quantity: z.int().min(1).max(100) }))
    .min(1)
    .max(50),
  shippingAddress: z.strictObject({
    name: text(200),
    line1: text(200),
    line2: text(200, { min: 0 }).optional(),
    city: text(100),
    postalCode: text(20),
    country: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code such as GB or FR'),
  }),
  payment: z.strictObject({ token: text(200) }),
});
export type OrderRequest = z.infer<typeof orderRequestSchema>;

const computedFields = new Set(['price', 'unitPrice', 'unitPriceCents', 'total', 'totalCents', 'subtotal', 'status']);

export function parseOrderRequest(body: unknown): OrderRequest {
  const parsed = orderRequestSchema.safeParse(body);
  const problems: Array<{ field: string; message: string }> = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys)
          problems.push({ field: fieldName([...issue.path, key]), message: unknownKeyMessage(key) });
      } else {
        problems.push({ field: fieldName(issue.path), message: issue.message });
      }
    }
  } else {
    const seen = new Map<string, number>();
    parsed.data.items.forEach((item, i) => {
      const first = seen.get(item.sku);
      if (first === undefined) seen.set(item.sku, i);
      else problems.push({ field: `items[${i}].sku`, message: `duplicate of items[${first}]; use quantity instead` });
    });
  }
  if (problems.length > 0 || !parsed.success) {
    throw new ValidationError(
      `The order is not valid: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}`,
      problems,
    );
  }
  return parsed.data;
}

function unknownKeyMessage(key: string): string {
  return computedFields.has(key)
    ? `is not accepted: prices, totals and statuses are computed by orderflow`
    : 'is not a known field';
}

/** One line of an order as the API answers it, priced from the catalog. */
export const orderLineSchema = z.object({
  sku: z.string(),
  name: z.string(),
  quantity: z.int(),
  unitPriceCents: z.int(),
  lineTotalCents: z.int(),
});

/** The answer to an accepted order (201, and the same again for a replayed Idempotency-Key). */
export const orderAcceptedSchema = z.object({
  id: z.string(),
  status: z.literal('PENDING'),
  customerId: z.string(),
  region: z.string(),
  currency: z.string(),
  totalCents: z.int(),
  items: z.array(orderLineSchema),
  links: z.object({ self: z.string() }),
});

/** The Idempotency-Key header: a replayed key answers with the first answer. */
export const idempotencyKeyHeader = z
  .string()
  .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1 to 255 visible ASCII characters');
