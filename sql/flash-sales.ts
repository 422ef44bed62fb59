import { z } from 'zod';
import { type Db, sql } from './database.ts';

const flashSaleRow = z.object({
  id: z.coerce.number(),
  name: z.string(),
  region: z.string(),
  skus: z.array(z.string()),
  starts_at: z.number(),
  ends_at: z.number(),
  purchase_limit: z.number().nullable(),
  ended_at: z.number().nullable(),
  created_at: z.number(),
});
export type FlashSale = z.infer<typeof flashSaleRow>;

export async function createFlashSale(
  db: Db,
  s: { name: string; region: string; skus: string[]; startsAt: Date; endsAt: Date; purchaseLimit: number | null },
): Promise<FlashSale> {
  return db.one(sql.type(flashSaleRow)`
    INSERT INTO flash_sales (name, region, skus, starts_at, ends_at, purchase_limit)
    VALUES (${s.name}, ${s.region}, ${sql.array(s.skus, 'text')}, ${sql.timestamp(s.startsAt)}, ${sql.timestamp(s.endsAt)},
            ${s.purchaseLimit})
    RETURNING *`);
}

/** Declared sales not ended by hand whose window has not closed yet (current and upcoming). */
export async function listOpenFlashSales(db: Db): Promise<readonly FlashSale[]> {
  return db.any(sql.type(flashSaleRow)`
    SELECT * FROM flash_sales WHERE ended_at IS NULL AND ends_at > now() ORDER BY starts_at, id`);
}

export async function listFlashSales(db: Db, limit: number): Promise<readonly FlashSale[]> {
  return db.any(sql.type(flashSaleRow)`SELECT * FROM flash_sales ORDER BY id DESC LIMIT ${limit}`);
}

/** Ends a sale now; null if it does not exist or had ended already. */
export async function endFlashSale(db: Db, id: number): Promise<FlashSale | null> {
  return db.maybeOne(sql.type(flashSaleRow)`
    UPDATE flash_sales SET ended_at = now()
    WHERE id = ${id} AND ended_at IS NULL AND ends_at > now()
    RETURNING *`);
}
