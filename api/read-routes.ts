import { createRoute, z } from '@hono/zod-openapi';
import type { RedisKeys } from '../cache/keys.ts';
import type { OrderRead, OrderReader } from '../cache/order-reader.ts';
import type { ReadThrough } from '../cache/read-through.ts';
import type { StockReader } from '../cache/stock-reader.ts';
import { AppError, ValidationError } from '../domain/errors.ts';
import { isUuid } from '../domain/ids.ts';
import { orderStatuses } from '../domain/order-status.ts';
import type { Db } from '../sql/database.ts';
import type { OrderFieldGroup } from '../sql/order-view.ts';
import { listRecentOrders, type OrderSummary } from '../sql/orders.ts';
import type { AuthEnv, Caller } from './auth.ts';
import { customerIdParam, isMomentInRange, skuParam, text, uuidParam } from './input.ts';
import { apiKey, apiRoutes, errorAnswers, jsonAnswer, openapiRoute } from './openapi.ts';
import { orderReadSchema } from './order-view.ts';

export type ReadDeps = {
  db: Db;
  cache: ReadThrough;
  keys: RedisKeys;
  orders: OrderReader;
  stock: StockReader;
  recentOrdersTtlMs: number;
};

const FIRST_PAGE = 50;

/** The read tools of SPEC §3: get_order_status, get_recent_orders, check_stock, through the cache. */
export function readRoutes(deps: ReadDeps) {
  const app = apiRoutes<AuthEnv>();

  openapiRoute(app, readOrderRoute, async (c) => {
    const { id } = c.req.valid('param');
    const read = await deps.orders.read(id);
    // Another customer's order is "not found", not "forbidden": its existence is not the caller's business.
    if (!mayRead(c.get('caller'), read.customerId)) throw new AppError('not_found', `Order ${id} not found`);
    // Spliced JSON text, not an object: the document's schema is checked by the tests, not the compiler.
    return c.body(orderAnswer(read), 200, { 'Content-Type': 'application/json' }) as never;
  });

  openapiRoute(app, recentOrdersRoute, async (c) => {
    const customerId = c.req.valid('param').id;
    if (!mayRead(c.get('caller'), customerId)) throw new AppError('not_found', `Customer ${customerId} not found`);
    const query = c.req.valid('query');
    const cursor = query.before ? decodeCursor(query.before) : undefined;
    let orders: readonly OrderSummary[];
    let freshness = { asOf: new Date().toISOString(), ageMs: 0, source: 'database' as string };
    if (cursor || query.limit > FIRST_PAGE) {
      orders = await listRecentOrders(deps.db, customerId, query.limit, cursor);
    } else {
      const page = await deps.cache.read(
        'recent-orders',
        deps.keys.recentOrders(customerId),
        deps.recentOrdersTtlMs,
        () => listRecentOrders(deps.db, customerId, FIRST_PAGE),
      );
      orders = page.value.slice(0, query.limit);
      freshness = { asOf: page.asOfIso, ageMs: page.ageMs, source: page.source };
    }
    const last = orders.at(-1);
    return c.json(
      {
        orders: orders.map((o) => ({
          id: o.id,
          status: o.status,
          currency: o.currency,
          totalCents: o.total_cents,
          items: o.items,
          createdAt: new Date(o.created_at).toISOString(),
          links: { self: `/orders/${o.id}` },
        })),
        next: orders.length === query.limit && last ? encodeCursor(last) : null,
        ...freshness,
        stale: freshness.source === 'stale',
      },
      200,
    );
  });

  openapiRoute(app, checkStockRoute, async (c) => {
    return c.json(await deps.stock.read(c.req.valid('param').sku, c.req.valid('query').region), 200);
  });

  return app;
}

const customerPath = z.object({ id: customerIdParam });
const skuPath = z.object({ sku: skuParam });
const recentQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(10),
  before: z.string().min(1).max(200).optional().openapi({ description: 'The `next` value of the previous page' }),
});
const stockQuery = z.strictObject({
  region: z.string('is required, e.g. ?region=eu').pipe(text(32, { tooShort: 'is required, e.g. ?region=eu' })),
});

const readOrderRoute = createRoute({
  method: 'get',
  path: '/orders/{id}',
  tags: ['Orders'],
  operationId: 'getOrder',
  summary: 'Read an order',
  description:
    'Status, history, step timeline, payment, shipment and notifications, through the cache. `freshness` says how old each group of fields is; when PostgreSQL does not answer in time, cached fields come back with `stale: true`.',
  security: apiKey,
  request: { params: z.object({ id: uuidParam }) },
  responses: { 200: jsonAnswer(orderReadSchema, 'The order'), ...errorAnswers(400, 401, 404, 429, 503) },
});

const orderSummary = z.object({
  id: z.string(),
  status: z.enum(orderStatuses),
  currency: z.string(),
  totalCents: z.int(),
  items: z.int().openapi({ description: 'Units ordered' }),
  createdAt: z.string(),
  links: z.object({ self: z.string() }),
});
const recentOrdersRoute = createRoute({
  method: 'get',
  path: '/customers/{id}/orders',
  tags: ['Customers'],
  operationId: 'listRecentOrders',
  summary: 'A customer’s recent orders',
  description: 'Newest first. A customer key sees only its own customer; `next` continues with `?before=`.',
  security: apiKey,
  request: { params: customerPath, query: recentQuery },
  responses: {
    200: jsonAnswer(
      z
        .object({
          orders: z.array(orderSummary),
          next: z.string().nullable(),
          asOf: z.string(),
          ageMs: z.number(),
          source: z.string(),
          stale: z.boolean(),
        })
        .openapi('RecentOrders'),
      'One page of orders',
    ),
    ...errorAnswers(400, 401, 404, 429, 503),
  },
});

const stockAnswer = z
  .object({
    sku: z.string(),
    region: z.string(),
    availability: z.enum(['in_stock', 'low', 'out']),
    available: z.int(),
    restockDate: z.string().nullable(),
    hot: z.boolean(),
    warning: z.string().nullable(),
    purchaseLimit: z.int().nullable(),
    asOf: z.string(),
    ageMs: z.number(),
    stale: z.boolean(),
    source: z.string(),
    ttlMs: z.int(),
  })
  .openapi('StockAnswer');
const checkStockRoute = createRoute({
  method: 'get',
  path: '/inventory/{sku}',
  tags: ['Inventory'],
  operationId: 'checkStock',
  summary: 'Check stock',
  description: 'In stock, low or out, with a restock date when known and a warning while the SKU is hot.',
  security: apiKey,
  request: { params: skuPath, query: stockQuery },
  responses: { 200: jsonAnswer(stockAnswer, 'The stock answer'), ...errorAnswers(400, 401, 404, 429, 503) },
});

/**
 * The answer's JSON, spliced from the groups' cached JSON rather than parsed and serialised again: the
 * groups' fields, in order, then each group's freshness. The same text as JSON.stringify of
 * `{ ...placed, ...status, ...tracking, freshness, stale, staleFields }` (the groups share no field).
 */
function orderAnswer(read: OrderRead): string {
  let fields = '';
  let freshness = '';
  let staleFields = '';
  for (const group of orderGroups) {
    const { json, asOfIso, ageMs, source } = read[group];
    if (json.charCodeAt(0) !== 123) throw new Error(`The ${group} fields of an order are not a JSON object`);
    if (json.length > 2) fields += `${fields ? ',' : ''}${json.slice(1, -1)}`;
    freshness += `${freshness ? ',' : ''}"${group}":{"asOf":"${asOfIso}","ageMs":${ageMs},"source":"${source}"}`;
    if (source === 'stale') staleFields += `${staleFields ? ',' : ''}"${group}"`;
  }
  const rest = `"freshness":{${freshness}},"stale":${staleFields !== ''},"staleFields":[${staleFields}]`;
  return `{${fields ? `${fields},` : ''}${rest}}`;
}
const orderGroups = ['placed', 'status', 'tracking'] as const satisfies readonly OrderFieldGroup[];

function mayRead(caller: Caller, customerId: string): boolean {
  return caller.role === 'admin' || caller.customerId === customerId;
}

function encodeCursor(o: OrderSummary): string {
  return Buffer.from(JSON.stringify([o.created_at, o.id])).toString('base64url');
}

function decodeCursor(raw: string): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as [unknown, unknown];
    if (isMomentInRange(createdAt) && typeof id === 'string' && isUuid(id)) return { createdAt, id };
  } catch {}
  throw new ValidationError('The cursor is not valid', [
    { field: 'before', message: 'use the `next` value of a previous page' },
  ]);
}
