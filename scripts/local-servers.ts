import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres } from './local-postgres.ts';
import { answersPing, requireRedisServer, startRedis } from './local-redis.ts';
import { freePort } from './processes.ts';
import { startWatchdog } from './watchdog.ts';

// A PostgreSQL and a Redis for this run: `npm run dev` starts its own with startPostgres and
// startRedis (a data directory kept between runs); the tests and the benchmarks take the servers
// their settings name, or the local defaults when they answer, or servers started for the run
// (serversForRun); the fault suite starts private ones it can restart.

export { type PostgresServer, startPostgres } from './local-postgres.ts';
export { type RedisServer, startRedis } from './local-redis.ts';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Why the PostgreSQL at `url` cannot serve the tests (no answer, refused login, no CREATEDB); undefined when it can. */
async function postgresUnusable(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ ok: boolean }>(
      'SELECT rolsuper OR rolcreatedb AS ok FROM pg_roles WHERE rolname = current_user',
    );
    return rows[0]?.ok ? undefined : 'its user may not create databases';
  } catch (error) {
    return (error as Error).message || 'no answer';
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function redisUnusable(url: string): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  return (await answersPing(Number(port || 6379), hostname)) ? undefined : 'no PONG';
}

/**
 * What a run's setting asks for: `embedded` (a server started for the run), a URL (that server), or
 * nothing (the default address when something usable answers there, else a server started for the run).
 */
export function chooseServer(
  setting: string | undefined,
  defaultUrl: string,
): 'embedded' | { url: string; probe: boolean } {
  if (setting === 'embedded') return 'embedded';
  if (setting) return { url: setting, probe: false };
  return { url: defaultUrl, probe: true };
}

export type RunServers = { adminDatabaseUrl: string; redisUrl: string; stop(): Promise<void> };

/**
 * A PostgreSQL (a superuser URL) and a Redis for a test or benchmark run, following the rule of
 * `chooseServer`. Servers started here live in one temporary directory, on free ports; stop() stops
 * them and removes it, and a watchdog does the same if this process dies first.
 */
export async function serversForRun(options: {
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** The names of the two settings, for messages. */
  variables: { database: string; redis: string };
  postgresSettings?: Record<string, string>;
  /** Where to look when a setting is unset: DEFAULT_DATABASE_URL and DEFAULT_REDIS_URL unless given. */
  defaults?: { databaseUrl: string; redisUrl: string };
  log: (message: string) => void;
}): Promise<RunServers> {
  const { log, variables } = options;
  /** The URL to use, or undefined for a server started here. */
  const decide = async (setting: string | undefined, server: 'PostgreSQL' | 'Redis') => {
    const defaults = options.defaults ?? { databaseUrl: DEFAULT_DATABASE_URL, redisUrl: DEFAULT_REDIS_URL };
    const choice = chooseServer(setting, server === 'Redis' ? defaults.redisUrl : defaults.databaseUrl);
    if (choice === 'embedded') return undefined;
    if (!choice.probe) return choice.url;
    const reason = await (server === 'Redis' ? redisUnusable : postgresUnusable)(choice.url);
    if (reason === undefined) return choice.url;
    const variable = server === 'Redis' ? variables.redis : variables.database;
    log(`${server} at ${new URL(choice.url).host}: ${reason}; starting one for this run (${variable} names another)`);
    return undefined;
  };
  const given = {
    database: await decide(options.databaseUrl, 'PostgreSQL'),
    redis: await decide(options.redisUrl, 'Redis'),
  };
  if (given.database !== undefined && given.redis !== undefined) {
    return { adminDatabaseUrl: given.database, redisUrl: given.redis, stop: async () => {} };
  }
  if (given.redis === undefined) requireRedisServer(variables.redis); // before the slower PostgreSQL start

  const dir = await mkdtemp(join(tmpdir(), 'orderflow-servers-'));
  await chmod(dir, 0o755); // the postgres user must reach its data directory inside
  const watchdog = startWatchdog();
  watchdog.remove(dir);
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step().catch((error: unknown) => log(`stopping: ${error}`));
    await rm(dir, { recursive: true, force: true });
    await watchdog.done();
  };
  try {
    let adminDatabaseUrl = given.database;
    if (adminDatabaseUrl === undefined) {
      const postgres = await startPostgres({
        dataDir: join(dir, 'postgres'),
        port: await freePort(),
        settings: options.postgresSettings,
      });
      stops.push(() => postgres.stop('fast'));
      const pid = await postgres.pid();
      if (pid) watchdog.stop({ name: 'PostgreSQL', pid, signal: 'SIGINT', killSignal: 'SIGQUIT' });
      log(`started PostgreSQL on port ${postgres.port} for this run`);
      adminDatabaseUrl = postgres.url;
    }
    let redisUrl = given.redis;
    if (redisUrl === undefined) {
      const redis = await startRedis({ dir: join(dir, 'redis'), port: await freePort(), appendOnly: false });
      stops.push(redis.stop);
      watchdog.stop({ name: 'Redis', pid: redis.pid() ?? -1, group: true, stage: 1 });
      log(`started Redis on port ${redis.port} for this run`);
      redisUrl = redis.url;
    }
    return { adminDatabaseUrl, redisUrl, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
