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
  updated_at: z.number(),
});
export type StockLevel = z.infer<typeof stockRow>;

export type StockLine = { sku: string; quantity: number };

export async function getStockLevels(db: Db | Tx, region: string, skus: readonly string[]): Promise<StockLevel[]> {
  const rows = await db.any(sql.type(stockRow)`
    SELECT sku, region, on_hand, available, reserved, shipped, restock_date::text, updated_at
    FROM inventory WHERE region = ${region} AND sku = ANY(${sql.array([...skus], 'text')})`);
  return [...rows];
}

type OrderMovement = 'reserve' | 'release' | 'ship' | 'unship';
type Movement = { sku: string; region: string; quantity: number } & (
  | { kind: OrderMovement; run: OrderRun }
  | { kind: 'restock' | 'adjust'; run?: undefined }
);

// How each kind of movement changes the counts. The WHERE of the reservation is what makes oversell
// impossible; the CHECKs on the table back it up for every other kind.
const changes = {
  reserve: (q: number) => sql.fragment`available = available - ${q}, reserved = reserved + ${q}`,
  release: (q: number) => sql.fragment`available = available + ${q}, reserved = reserved - ${q}`,
  ship: (q: number) => sql.fragment`reserved = reserved - ${q}, shipped = shipped + ${q}`,
  unship: (q: number) => sql.fragment`shipped = shipped - ${q}, reserved = reserved + ${q}`,
  restock: (q: number) => sql.fragment`on_hand = on_hand + ${q}, available = available + ${q}`,
  adjust: (q: number) => sql.fragment`on_hand = on_hand + ${q}, available = available + ${q}`,
};

/**
 * One stock change and its movement row (the inventory event), in the caller's transaction. The
 * inventory row is locked first, so an order's movement is applied once (it is looked for under the
 * lock) and the movements of one SKU get ids in commit order. Returns 'short' when a reservation finds
 * too little stock, 'done' when the order's movement already exists.
 */
async function moveStock(tx: Tx, m: Movement): Promise<'moved' | 'done' | 'short'> {
  const locked = await tx.maybeOne(sql.type(z.object({ available: z.number() }))`
    SELECT available FROM inventory WHERE sku = ${m.sku} AND region = ${m.region} FOR UPDATE`);
  if (!locked) return 'short';
  if (m.run) {
    const exists = await tx.exists(sql.type(z.object({ exists: z.boolean() }))`
      SELECT 1 FROM stock_movements WHERE order_id = ${m.run.orderId} AND generation = ${m.run.generation}
        AND sku = ${m.sku} AND region = ${m.region} AND kind = ${m.kind}`);
    if (exists) return 'done';
  }
  const guard = m.kind === 'reserve' ? sql.fragment`AND available >= ${m.quantity}` : sql.fragment``;
  const availableAfter = await tx.maybeOneFirst(sql.type(z.object({ available: z.number() }))`
    UPDATE inventory SET ${changes[m.kind](m.quantity)}, updated_at = now()
    WHERE sku = ${m.sku} AND region = ${m.region} ${guard}
    RETURNING available`);
  if (availableAfter === null) return 'short';
  await tx.query(sql.typeAlias('void')`
    INSERT INTO stock_movements (order_id, generation, sku, region, kind, quantity, available_after)
    VALUES (${m.run?.orderId ?? null}, ${m.run?.generation ?? null}, ${m.sku}, ${m.region}, ${m.kind},
            ${m.quantity}, ${availableAfter})`);
  return 'moved';
}

/**
 * Reserves every line or none: the conditional UPDATE cannot take `available` below zero, so two
 * orders racing for the last unit cannot both win. Throws out_of_stock (rolling the transaction back).
 */
export async function reserveStock(tx: Tx, run: OrderRun, region: string, lines: readonly StockLine[]): Promise<void> {
  const short: Array<{ sku: string; requested: number }> = [];
  // Lines in SKU order, so two orders locking the same rows cannot deadlock.
  for (const line of [...lines].sort((a, b) => (a.sku < b.sku ? -1 : 1))) {
    const result = await moveStock(tx, { kind: 'reserve', run, region, sku: line.sku, quantity: line.quantity });
    if (result === 'short') short.push({ sku: line.sku, requested: line.quantity });
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
