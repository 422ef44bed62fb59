import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import type { TestProject } from 'vitest/node';
import { serversForRun } from '../../scripts/local-servers.ts';
import { migrate } from '../../sql/migrate.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A connection that may create and drop databases. */
    adminDatabaseUrl: string;
    redisUrl: string;
    templateDatabase: string;
  }
}

// Chooses the run's PostgreSQL and Redis (the only reader of TEST_DATABASE_URL and TEST_REDIS_URL):
// the ones named, else the local defaults when they answer, else servers started for this run and
// stopped at its end (scripts/local-servers.ts). Then migrates one template database; each test file
// clones it (CREATE DATABASE … TEMPLATE), which takes milliseconds and gives every file a database of
// its own. Test files get all three through inject() (test/support/env.ts).
export default async function setup(project: TestProject) {
  const servers = await serversForRun({
    databaseUrl: process.env.TEST_DATABASE_URL,
    redisUrl: process.env.TEST_REDIS_URL,
    variables: { database: 'TEST_DATABASE_URL', redis: 'TEST_REDIS_URL' },
    // A throwaway cluster: durability buys nothing here.
    postgresSettings: { fsync: 'off', max_connections: '200' },
    log: (message) => console.log(`[test servers] ${message}`),
  });
  const name = `orderflow_template_${randomBytes(4).toString('hex')}`;
  try {
    await adminQuery(`CREATE DATABASE "${name}"`, servers.adminDatabaseUrl);
    const url = new URL(servers.adminDatabaseUrl);
    url.pathname = `/${name}`;
    await migrate(url.toString());
  } catch (error) {
    await servers.stop();
    throw error;
  }
  project.provide('adminDatabaseUrl', servers.adminDatabaseUrl);
  project.provide('redisUrl', servers.redisUrl);
  project.provide('templateDatabase', name);
  return async () => {
    try {
      await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`, servers.adminDatabaseUrl);
    } finally {
      await servers.stop();
    }
  };
}

/** Runs a statement on the admin connection: in a test file, the run's (inject). */
export async function adminQuery(text: string, url: string = inject('adminDatabaseUrl')): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}
