import { z } from 'zod';
import { type Db, sql } from '../../sql/database.ts';

export type Snapshot = {
  rows: Record<string, number>;
  stock: string[];
  orders: string[];
  deadLetters: string[];
  flashSales: string[];
};

/**
 * What a request could change in PostgreSQL: the row count of every table, every stock level, and the
 * statuses of the rows an action route moves (orders, dead letters, flash sales).
 */
export async function takeSnapshot(db: Db): Promise<Snapshot> {
  const tables = await db.any(sql.type(z.object({ name: z.string() }))`
    SELECT table_name AS name FROM information_schema.tables
    WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`);
  const rows: Record<string, number> = {};
  for (const { name } of tables) {
    rows[name] = await db.oneFirst(
      sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM ${sql.identifier([name])}`,
    );
  }
  const line = z.object({ line: z.string() });
  const lines = async (query: ReturnType<ReturnType<typeof sql.type<typeof line>>>) =>
    (await db.any(query)).map((r) => r.line);
  return {
    rows,
    stock: await lines(sql.type(line)`
      SELECT concat_ws(' ', sku, region, on_hand, available, reserved, shipped, restock_date) AS line
      FROM inventory ORDER BY sku, region`),
    orders: await lines(sql.type(line)`SELECT concat_ws(' ', id, status, generation) AS line FROM orders ORDER BY id`),
    deadLetters: await lines(sql.type(line)`
      SELECT concat_ws(' ', id, status, retries, note) AS line FROM dead_letters ORDER BY id`),
    flashSales: await lines(sql.type(line)`
      SELECT concat_ws(' ', id, ends_at, ended_at) AS line FROM flash_sales ORDER BY id`),
  };
}

/** Every difference between two snapshots, one line each. */
export function diffSnapshots(before: Snapshot, after: Snapshot): string[] {
  const changes: string[] = [];
  for (const table of new Set([...Object.keys(before.rows), ...Object.keys(after.rows)])) {
    if (before.rows[table] !== after.rows[table]) {
      changes.push(`${table}: ${before.rows[table]} rows before, ${after.rows[table]} after`);
    }
  }
  for (const key of ['stock', 'orders', 'deadLetters', 'flashSales'] as const) {
    const was = new Set(before[key]);
    const now = new Set(after[key]);
    for (const l of before[key]) if (!now.has(l)) changes.push(`${key}: "${l}" changed or gone`);
    for (const l of after[key]) if (!was.has(l)) changes.push(`${key}: now "${l}"`);
  }
  return changes;
}
