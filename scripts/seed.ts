import { orExit } from '../config/index.ts';
import { createApiKey, revokeApiKeysNamed } from '../sql/api-keys.ts';
import { upsertCatalogItem, upsertCustomer } from '../sql/catalog.ts';
import { createDatabase } from '../sql/database.ts';
import { addStockIfMissing } from '../sql/inventory.ts';

// Demo data: a small manga store in two regions, three customers, and API keys. Safe to run again:
// the catalog and customers are upserted, stock is only added where a SKU has none yet (a restart keeps
// what was sold), and the demo keys are replaced (a key is only shown when created, so each run prints
// fresh ones).

const catalog = [
  { sku: 'BERSERK-41', name: 'Berserk, Vol. 41', price_cents: 1499, final_sale: false },
  { sku: 'BERSERK-42', name: 'Berserk, Vol. 42', price_cents: 1999, final_sale: false },
  { sku: 'ONEPIECE-105', name: 'One Piece, Vol. 105', price_cents: 999, final_sale: false },
  { sku: 'CHAINSAW-05', name: 'Chainsaw Man, Vol. 5', price_cents: 1199, final_sale: false },
  { sku: 'FRIEREN-01-LTD', name: "Frieren, Vol. 1 (Collector's Edition)", price_cents: 4999, final_sale: true },
  { sku: 'VAGABOND-VIZBIG-01', name: 'Vagabond VIZBIG Edition, Vol. 1', price_cents: 2499, final_sale: false },
];
const stock: Record<string, Record<string, number>> = {
  eu: {
    'BERSERK-41': 40,
    'BERSERK-42': 25,
    'ONEPIECE-105': 200,
    'CHAINSAW-05': 60,
    'FRIEREN-01-LTD': 5,
    'VAGABOND-VIZBIG-01': 0,
  },
  us: { 'BERSERK-41': 30, 'BERSERK-42': 30, 'ONEPIECE-105': 300, 'CHAINSAW-05': 80, 'FRIEREN-01-LTD': 3 },
};
/** The shipping address of the demo orders (tests, benchmarks, the fault suite). */
export const demoAddress = {
  name: 'Ada Lovelace',
  line1: '12 St James Sq',
  city: 'London',
  postalCode: 'SW1Y 4JH',
  country: 'GB',
};

const customers = [
  { id: 'cust_ada', name: 'Ada Lovelace', email: 'ada@example.com' },
  { id: 'cust_grace', name: 'Grace Hopper', email: 'grace@example.com' },
  { id: 'cust_alan', name: 'Alan Turing', email: 'alan@example.com' },
];

export type DemoKeys = {
  adminKey: string;
  customers: Array<{ customerId: string; name: string; apiKey: string }>;
  skus: string[];
};

export async function seedDemo(databaseUrl: string): Promise<DemoKeys> {
  const db = await createDatabase({ url: databaseUrl, poolSize: 2, statementTimeoutMs: 30_000 });
  try {
    return await db.transaction(async (tx) => {
      for (const item of catalog) await upsertCatalogItem(tx, { ...item, currency: 'EUR' });
      for (const [region, levels] of Object.entries(stock)) {
        for (const [sku, available] of Object.entries(levels)) await addStockIfMissing(tx, sku, region, available);
      }
      const keys: DemoKeys['customers'] = [];
      for (const customer of customers) {
        await upsertCustomer(tx, customer);
        const name = `demo-${customer.id}`;
        await revokeApiKeysNamed(tx, name);
        keys.push({
          customerId: customer.id,
          name: customer.name,
          apiKey: await createApiKey(tx, { name, role: 'customer', customerId: customer.id }),
        });
      }
      await revokeApiKeysNamed(tx, 'demo-admin');
      const adminKey = await createApiKey(tx, { name: 'demo-admin', role: 'admin', customerId: null });
      return { adminKey, customers: keys, skus: catalog.map((c) => c.sku) };
    });
  } finally {
    await db.end();
  }
}

if (import.meta.main) {
  const { loadDatabaseUrl } = await import('../config/index.ts');
  const keys = await seedDemo(orExit(() => loadDatabaseUrl()));
  console.log(`Seeded ${catalog.length} products in regions ${Object.keys(stock).join(', ')}.\n`);
  console.log(`admin key:            ${keys.adminKey}`);
  for (const c of keys.customers) console.log(`customer ${c.customerId.padEnd(11)} ${c.apiKey}   (${c.name})`);
  console.log('\nKeys are stored hashed: this is the only time they are shown.');
}
