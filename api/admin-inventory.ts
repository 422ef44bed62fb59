import { createRoute, z } from '@hono/zod-openapi';
import { parseHotSku, type RedisKeys } from '../cache/keys.ts';
import type { ReadThrough } from '../cache/read-through.ts';
import { AppError, ValidationError } from '../domain/errors.ts';
import { heatReasons } from '../domain/heat.ts';
import type { RedisClient } from '../runtime/redis.ts';
import type { Db } from '../sql/database.ts';
import { createFlashSale, endFlashSale, type FlashSale, listFlashSales } from '../sql/flash-sales.ts';
import { getStockLevels, restockStock, setAvailable } from '../sql/inventory.ts';
import { iso } from '../sql/order-view.ts';
import type { AuthEnv } from './auth.ts';
import { calendarDate, instant, noBody, positiveIdParam, skuParam, text } from './input.ts';
import { apiKey, apiRoutes, errorAnswers, jsonAnswer, jsonRequest, openapiRoute } from './openapi.ts';

const region = text(32);
const skuPath = z.object({ sku: skuParam });
const salePath = z.object({ id: positiveIdParam });
const restockBody = z.strictObject({
  region,
  quantity: z.int().min(1).max(1_000_000),
  nextRestockDate: calendarDate.nullable().optional(),
});
const adjustBody = z.strictObject({ region, available: z.int().min(0).max(1_000_000) });
const saleBody = z
  .strictObject({
    name: text(200),
    region,
    skus: z.array(text(64)).min(1).max(100),
    startsAt: instant,
    endsAt: instant,
    purchaseLimit: z.int().min(1).max(1000).optional(),
  })
  .refine((s) => Date.parse(s.endsAt) > Date.parse(s.startsAt), { path: ['endsAt'], message: 'must be after startsAt' })
  .refine((s) => Date.parse(s.endsAt) > Date.now(), { path: ['endsAt'], message: 'must be in the future' });

/** Operators' stock and sale controls: restock, adjust, declare and end flash sales, see hot SKUs. */
export function adminInventoryRoutes(deps: { db: Db; redis: RedisClient; keys: RedisKeys; cache: ReadThrough }) {
  const app = apiRoutes<AuthEnv>();

  openapiRoute(app, restockRoute, async (c) => {
    const { sku } = c.req.valid('param');
    const body = c.req.valid('json');
    const result = await deps.db.transaction((tx) => restockStock(tx, { sku, ...body, region: body.region }));
    if (result !== 'moved') throw new AppError('not_found', `SKU ${sku} is not stocked in region ${body.region}`);
    return c.json(await stockAfterChange(sku, body.region), 200);
  });

  openapiRoute(app, adjustRoute, async (c) => {
    const { sku } = c.req.valid('param');
    const body = c.req.valid('json');
    if ((await getStockLevels(deps.db, body.region, [sku])).length === 0) {
      throw new AppError('not_found', `SKU ${sku} is not stocked in region ${body.region}`);
    }
    await setAvailable(deps.db, sku, body.region, body.available);
    return c.json(await stockAfterChange(sku, body.region), 200);
  });

  openapiRoute(app, declareSaleRoute, async (c) => {
    const body = c.req.valid('json');
    const stocked = new Set((await getStockLevels(deps.db, body.region, body.skus)).map((l) => l.sku));
    const unknown = body.skus.flatMap((sku, i) =>
      stocked.has(sku) ? [] : [{ field: `skus[${i}]`, message: `"${sku}" is not sold in region ${body.region}` }],
    );
    if (unknown.length > 0) throw new ValidationError('Some SKUs are not sold in this region', unknown);
    const sale = await createFlashSale(deps.db, {
      name: body.name,
      region: body.region,
      skus: [...new Set(body.skus)],
      startsAt: new Date(body.startsAt),
      endsAt: new Date(body.endsAt),
      purchaseLimit: body.purchaseLimit ?? null,
    });
    return c.json(presentSale(sale), 201);
  });

  openapiRoute(app, listSalesRoute, async (c) =>
    c.json({ flashSales: (await listFlashSales(deps.db, 100)).map(presentSale) }, 200),
  );

  openapiRoute(app, endSaleRoute, async (c) => {
    const { id } = c.req.valid('param');
    const sale = await endFlashSale(deps.db, id);
    if (!sale) throw new AppError('conflict', `Flash sale ${id} does not exist or has ended already`);
    return c.json(presentSale(sale), 200);
  });

  openapiRoute(app, hotSkusRoute, async (c) => {
    const all = await deps.redis.hgetall(deps.keys.hotSkus);
    // An entry that is not a hot SKU is left out; the controller drops it when it next starts.
    return c.json({ hotSkus: Object.values(all).flatMap((raw) => parseHotSku(raw) ?? []) }, 200);
  });

  // An operator's change shows at once: the fresh cached copy goes (the controller does the same for
  // hot SKUs on every change; other SKUs otherwise rely on their TTL).
  async function stockAfterChange(sku: string, regionName: string) {
    await deps.cache.invalidate([deps.keys.stock(regionName, sku)]);
    const [level] = await getStockLevels(deps.db, regionName, [sku]);
    if (!level) throw new AppError('not_found', `SKU ${sku} is not stocked in region ${regionName}`);
    return level;
  }

  return app;
}

function presentSale(s: FlashSale) {
  return {
    id: s.id,
    name: s.name,
    region: s.region,
    skus: s.skus,
    startsAt: iso(s.starts_at),
    endsAt: iso(s.ends_at),
    purchaseLimit: s.purchase_limit,
    endedAt: iso(s.ended_at),
    createdAt: iso(s.created_at),
  };
}

const stockLevel = z
  .object({
    sku: z.string(),
    region: z.string(),
    on_hand: z.int(),
    available: z.int(),
    reserved: z.int(),
    shipped: z.int(),
    restock_date: z.string().nullable(),
    updated_at: z.number().openapi({ description: 'Epoch milliseconds' }),
  })
  .openapi('StockLevel');
const flashSale = z
  .object({
    id: z.int(),
    name: z.string(),
    region: z.string(),
    skus: z.array(z.string()),
    startsAt: z.string().nullable(),
    endsAt: z.string().nullable(),
    purchaseLimit: z.int().nullable(),
    endedAt: z.string().nullable(),
    createdAt: z.string().nullable(),
  })
  .openapi('FlashSale');
const hotSku = z
  .object({
    sku: z.string(),
    region: z.string(),
    reasons: z.array(z.enum(heatReasons)),
    since: z.string(),
    ratePerMinute: z.number(),
    available: z.int().nullable(),
    purchaseLimit: z.int(),
    flashSaleId: z.int().nullable(),
  })
  .openapi('HotSku');

const admin = { tags: ['Admin'], security: apiKey };

const restockRoute = createRoute({
  ...admin,
  method: 'post',
  path: '/inventory/{sku}/restock',
  operationId: 'restockSku',
  summary: 'Restock a SKU',
  description: 'Adds units to what is on hand and available; the cached stock answer goes at once.',
  request: { params: skuPath, body: jsonRequest(restockBody, { required: true }) },
  responses: {
    200: jsonAnswer(stockLevel, 'The SKU’s stock after the restock'),
    ...errorAnswers(400, 401, 403, 404, 413, 415, 429, 503),
  },
});

const adjustRoute = createRoute({
  ...admin,
  method: 'post',
  path: '/inventory/{sku}/adjust',
  operationId: 'adjustStock',
  summary: 'Set the available units of a SKU',
  request: { params: skuPath, body: jsonRequest(adjustBody, { required: true }) },
  responses: {
    200: jsonAnswer(stockLevel, 'The SKU’s stock after the change'),
    ...errorAnswers(400, 401, 403, 404, 409, 413, 415, 429, 503),
  },
});

const declareSaleRoute = createRoute({
  ...admin,
  method: 'post',
  path: '/flash-sales',
  operationId: 'declareFlashSale',
  summary: 'Declare a flash sale',
  description: 'Its SKUs turn hot for the window, with its purchase limit per customer.',
  request: { body: jsonRequest(saleBody, { required: true }) },
  responses: {
    201: jsonAnswer(flashSale, 'The sale'),
    ...errorAnswers(400, 401, 403, 413, 415, 429, 503),
  },
});

const listSalesRoute = createRoute({
  ...admin,
  method: 'get',
  path: '/flash-sales',
  operationId: 'listFlashSales',
  summary: 'List flash sales',
  description: 'The latest 100, newest first.',
  responses: {
    200: jsonAnswer(z.object({ flashSales: z.array(flashSale) }), 'The sales'),
    ...errorAnswers(401, 403, 429, 503),
  },
});

const endSaleRoute = createRoute({
  ...admin,
  method: 'post',
  path: '/flash-sales/{id}/end',
  operationId: 'endFlashSale',
  summary: 'End a flash sale now',
  description: 'Takes no body (or `{}`).',
  request: { params: salePath },
  // After the path check, as on every action without a body.
  middleware: [noBody()] as const,
  responses: {
    200: jsonAnswer(flashSale, 'The ended sale'),
    ...errorAnswers(400, 401, 403, 409, 413, 415, 429, 503),
  },
});

const hotSkusRoute = createRoute({
  ...admin,
  method: 'get',
  path: '/hot-skus',
  operationId: 'listHotSkus',
  summary: 'The SKUs the flash-sale controller holds hot',
  responses: {
    200: jsonAnswer(z.object({ hotSkus: z.array(hotSku) }), 'The hot SKUs'),
    ...errorAnswers(401, 403, 429, 503),
  },
});
