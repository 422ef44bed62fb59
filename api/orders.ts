import { createRoute, z } from '@hono/zod-openapi';
import { AppError, ValidationError } from '../domain/errors.ts';
import type { OrderMetrics } from '../runtime/metrics.ts';
import type { AuthEnv } from './auth.ts';
import { cancelOrder } from './cancel-order.ts';
import { text, uuidParam } from './input.ts';
import { apiKey, apiRoutes, errorAnswers, jsonAnswer, jsonRequest, openapiRoute } from './openapi.ts';
import { idempotencyKeyHeader, orderAcceptedSchema, orderRequestSchema, parseOrderRequest } from './order-request.ts';
import { cancelledOrderSchema, loadOrderView } from './order-view.ts';
import { type PlaceOrderDeps, placeOrder } from './place-order.ts';

const cancelBody = z.strictObject({ reason: text(500, { multiline: true }).optional() });

const placeOrderRoute = createRoute({
  method: 'post',
  path: '/',
  tags: ['Orders'],
  operationId: 'placeOrder',
  summary: 'Place an order',
  description:
    'Prices the order from the catalog (a client-sent price, total or status is refused), stores it as PENDING and starts its pipeline. With an `Idempotency-Key`, the same key and body replay the first answer (a request racing the first waits for it); a different body is 422; a key another kind of request still holds in flight is 409.',
  security: apiKey,
  request: {
    // Checked by the handler, after the body, with the message it has always had.
    headers: z.object({ 'idempotency-key': idempotencyKeyHeader.optional() }),
    body: jsonRequest(orderRequestSchema.openapi('OrderRequest'), { required: true }),
  },
  responses: {
    201: {
      ...jsonAnswer(orderAcceptedSchema.openapi('OrderAccepted'), 'Accepted: the order is PENDING'),
      headers: z.object({
        Location: z.string().openapi({ description: 'The order’s URL' }),
        'Idempotent-Replayed': z.literal('true').optional().openapi({ description: 'Set on a replayed answer' }),
      }),
    },
    ...errorAnswers(400, 401, 403, 409, 413, 415, 422, 429, 503),
  },
});

const cancelOrderRoute = createRoute({
  method: 'post',
  path: '/{id}/cancel',
  tags: ['Orders'],
  operationId: 'cancelOrder',
  summary: 'Cancel an order',
  description:
    'Allowed until the order ships; the payment is voided or refunded and the stock released. Cancelling a cancelled order answers the order again.',
  security: apiKey,
  request: {
    params: z.object({ id: uuidParam }),
    body: jsonRequest(cancelBody, { required: false, description: 'Optional: why' }),
  },
  responses: {
    200: jsonAnswer(cancelledOrderSchema, 'The order, CANCELLED'),
    ...errorAnswers(400, 401, 404, 409, 413, 415, 429, 503),
  },
});

export function orderRoutes(deps: PlaceOrderDeps & { metrics: Pick<OrderMetrics, 'orderAccepted' | 'orderEnded'> }) {
  const app = apiRoutes<AuthEnv>();

  openapiRoute(
    app,
    placeOrderRoute,
    async (c) => {
      const key = c.req.header('idempotency-key');
      if (key !== undefined && !idempotencyKeyHeader.safeParse(key).success) {
        throw new ValidationError('Idempotency-Key is not valid', [
          { field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' },
        ]);
      }
      const result = await placeOrder(deps, c.get('caller'), c.req.valid('json'), key);
      if (!result.replayed) deps.metrics.orderAccepted();
      c.header('Location', result.body.links.self);
      if (result.replayed) c.header('Idempotent-Replayed', 'true');
      return c.json(result.body, result.status as 201);
    },
    { parseBody: parseOrderRequest },
  );

  openapiRoute(app, cancelOrderRoute, async (c) => {
    const { id } = c.req.valid('param');
    const caller = c.get('caller');
    const result = await cancelOrder(deps, caller, id, c.req.valid('json').reason);
    const view = await loadOrderView(deps.db, id, caller.role === 'customer' ? caller.customerId! : undefined);
    if (!view) throw new AppError('not_found', `Order ${id} not found`);
    return c.json({ ...view, alreadyCancelled: result.alreadyCancelled }, 200);
  });

  return app;
}
