import { Hono } from 'hono';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { parseHotSku, type RedisKeys } from '../cache/keys.ts';
import type { ReadThrough } from '../cache/read-through.ts';
import { AppError, ValidationError } from '../domain/errors.ts';
import type { Db } from '../sql/database.ts';
import { createFlashSale, endFlashSale, type FlashSale, listFlashSales } from '../sql/flash-sales.ts';
import { getStockLevels, restockStock, setAvailable } from '../sql/inventory.ts';
import { iso } from '../sql/order-view.ts';
import type { AuthEnv } from './auth.ts';
import { calendarDate, instant, jsonBody, noBody, pathParams, positiveIdParam, skuParam, text } from './input.ts';

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
export function adminInventoryRoutes(deps: { db: Db; redis: Redis; keys: RedisKeys; cache: ReadThrough }) {
  const app = new Hono<AuthEnv>();

  app.post('/inventory/:sku/restock', pathParams(skuPath), jsonBody(restockBody), async (c) => {
    const { sku } = c.req.valid('param');
    const body = c.req.valid('json');
    const result = await deps.db.transaction((tx) => restockStock(tx, { sku, ...body, region: body.region }));
    if (result !== 'moved') throw new AppError('not_found', `SKU ${sku} is not stocked in region ${body.region}`);
    return c.json(await stockAfterChange(sku, body.region));
  });

  app.post('/inventory/:sku/adjust', pathParams(skuPath), jsonBody(adjustBody), async (c) => {
    const { sku } = c.req.valid('param');
    const body = c.req.valid('json');
    if ((await getStockLevels(deps.db, body.region, [sku])).length === 0) {
      throw new AppError('not_found', `SKU ${sku} is not stocked in region ${body.region}`);
    }
    await setAvailable(deps.db, sku, body.region, body.available);
    return c.json(await stockAfterChange(sku, body.region));
  });

  app.post('/flash-sales', jsonBody(saleBody), async (c) => {
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

  app.get('/flash-sales', async (c) => c.json({ flashSales: (await listFlashSales(deps.db, 100)).map(presentSale) }));

  app.post('/flash-sales/:id/end', pathParams(salePath), noBody(), async (c) => {
    const { id } = c.req.valid('param');
    const sale = await endFlashSale(deps.db, id);
    if (!sale) throw new AppError('conflict', `Flash sale ${id} does not exist or has ended already`);
    return c.json(presentSale(sale));
  });

  app.get('/hot-skus', async (c) => {
    const all = await deps.redis.hgetall(deps.keys.hotSkus);
    // An entry that is not a hot SKU is left out; the controller drops it when it next starts.
    return c.json({ hotSkus: Object.values(all).flatMap((raw) => parseHotSku(raw) ?? []) });
  });

  // An operator's change shows at once: the fresh cached copy goes (the controller does the same for
  // hot SKUs on every change; other SKUs otherwise rely on their TTL).
  async function stockAfterChange(sku: string, regionName: string) {
    await deps.cache.invalidate([deps.keys.stock(regionName, sku)]);
    const [level] = await getStockLevels(deps.db, regionName, [sku]);
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
