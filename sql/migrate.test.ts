import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listMigrations, migrate } from './migrate.ts';

// Runs against the real PostgreSQL: each database is created fresh for this file and dropped after it.
// The run's server is chosen by test/support/global-setup.ts.
const adminUrl = inject('adminDatabaseUrl');

const admin = new pg.Client({ connectionString: adminUrl });
const databases: string[] = [];
const clients: pg.Client[] = [];

async function createDatabase(): Promise<string> {
  const name = `orderflow_migrate_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE "${name}"`);
  databases.push(name);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  clients.push(client);
  await client.connect();
  return client;
}

async function versions(): Promise<string[]> {
  return (await listMigrations()).map((file) => file.replace(/\.sql$/, ''));
}

beforeAll(async () => {
  await admin.connect();
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.end()));
  for (const name of databases) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
});

describe('migrate', () => {
  let url: string;
  let db: pg.Client;
  let first: { applied: string[] };

  beforeAll(async () => {
    url = await createDatabase();
    first = await migrate(url);
    db = await connect(url);
  });

  it('applies every migration, starting with 001_initial, to a fresh database', async () => {
    expect(first.applied[0]).toBe('001_initial');
    expect(first.applied).toEqual(await versions());
  });

  it('records each applied migration in schema_migrations', async () => {
    const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(await versions());
  });

  it('applies nothing when run again', async () => {
    expect(await migrate(url)).toEqual({ applied: [] });
  });

  it('creates the tables', async () => {
    const { rows } = await db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
    );
    expect(rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining([
        'customers',
        'api_keys',
        'catalog',
        'inventory',
        'orders',
        'order_items',
        'order_history',
        'step_attempts',
        'stock_movements',
        'payments',
        'shipments',
        'notifications',
        'compensations',
        'idempotency_keys',
      ]),
    );
  });

  describe('the schema it creates', () => {
    const orderId = randomUUID();

    beforeAll(async () => {
      await db.query(`INSERT INTO customers (id, name, email) VALUES ('cus_1', 'Ada', 'ada@example.com')`);
      await db.query(`INSERT INTO catalog (sku, name, price_cents, currency) VALUES ('MUG', 'Mug', 1250, 'EUR')`);
      await db.query(
        `INSERT INTO orders (id, customer_id, status, region, currency, total_cents, shipping_address, payment_token)
         VALUES ($1, 'cus_1', 'PENDING', 'eu', 'EUR', 1250, $2, 'tok_visa')`,
        [orderId, JSON.stringify({ name: 'Ada', line1: '1 Road', city: 'London', postalCode: 'N1', country: 'GB' })],
      );
      await db.query(
        `INSERT INTO order_history (order_id, from_status, to_status, actor, reason)
         VALUES ($1, NULL, 'PENDING', 'api', 'order placed')`,
        [orderId],
      );
    });

    it('accepts an inventory row whose counts add up', async () => {
      await db.query(
        `INSERT INTO inventory (sku, region, on_hand, available, reserved, shipped) VALUES ('MUG', 'ok', 10, 6, 3, 1)`,
      );
      const { rows } = await db.query(`SELECT on_hand FROM inventory WHERE sku = 'MUG' AND region = 'ok'`);
      expect(rows).toEqual([{ on_hand: 10 }]);
    });

    it('refuses an inventory row with negative available stock', async () => {
      await expect(
        db.query(
          `INSERT INTO inventory (sku, region, on_hand, available, reserved, shipped) VALUES ('MUG', 'neg', -1, -1, 0, 0)`,
        ),
      ).rejects.toMatchObject({ code: '23514', constraint: 'inventory_available_check' });
    });

    it('refuses an inventory row where on_hand is not available + reserved + shipped', async () => {
      await expect(
        db.query(
          `INSERT INTO inventory (sku, region, on_hand, available, reserved, shipped) VALUES ('MUG', 'lost', 10, 5, 3, 1)`,
        ),
      ).rejects.toMatchObject({ code: '23514', constraint: 'inventory_check' });
    });

    it('refuses an update that would leave available below zero', async () => {
      await db.query(
        `INSERT INTO inventory (sku, region, on_hand, available, reserved, shipped) VALUES ('MUG', 'short', 10, 6, 3, 1)`,
      );
      await expect(
        db.query(
          `UPDATE inventory SET available = available - 7, reserved = reserved + 7 WHERE sku = 'MUG' AND region = 'short'`,
        ),
      ).rejects.toMatchObject({ code: '23514', constraint: 'inventory_available_check' });
    });

    it('refuses an UPDATE of order_history', async () => {
      await expect(
        db.query(`UPDATE order_history SET reason = 'rewritten' WHERE order_id = $1`, [orderId]),
      ).rejects.toMatchObject({ code: 'P0001', message: 'order_history is append-only' });
    });

    it('refuses a DELETE from order_history', async () => {
      await expect(db.query(`DELETE FROM order_history WHERE order_id = $1`, [orderId])).rejects.toMatchObject({
        code: 'P0001',
        message: 'order_history is append-only',
      });
      const { rows } = await db.query('SELECT to_status FROM order_history WHERE order_id = $1', [orderId]);
      expect(rows).toEqual([{ to_status: 'PENDING' }]);
    });

    it('refuses an order in a status the state machine does not know', async () => {
      await expect(
        db.query(
          `INSERT INTO orders (id, customer_id, status, region, currency, total_cents, shipping_address, payment_token)
           VALUES ($1, 'cus_1', 'SHIPPED', 'eu', 'EUR', 0, '{}', 'tok')`,
          [randomUUID()],
        ),
      ).rejects.toMatchObject({ code: '23514', constraint: 'orders_status_check' });
    });

    it('allows only one succeeded attempt per order and step', async () => {
      const insert = `INSERT INTO step_attempts (order_id, generation, step, attempt, worker, outcome) VALUES ($1, 1, 'validate', $2, 'w1', 'succeeded')`;
      await db.query(insert, [orderId, 1]);
      await expect(db.query(insert, [orderId, 2])).rejects.toMatchObject({
        code: '23505',
        constraint: 'step_attempts_one_success',
      });
    });
  });
});

describe('migrate run twice at once', () => {
  it('applies each migration exactly once without error', async () => {
    const url = await createDatabase();
    const [a, b] = await Promise.all([migrate(url), migrate(url)]);
    expect([...a.applied, ...b.applied].sort()).toEqual(await versions());
    const db = await connect(url);
    const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(await versions());
  });
});
