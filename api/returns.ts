import { createRoute, z } from '@hono/zod-openapi';
import { AppError, ValidationError } from '../domain/errors.ts';
import { findOrder } from '../sql/orders.ts';
import { findReturn, listOrderReturns, returnView } from '../sql/returns.ts';
import type { AuthEnv } from './auth.ts';
import { noBody, uuidParam } from './input.ts';
import { apiKey, apiRoutes, errorAnswers, jsonAnswer, jsonRequest, openapiRoute } from './openapi.ts';
import { idempotencyKeyHeader } from './order-request.ts';
import { cancelReturn, createReturn, quote, type ReturnDeps, visibleReturn } from './request-return.ts';
import {
  createReturnSchema,
  quoteAnswerSchema,
  quoteRequestSchema,
  returnListSchema,
  returnSchema,
} from './return-view.ts';

// The customer's side of returns (SPEC §5): quote, return, read, cancel. Owner or admin; another
// customer's order or return is "not found".

export const rmaParam = z
  .string()
  .regex(/^RMA-[0-9A-F]{12}$/, 'must be an RMA number, e.g. RMA-0A1B2C3D4E5F')
  .openapi({ example: 'RMA-0A1B2C3D4E5F' });
const orderPath = z.object({ id: uuidParam });
const rmaPath = z.object({ rma: rmaParam });
const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

const quoteRoute = createRoute({
  method: 'post',
  path: '/orders/{id}/returns/quote',
  tags: ['Returns'],
  operationId: 'quoteReturn',
  summary: 'Ask whether items may be returned',
  description:
    'Step 1 of a return. Each item (`orderItemId` is the SKU within the order) gets a verdict with its reason: delivered, within the return window since delivery, not final sale, not returned already, no more than bought. The refund is computed from what was paid. Only when every item is eligible does the answer carry a `token`: single-use, valid until `expiresAt`, bound to the customer, order, items and quantities. An ineligible quote is still a 200: it is an answer, with the reasons.',
  security: apiKey,
  request: { params: orderPath, body: jsonRequest(quoteRequestSchema, { required: true }) },
  responses: {
    200: jsonAnswer(quoteAnswerSchema, 'The verdicts, the refund and (when eligible) the token'),
    ...errorAnswers(400, 401, 404, 413, 415, 429, 503),
  },
});

const createRoute_ = createRoute({
  method: 'post',
  path: '/orders/{id}/returns',
  tags: ['Returns'],
  operationId: 'createReturn',
  summary: 'Return items with a quote’s token',
  description:
    'Step 2: creates the return the token stands for (status `requested`, an RMA number) and starts its saga: a carrier return label (then `awaiting_receipt`), and after receipt the refund and restock. The body carries the token alone. Another customer’s token is 404, a token for another order 403, an expired one 422 `return_token_expired`, a used one 409 `return_token_used` (with `details.rma`), an item that another return holds 409 `already_returned` (with `details.rma`). With an `Idempotency-Key`, the same key and body replay the first answer.',
  security: apiKey,
  request: {
    params: orderPath,
    headers: z.object({ 'idempotency-key': idempotencyKeyHeader.optional() }),
    body: jsonRequest(createReturnSchema, { required: true }),
  },
  responses: {
    201: {
      ...jsonAnswer(returnSchema, 'The return, requested'),
      headers: z.object({
        Location: z.string().openapi({ description: 'The return’s URL' }),
        'Idempotent-Replayed': z.literal('true').optional().openapi({ description: 'Set on a replayed answer' }),
      }),
    },
    ...errorAnswers(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
  },
});

const orderReturnsRoute = createRoute({
  method: 'get',
  path: '/orders/{id}/returns',
  tags: ['Returns'],
  operationId: 'listOrderReturns',
  summary: 'An order’s returns',
  security: apiKey,
  request: { params: orderPath },
  responses: { 200: jsonAnswer(returnListSchema, 'Oldest first'), ...errorAnswers(400, 401, 404, 429, 503) },
});

const readReturnRoute = createRoute({
  method: 'get',
  path: '/returns/{rma}',
  tags: ['Returns'],
  operationId: 'getReturn',
  summary: 'Read a return',
  security: apiKey,
  request: { params: rmaPath },
  responses: { 200: jsonAnswer(returnSchema, 'The return'), ...errorAnswers(400, 401, 404, 429, 503) },
});

const cancelReturnRoute = createRoute({
  method: 'post',
  path: '/returns/{rma}/cancel',
  tags: ['Returns'],
  operationId: 'cancelReturn',
  summary: 'Cancel a return',
  description:
    'Allowed until the return is received: nothing is refunded and its items may be returned again. Cancelling a cancelled return answers it again.',
  security: apiKey,
  middleware: [noBody()],
  request: { params: rmaPath },
  responses: {
    200: jsonAnswer(returnSchema.extend({ alreadyCancelled: z.boolean() }), 'The return, cancelled'),
    ...errorAnswers(400, 401, 404, 409, 415, 429, 503),
  },
});

export function returnRoutes(deps: ReturnDeps) {
  const app = apiRoutes<AuthEnv>();

  openapiRoute(app, quoteRoute, async (c) => {
    const answer = await quote(deps, c.get('caller'), c.req.valid('param').id, c.req.valid('json'));
    const { windowEndsAt, expiresAt, ...rest } = answer;
    const timing = { windowEndsAt: iso(windowEndsAt), ...(expiresAt ? { expiresAt: iso(expiresAt)! } : {}) };
    return c.json({ ...rest, ...timing }, 200);
  });

  openapiRoute(app, createRoute_, async (c) => {
    const key = c.req.header('idempotency-key');
    if (key !== undefined && !idempotencyKeyHeader.safeParse(key).success) {
      throw new ValidationError('Idempotency-Key is not valid', [
        { field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' },
      ]);
    }
    const { id } = c.req.valid('param');
    const result = await createReturn(deps, c.get('caller'), id, c.req.valid('json').token, key);
    c.header('Location', result.body.links.self);
    if (result.replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(result.body, result.status as 201);
  });

  openapiRoute(app, orderReturnsRoute, async (c) => {
    const { id } = c.req.valid('param');
    const caller = c.get('caller');
    const order = await findOrder(deps.db, id);
    if (!order || (caller.role === 'customer' && order.customer_id !== caller.customerId)) {
      throw new AppError('not_found', `Order ${id} not found`);
    }
    return c.json({ returns: (await listOrderReturns(deps.db, id)).map(returnView) }, 200);
  });

  openapiRoute(app, readReturnRoute, async (c) => {
    const { rma } = c.req.valid('param');
    return c.json(returnView(visibleReturn(c.get('caller'), rma, await findReturn(deps.db, rma))), 200);
  });

  openapiRoute(app, cancelReturnRoute, async (c) => {
    const { rma } = c.req.valid('param');
    const { record, alreadyCancelled } = await cancelReturn(deps, c.get('caller'), rma);
    return c.json({ ...returnView(record), alreadyCancelled }, 200);
  });

  return app;
}
