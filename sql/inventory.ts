import { z } from 'zod';
import { BusinessError } from '../domain/errors.ts';
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
});
export type StockLevel = z.infer<typeof stockRow>;

export type StockLine = { sku: string; quantity: number };

export async function getStockLevels(db: Db | Tx, region: string, skus: readonly string[]): Promise<StockLevel[]> {
  const rows = await db.any(sql.type(stockRow)`
    SELECT sku, region, on_hand, available, reserved, shipped, restock_date::text
    FROM inventory WHERE region = ${region} AND sku = ANY(${sql.array([...skus], 'text')})`);
  return [...rows];
}

// Each movement is recorded once per order and generation (unique index), and the inventory row only changes when the
// movement row was new: running the same reservation, release or shipment twice changes nothing.
async function recordMovement(
  tx: Tx,
  m: OrderRun & { region: string; sku: string; kind: 'reserve' | 'release' | 'ship' | 'unship'; quantity: number },
): Promise<boolean> {
  const inserted = await tx.maybeOne(sql.type(z.object({ id: z.coerce.number() }))`
    INSERT INTO stock_movements (order_id, generation, sku, region, kind, quantity)
    VALUES (${m.orderId}, ${m.generation}, ${m.sku}, ${m.region}, ${m.kind}, ${m.quantity})
    ON CONFLICT (order_id, generation, sku, region, kind) WHERE order_id IS NOT NULL DO NOTHING
    RETURNING id`);
  return inserted !== null;
}

/**
 * Reserves every line or none: the conditional UPDATE cannot take `available` below zero, so two
 * orders racing for the last unit cannot both win. Throws out_of_stock (rolling the transaction back).
 */
export async function reserveStock(tx: Tx, run: OrderRun, region: string, lines: readonly StockLine[]): Promise<void> {
  const short: Array<{ sku: string; requested: number }> = [];
  for (const line of lines) {
    if (!(await recordMovement(tx, { ...run, region, sku: line.sku, quantity: line.quantity, kind: 'reserve' })))
      continue;
    const updated = await tx.maybeOne(sql.type(z.object({ sku: z.string() }))`
      UPDATE inventory SET available = available - ${line.quantity}, reserved = reserved + ${line.quantity},
             updated_at = now()
      WHERE sku = ${line.sku} AND region = ${region} AND available >= ${line.quantity}
      RETURNING sku`);
    if (!updated) short.push({ sku: line.sku, requested: line.quantity });
  }
  if (short.length > 0) {
    throw new BusinessError('out_of_stock', `Not enough stock for ${short.map((s) => s.sku).join(', ')}`, short);
  }
}

/** Gives reserved units back to `available`, for lines that were reserved and not released or shipped. */
export async function releaseStock(tx: Tx, run: OrderRun): Promise<number> {
  let released = 0;
  for (const m of await movements(tx, run, 'reserve')) {
    const shipped = (await hasMovement(tx, run, m.sku, 'ship')) && !(await hasMovement(tx, run, m.sku, 'unship'));
    if (shipped) continue;
    if (!(await recordMovement(tx, { ...run, ...m, kind: 'release' }))) continue;
    await tx.query(sql.typeAlias('void')`
      UPDATE inventory SET available = available + ${m.quantity}, reserved = reserved - ${m.quantity}, updated_at = now()
      WHERE sku = ${m.sku} AND region = ${m.region}`);
    released += 1;
  }
  return released;
}

/** Moves the order's reserved units to shipped. */
export async function shipStock(tx: Tx, run: OrderRun): Promise<void> {
  for (const m of await movements(tx, run, 'reserve')) {
    if (!(await recordMovement(tx, { ...run, ...m, kind: 'ship' }))) continue;
    await tx.query(sql.typeAlias('void')`
      UPDATE inventory SET reserved = reserved - ${m.quantity}, shipped = shipped + ${m.quantity}, updated_at = now()
      WHERE sku = ${m.sku} AND region = ${m.region}`);
  }
}

/** A cancelled shipment puts its units back among the reserved ones (releaseStock then frees them). */
export async function unshipStock(tx: Tx, run: OrderRun): Promise<void> {
  for (const m of await movements(tx, run, 'ship')) {
    if (!(await recordMovement(tx, { ...run, ...m, kind: 'unship' }))) continue;
    await tx.query(sql.typeAlias('void')`
      UPDATE inventory SET shipped = shipped - ${m.quantity}, reserved = reserved + ${m.quantity}, updated_at = now()
      WHERE sku = ${m.sku} AND region = ${m.region}`);
  }
}

async function movements(tx: Tx, run: OrderRun, kind: string) {
  return tx.any(sql.type(z.object({ sku: z.string(), region: z.string(), quantity: z.number() }))`
    SELECT sku, region, quantity FROM stock_movements
    WHERE order_id = ${run.orderId} AND generation = ${run.generation} AND kind = ${kind} ORDER BY sku`);
}

async function hasMovement(tx: Tx, run: OrderRun, sku: string, kind: string): Promise<boolean> {
  return tx.exists(sql.type(z.object({ exists: z.boolean() }))`
    SELECT 1 FROM stock_movements
    WHERE order_id = ${run.orderId} AND generation = ${run.generation} AND sku = ${sku} AND kind = ${kind}`);
}

/** A stock adjustment: sets what is available, keeping on_hand = available + reserved + shipped. */
export async function setAvailable(db: Db | Tx, sku: string, region: string, available: number): Promise<void> {
  await db.query(sql.typeAlias('void')`
    INSERT INTO inventory (sku, region, on_hand, available)
    VALUES (${sku}, ${region}, ${available}, ${available})
    ON CONFLICT (sku, region) DO UPDATE
    SET on_hand = inventory.reserved + inventory.shipped + EXCLUDED.available,
        available = EXCLUDED.available, updated_at = now()`);
}

/** Creates the stock row of a SKU in a region unless it exists (demo seed). */
export async function addStockIfMissing(db: Db | Tx, sku: string, region: string, available: number): Promise<void> {
  await db.query(sql.typeAlias('void')`
    INSERT INTO inventory (sku, region, on_hand, available) VALUES (${sku}, ${region}, ${available}, ${available})
    ON CONFLICT (sku, region) DO NOTHING`);
}
