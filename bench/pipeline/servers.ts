import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { serversForRun } from '../../scripts/local-servers.ts';
import { adminQuery } from '../support.ts';
import { parentOf } from './proc-stat.ts';

// The bench's own PostgreSQL (with pg_stat_statements) and Redis, started for the run whatever answers
// on the default ports, so that every statistic read is the run's alone. The application's database
// is migrated by the project's own command; the bench reads statistics as a user of its own, so that
// its monitoring queries can be told apart from the application's.

export const APP_DATABASE = 'orderflow';
export const MONITOR_USER = 'bench_monitor';

export type BenchServers = {
  /** The application's database, as the application's user. */
  appUrl: string;
  /** The application's database, as the monitoring user: the bench's polling. */
  monitorAppUrl: string;
  /** The `postgres` database, as the monitoring user: statistics views (their reads commit elsewhere). */
  monitorStatsUrl: string;
  redisUrl: string;
  postgresPid: number;
  redisPid: number;
  postgresVersion: string;
};

const run = promisify(execFile);
const STATEMENT_SETTINGS = {
  shared_preload_libraries: 'pg_stat_statements',
  'pg_stat_statements.track': 'all',
  'pg_stat_statements.track_utility': 'on',
};

const withPath = (url: string, database: string, user?: string) => {
  const next = new URL(url);
  next.pathname = `/${database}`;
  if (user) next.username = user;
  return next.toString();
};

export async function startBenchServers(
  cleanups: Array<() => Promise<unknown>>,
  log: (message: string) => void,
): Promise<BenchServers> {
  const servers = await serversForRun({
    databaseUrl: 'embedded',
    redisUrl: 'embedded',
    variables: { database: 'BENCH_DATABASE_URL', redis: 'BENCH_REDIS_URL' },
    postgresSettings: STATEMENT_SETTINGS,
    log,
  });
  cleanups.push(() => servers.stop());
  const adminUrl = servers.adminDatabaseUrl;
  await adminQuery(adminUrl, 'CREATE EXTENSION pg_stat_statements');
  await adminQuery(adminUrl, `CREATE ROLE ${MONITOR_USER} LOGIN SUPERUSER`);
  await adminQuery(adminUrl, `CREATE DATABASE ${APP_DATABASE}`);
  const appUrl = withPath(adminUrl, APP_DATABASE);
  await migrate(appUrl);

  // The postmaster is the parent of a backend, read while that backend is alive.
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  const postgres = await client
    .query<{ pid: number; version: string }>('SELECT pg_backend_pid() AS pid, current_setting($1) AS version', [
      'server_version',
    ])
    .then(({ rows }) => ({ pid: parentOf(rows[0]!.pid), version: rows[0]!.version }))
    .finally(() => client.end());
  const redis = new Redis(servers.redisUrl, { lazyConnect: true });
  await redis.connect();
  const info = await redis.info('server').finally(() => redis.quit());
  return {
    appUrl,
    monitorAppUrl: withPath(adminUrl, APP_DATABASE, MONITOR_USER),
    monitorStatsUrl: withPath(adminUrl, 'postgres', MONITOR_USER),
    redisUrl: servers.redisUrl,
    postgresPid: postgres.pid,
    redisPid: Number(/process_id:(\d+)/.exec(info)?.[1]),
    postgresVersion: postgres.version,
  };
}

/** The project's own migration command, as a deployment runs it. */
async function migrate(databaseUrl: string): Promise<void> {
  const entry = join(import.meta.dirname, '..', '..', 'sql', 'migrate.ts');
  await run(process.execPath, [entry], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: databaseUrl },
    timeout: 120_000,
  }).catch((error: unknown) => {
    throw new Error('node sql/migrate.ts failed', { cause: error });
  });
}
