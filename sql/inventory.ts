import { z } from 'zod';
import type { StockMovementKind } from '../domain/stock-movements.ts';
import { type Db, sql, type Tx } from './database.ts';
import type { OrderRun } from './step-attempts.ts';

const stockRow = z.object({
  sku: z.string(),
  region: z.string(),
  on_hand: z.number(),
  available: z.number(),
  reserved: z.number(),
  shipped: z.number(),
  restock_date: z.string().nullable(),
  updated_at: z.number(),
});
export type StockLevel = z.infer<typeof stockRow>;

export async function getStockLevels(db: Db | Tx, region: string, skus: readonly string[]): Promise<StockLevel[]> {
  const rows = await db.any(sql.type(stockRow)`
    SELECT sku, region, on_hand, available, reserved, shipped, restock_date::text, updated_at
    FROM inventory WHERE region = ${region} AND sku = ANY(${sql.array([...skus], 'text')})`);
  return [...rows];
}

type OrderMovement = Extract<StockMovementKind, 'reserve' | 'release' | 'ship' | 'unship'>;
type Movement = { sku: string; region: string; quantity: number } & (
  | { kind: OrderMovement; run: OrderRun }
  | { kind: Exclude<StockMovementKind, OrderMovement>; run?: undefined }
);

const moved = z.object({ result: z.enum(['moved', 'done', 'short']) });

/**
 * One stock change and its movement row (the inventory event): move_stock in migration 003, which the
 * steps' commits use too. The inventory row is locked first, so an order's movement is applied once and
 * the movements of one SKU get ids in commit order. 'short': a reservation found too little stock;
 * 'done': the order's movement exists already.
 */
async function moveStock(tx: Tx, m: Movement): Promise<'moved' | 'done' | 'short'> {
  return tx.oneFirst(sql.type(moved)`
    SELECT move_stock(${m.kind}, ${m.sku}, ${m.region}, ${m.quantity}, ${m.run?.orderId ?? null},
                      ${m.run?.generation ?? null}) AS result`);
}

/** Gives reserved units back to `available`, for lines that were reserved and not released or shipped. */
export async function releaseStock(tx: Tx, run: OrderRun): Promise<number> {
  let released = 0;
  for (const m of await movements(tx, run, 'reserve')) {
    const shipped = (await hasMovement(tx, run, m.sku, 'ship')) && !(await hasMovement(tx, run, m.sku, 'unship'));
    if (shipped) continue;
    if ((await moveStock(tx, { kind: 'release', run, ...m })) === 'moved') released += 1;
  }
  return released;
}

/** Moves the order's reserved units to shipped. */
export async function shipStock(tx: Tx, run: OrderRun): Promise<void> {
  for (const m of await movements(tx, run, 'reserve')) await moveStock(tx, { kind: 'ship', run, ...m });
}

/** A cancelled shipment puts its units back among the reserved ones (releaseStock then frees them). */
export async function unshipStock(tx: Tx, run: OrderRun): Promise<void> {
  for (const m of await movements(tx, run, 'ship')) await moveStock(tx, { kind: 'unship', run, ...m });
}

/** Goods received: adds to on hand and available, and records when the next delivery is due. */
export async function restockStock(
  tx: Tx,
  r: { sku: string; region: string; quantity: number; nextRestockDate?: string | null },
): Promise<'moved' | 'short'> {
  const result = await moveStock(tx, { kind: 'restock', sku: r.sku, region: r.region, quantity: r.quantity });
  if (result === 'moved' && r.nextRestockDate !== undefined) {
    await tx.query(sql.typeAlias('void')`
      UPDATE inventory SET restock_date = ${r.nextRestockDate}::date WHERE sku = ${r.sku} AND region = ${r.region}`);
  }
  return result === 'moved' ? 'moved' : 'short';
}

/** A stock adjustment (a count, breakage): sets what is available; on_hand follows. */
export async function setAvailable(db: Db | Tx, sku: string, region: string, available: number): Promise<void> {
  const apply = async (tx: Tx) => {
    await addStockIfMissing(tx, sku, region, 0);
    const current = await tx.oneFirst(sql.type(z.object({ available: z.number() }))`
      SELECT available FROM inventory WHERE sku = ${sku} AND region = ${region} FOR UPDATE`);
    if (current !== available) await moveStock(tx, { kind: 'adjust', sku, region, quantity: available - current });
  };
  // In a transaction already, this nests as a savepoint.
  await db.transaction(apply);
}

/** Creates the stock row of a SKU in a region unless it exists (demo seed). */
export async function addStockIfMissing(db: Db | Tx, sku: string, region: string, available: number): Promise<void> {
  await db.query(sql.typeAlias('void')`
    INSERT INTO inventory (sku, region, on_hand, available) VALUES (${sku}, ${region}, ${available}, ${available})
    ON CONFLICT (sku, region) DO NOTHING`);
}

async function movements(tx: Tx, run: OrderRun, kind: OrderMovement) {
  return tx.any(sql.type(z.object({ sku: z.string(), region: z.string(), quantity: z.number() }))`
    SELECT sku, region, quantity FROM stock_movements
    WHERE order_id = ${run.orderId} AND generation = ${run.generation} AND kind = ${kind} ORDER BY sku`);
}

async function hasMovement(tx: Tx, run: OrderRun, sku: string, kind: OrderMovement): Promise<boolean> {
  return tx.exists(sql.type(z.object({ exists: z.boolean() }))`
    SELECT 1 FROM stock_movements
    WHERE order_id = ${run.orderId} AND generation = ${run.generation} AND sku = ${sku} AND kind = ${kind}`);
}
