import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chown, mkdir, open } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

// Private PostgreSQL and Redis servers for the fault suite, on ports of their own and with their data
// under the run's directory, so that restarting or killing them never touches the shared servers.

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const PG_USER = 'postgres';
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a PostgreSQL binary as the postgres OS user: the server refuses to run as root. */
function asPostgres(binary: string, args: string[]) {
  return run('runuser', ['-u', PG_USER, '--', join(PG_BIN, binary), ...args], { timeout: 60_000 });
}

export async function startPostgres(root: string, port: number): Promise<PostgresServer> {
  const dir = join(root, 'pg');
  const data = join(dir, 'data');
  await mkdir(dir, { recursive: true });
  const { uid, gid } = await postgresIds();
  await chown(dir, uid, gid);
  await asPostgres('initdb', ['-D', data, '-A', 'trust', '-U', PG_USER, '--no-sync', '--encoding', 'UTF8']);
  // fsync is off for speed: the faults here are process kills and restarts, never a machine crash.
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c max_connections=300 -c fsync=off`;
  const pgCtl = (...args: string[]) =>
    asPostgres('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-o', options, '-w', '-t', '60', ...args]);
  await pgCtl('start');
  const admin = new pg.Client({ connectionString: `postgres://${PG_USER}@127.0.0.1:${port}/postgres` });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${DATABASE_NAME}`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://${PG_USER}@127.0.0.1:${port}/${DATABASE_NAME}`,
    restart: async () => {
      await pgCtl('-m', 'fast', 'restart');
    },
    stop: async () => {
      await pgCtl('-m', 'immediate', 'stop').catch(() => undefined);
    },
  };
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', PG_USER]), run('id', ['-g', PG_USER])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function startRedis(root: string, port: number): Promise<RedisServer> {
  const dir = join(root, 'redis');
  await mkdir(dir, { recursive: true });
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--dir',
    dir,
    '--save',
    '',
    '--maxmemory-policy',
    'noeviction',
    '--daemonize',
    'no',
  ];
  let child = await launchRedis(args, join(dir, 'server.log'), port);
  async function stop() {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    restart: async (downMs) => {
      await stop();
      await sleep(downMs);
      child = await launchRedis(args, join(dir, 'server.log'), port);
    },
    stop,
  };
}

async function launchRedis(args: string[], logPath: string, port: number): Promise<ChildProcess> {
  const log = await open(logPath, 'a');
  const child = spawn('redis-server', args, { stdio: ['ignore', log.fd, log.fd] });
  child.once('exit', () => void log.close());
  const deadline = Date.now() + 15_000;
  while (!(await answersPing(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}; see ${logPath}`);
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer; see ${logPath}`);
    await sleep(50);
  }
  return child;
}

/** True once the server is up and has loaded its data (a loading Redis answers -LOADING). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(1_000, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('close', () => resolve(reply.startsWith('+PONG')));
    socket.on('error', () => undefined);
  });
}
