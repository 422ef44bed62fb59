import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';

// Migrations are numbered .sql files, applied in order, each in its own transaction, and recorded in
// schema_migrations. An advisory lock serialises concurrent runners (two containers starting at once):
// the second waits, then finds everything applied. This is the one place that runs raw SQL text.

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');
const LOCK_ID = 7_312_001; // any constant; identifies "orderflow migrations" among advisory locks

export async function listMigrations(): Promise<string[]> {
  const files = await readdir(MIGRATIONS_DIR);
  return files.filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort();
}

export async function migrate(databaseUrl: string): Promise<{ applied: string[] }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  // PostgreSQL ending the connection between two queries (a restart) is an 'error' event, which pg
  // throws at the process when nobody listens; the next query then fails, only "not queryable".
  let lost: Error | undefined;
  client.on('error', (error) => {
    lost ??= error;
  });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_ID]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await client.query<{ version: string }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
    for (const file of await listMigrations()) {
      const version = file.replace(/\.sql$/, '');
      if (done.has(version)) continue;
      const text = await readFile(join(MIGRATIONS_DIR, file), 'utf8');
      try {
        await client.query('BEGIN');
        await client.query(text);
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`Migration ${file} failed: ${(error as Error).message}`, { cause: error });
      }
      applied.push(version);
    }
  } catch (error) {
    throw lost ? new Error(`PostgreSQL ended the migration connection: ${lost.message}`, { cause: lost }) : error;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_ID]).catch(() => {});
    await client.end();
  }
  return { applied };
}

if (import.meta.main) {
  const { loadDatabaseUrl, orExit } = await import('../config/index.ts');
  const url = orExit(() => loadDatabaseUrl());
  const { applied } = await migrate(url);
  console.log(applied.length ? `Applied ${applied.join(', ')}` : 'Database is up to date');
}
