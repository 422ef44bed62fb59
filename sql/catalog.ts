import { z } from 'zod';
import { type Db, sql, type Tx } from './database.ts';

const catalogRow = z.object({
  sku: z.string(),
  name: z.string(),
  price_cents: z.number(),
  currency: z.string(),
  final_sale: z.boolean(),
});
export type CatalogItem = z.infer<typeof catalogRow>;

const sellableRow = catalogRow.extend({ stocked: z.boolean() });
export type SellableItem = z.infer<typeof sellableRow>;

/** The catalog rows of these SKUs, each saying whether the region stocks it: one round trip for an order. */
export async function findSellableItems(db: Db | Tx, region: string, skus: readonly string[]): Promise<SellableItem[]> {
  const rows = await db.any(sql.type(sellableRow)`
    SELECT c.sku, c.name, c.price_cents, c.currency, c.final_sale,
           EXISTS (SELECT 1 FROM inventory i WHERE i.sku = c.sku AND i.region = ${region}) AS stocked
    FROM catalog c WHERE c.sku = ANY(${sql.array([...skus], 'text')})`);
  return [...rows];
}

/** The whole catalog, by SKU: the support assistant matches a product the customer names against it. */
export async function listCatalog(db: Db | Tx): Promise<readonly CatalogItem[]> {
  return db.any(sql.type(catalogRow)`SELECT sku, name, price_cents, currency, final_sale FROM catalog ORDER BY sku`);
}

export async function upsertCatalogItem(db: Db | Tx, item: CatalogItem): Promise<void> {
  await db.query(sql.typeAlias('void')`
    INSERT INTO catalog (sku, name, price_cents, currency, final_sale)
    VALUES (${item.sku}, ${item.name}, ${item.price_cents}, ${item.currency}, ${item.final_sale})
    ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,
      currency = EXCLUDED.currency, final_sale = EXCLUDED.final_sale`);
}

export async function findCustomerEmail(db: Db | Tx, customerId: string): Promise<string | null> {
  return db.maybeOneFirst(
    sql.type(z.object({ email: z.string() }))`SELECT email FROM customers WHERE id = ${customerId}`,
  );
}

export async function upsertCustomer(db: Db | Tx, c: { id: string; name: string; email: string }): Promise<void> {
  await db.query(sql.typeAlias('void')`
    INSERT INTO customers (id, name, email) VALUES (${c.id}, ${c.name}, ${c.email})
    ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email`);
}
