import { Hono } from 'hono';
import { z } from 'zod';
import { ValidationError } from '../domain/errors.ts';
import type { AuthEnv } from './auth.ts';
import { cancelOrder } from './cancel-order.ts';
import { parseOrderRequest } from './order-request.ts';
import { loadOrderView } from './order-view.ts';
import { type PlaceOrderDeps, placeOrder } from './place-order.ts';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function orderRoutes(deps: PlaceOrderDeps) {
  const app = new Hono<AuthEnv>();

  app.post('/', async (c) => {
    const body = await c.req.json().catch(() => {
      throw new ValidationError('The body must be a JSON object', [{ field: '(body)', message: 'is not valid JSON' }]);
    });
    const key = c.req.header('idempotency-key');
    if (key !== undefined && !/^[\x21-\x7e]{1,255}$/.test(key)) {
      throw new ValidationError('Idempotency-Key is not valid', [
        { field: 'Idempotency-Key', message: 'must be 1 to 255 visible ASCII characters' },
      ]);
    }
    const result = await placeOrder(deps, c.get('caller'), parseOrderRequest(body), key);
    c.header('Location', result.body.links.self);
    if (result.replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(result.body, result.status as 201);
  });

  app.post('/:id/cancel', async (c) => {
    const id = orderId(c.req.param('id'));
    const text = await c.req.text();
    let body: unknown = {};
    try {
      if (text) body = JSON.parse(text);
    } catch {
      body = null;
    }
    const parsed = cancelBody.safeParse(body);
    if (!parsed.success) {
      throw new ValidationError('The body is not valid', [
        { field: 'reason', message: 'the body must be {} or {"reason": "<at most 500 characters>"}' },
      ]);
    }
    const caller = c.get('caller');
    const result = await cancelOrder(deps, caller, id, parsed.data.reason);
    const view = await loadOrderView(deps.db, id, caller.role === 'customer' ? caller.customerId! : undefined);
    return c.json({ ...view, alreadyCancelled: result.alreadyCancelled });
  });

  return app;
}

const cancelBody = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() });

function orderId(raw: string): string {
  if (!uuid.test(raw)) throw new ValidationError('Order id is not valid', [{ field: 'id', message: 'must be a UUID' }]);
  return raw;
}
