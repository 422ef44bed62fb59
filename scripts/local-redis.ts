import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, open } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { commandOf, portAnswers, readPid, sleep, stopProcess } from './processes.ts';

// redis-server from the PATH, as a child process (by default in a process group of its own).

export type RedisServer = {
  url: string;
  port: number;
  /** The redis-server process, also the leader of its process group. */
  pid(): number | undefined;
  /** Starts it again after stop(), on the same port and data. */
  start(): Promise<void>;
  stop(): Promise<void>;
};

/** A program this machine lacks. Not a bug: the message says what to install, and no stack follows it. */
export class MissingProgram extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingProgram';
    this.stack = `${this.name}: ${message}`;
  }
}

/** The redis-server binary is on the PATH; otherwise an error that says what to install. */
export function requireRedisServer(urlVariable: string): void {
  if (spawnSync('redis-server', ['--version']).error) {
    throw new MissingProgram(
      `redis-server is not installed: install the redis-server package (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), or set ${urlVariable} to a running Redis`,
    );
  }
}

/**
 * Starts redis-server on 127.0.0.1:`port` with its data, pid file and log in `dir`, in a process
 * group of its own, with `noeviction` (an evicted BullMQ key is a lost job). A redis-server an
 * earlier run left on the same directory is stopped first.
 */
export async function startRedis(options: {
  dir: string;
  port: number;
  appendOnly: boolean;
  args?: string[];
  /** In a process group of its own (default), so that a Ctrl-C in the terminal does not reach it. */
  detached?: boolean;
  urlVariable?: string;
  log?: (message: string) => void;
}): Promise<RedisServer> {
  requireRedisServer(options.urlVariable ?? 'REDIS_URL');
  const { port } = options;
  const dir = resolve(options.dir);
  const log = options.log ?? (() => {});
  await mkdir(dir, { recursive: true });
  const pidFile = join(dir, 'redis.pid');
  const logFile = join(dir, 'server.log');
  const leftover = await readPid(pidFile);
  if (leftover !== undefined && commandOf(leftover)?.includes('redis-server')) {
    log(`stopping the redis-server an earlier run left running on ${dir} (pid ${leftover})`);
    await stopProcess(leftover);
  }
  if (await portAnswers(port)) throw new Error(`port ${port} is in use by another process: Redis cannot use it`);
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--pidfile', pidFile];
  args.push('--save', '', '--appendonly', options.appendOnly ? 'yes' : 'no', '--maxmemory-policy', 'noeviction');
  args.push(...(options.args ?? []));
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    const output = await open(logFile, 'a');
    const detached = options.detached ?? true;
    const started = spawn('redis-server', args, { detached, stdio: ['ignore', output.fd, output.fd] });
    child = started;
    await output.close(); // the child has its own copy
    for (const deadline = Date.now() + 15_000; !(await answersPing(port)); await sleep(50)) {
      if (started.exitCode !== null) throw new Error(`redis-server exited with ${started.exitCode}; see ${logFile}`);
      if (Date.now() > deadline) {
        started.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not answer; see ${logFile}`);
      }
    }
  }

  async function stop(): Promise<void> {
    const current = child;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = once(current, 'exit');
    current.kill('SIGTERM');
    const killer = setTimeout(() => current.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }

  await start();
  return { url: `redis://127.0.0.1:${port}`, port, pid: () => child?.pid, start, stop };
}

/** True once Redis is up and has loaded its data (a loading Redis answers -LOADING). */
export function answersPing(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
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
