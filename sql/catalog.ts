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

export async function findCatalogItems(db: Db | Tx, skus: readonly string[]): Promise<CatalogItem[]> {
  const rows = await db.any(sql.type(catalogRow)`
    SELECT sku, name, price_cents, currency, final_sale FROM catalog WHERE sku = ANY(${sql.array([...skus], 'text')})`);
  return [...rows];
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
