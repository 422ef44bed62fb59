import { Hono } from 'hono';
import { z } from 'zod';
import { ValidationError } from '../domain/errors.ts';
import type { AuthEnv } from './auth.ts';
import { cancelOrder } from './cancel-order.ts';
import { jsonBody, pathParams, text, uuidParam } from './input.ts';
import { parseOrderRequest } from './order-request.ts';
import { loadOrderView } from './order-view.ts';
import { type PlaceOrderDeps, placeOrder } from './place-order.ts';

const cancelBody = z.strictObject({ reason: text(500, { multiline: true }).optional() });
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function orderRoutes(deps: PlaceOrderDeps) {
  const app = new Hono<AuthEnv>();

  app.post('/', jsonBody(parseOrderRequest), async (c) => {
    const key = c.req.header('idempotency-key');
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      throw new ValidationError('Idempotency-Key is not valid', [
        { field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' },
      ]);
    }
    const result = await placeOrder(deps, c.get('caller'), c.req.valid('json'), key);
    c.header('Location', result.body.links.self);
    if (result.replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(result.body, result.status as 201);
  });

  app.post(
    '/:id/cancel',
    pathParams(z.object({ id: uuidParam })),
    jsonBody(cancelBody, { optional: true }),
    async (c) => {
      const { id } = c.req.valid('param');
      const caller = c.get('caller');
      const result = await cancelOrder(deps, caller, id, c.req.valid('json').reason);
      const view = await loadOrderView(deps.db, id, caller.role === 'customer' ? caller.customerId! : undefined);
      return c.json({ ...view, alreadyCancelled: result.alreadyCancelled });
    },
  );

  return app;
}
