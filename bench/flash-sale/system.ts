import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../scripts/processes.ts';
import type { Phase } from '../pipeline/ceiling.ts';
import { singleRedis, waitForWorkers } from '../pipeline/product-system.ts';
import type { BenchServers } from '../pipeline/servers.ts';
import { sleep } from '../support.ts';

// The system as it is deployed, every process its own: the sandbox providers (latency 0, no declines,
// no failures), the API (node api/server.ts), the worker processes (node workers/main.ts) and the one
// flash-sale controller (node flash-sale/main.ts), configured by their environment only, each writing
// its log under the run's directory. Each is handed to the watchdog, so a killed bench leaves none.

const root = join(import.meta.dirname, '..', '..');
const entries = {
  sandbox: join(root, 'sandbox', 'server.ts'),
  api: join(root, 'api', 'server.ts'),
  worker: join(root, 'workers', 'main.ts'),
  controller: join(root, 'flash-sale', 'main.ts'),
};
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 12_000;

export type FlashSaleSystem = {
  apiUrl: string;
  /** The environment the application's processes run with. */
  env: Record<string, string>;
  /** The first process that died without being stopped, if any. */
  unexpectedExit(): string | undefined;
  stopAll(): Promise<void>;
};

export async function startFlashSaleSystem(
  options: { servers: BenchServers; workers: number; concurrency: number; logDir: string },
  phase: Phase,
  cleanups: Array<() => Promise<unknown>>,
): Promise<FlashSaleSystem> {
  const ports = {
    api: await freePort(),
    gateway: await freePort(),
    carrier: await freePort(),
    controller: await freePort(),
    bedrock: await freePort(),
  };
  const url = (port: number) => `http://127.0.0.1:${port}`;
  const env = {
    DATABASE_URL: options.servers.appUrl,
    REDIS_URL: options.servers.redisUrl,
    HOST: '127.0.0.1',
    PORT: String(ports.api),
    PAYMENT_GATEWAY_URL: url(ports.gateway),
    CARRIER_URL: url(ports.carrier),
    WORKER_CONCURRENCY: String(options.concurrency),
    LOG_LEVEL: 'warn',
  };
  const children: Array<{ name: string; child: ChildProcess }> = [];
  const exits: string[] = [];
  let stopping = false;

  async function launch(name: string, entry: string, extra: Record<string, string>) {
    const log = await open(join(options.logDir, `${name}.log`), 'a');
    const child = spawn(process.execPath, [entry], {
      // Only what the process needs from this environment, so nothing points it at the shared servers.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env, ...extra },
      stdio: ['ignore', log.fd, log.fd],
    });
    child.once('exit', (code, signal) => {
      void log.close();
      if (!stopping) exits.push(`${name} (pid ${child.pid}) exited: ${signal ?? code}; see ${options.logDir}`);
    });
    if (child.pid) phase.watchdog.stop({ name, pid: child.pid });
    children.push({ name, child });
  }
  const system: FlashSaleSystem = {
    apiUrl: url(ports.api),
    env,
    unexpectedExit: () => exits[0],
    async stopAll() {
      stopping = true;
      // The controller and the API first, the workers next, the sandbox they call last.
      for (const group of [['flash-sale', 'api'], ['worker'], ['sandbox']]) {
        const stopped = children.filter(({ name }) => group.some((prefix) => name.startsWith(prefix)));
        await Promise.all(stopped.map(({ child }) => stop(child)));
      }
      for (const { child } of children) if (child.pid) phase.watchdog.forget(child.pid);
    },
  };
  cleanups.push(() => system.stopAll());

  const ready = (path: string) => waitForHttp(path, system, phase.signal);
  await launch('sandbox', entries.sandbox, {
    SANDBOX_HOST: '127.0.0.1',
    SANDBOX_GATEWAY_PORT: String(ports.gateway),
    SANDBOX_CARRIER_PORT: String(ports.carrier),
    SANDBOX_BEDROCK_PORT: String(ports.bedrock),
    SANDBOX_LATENCY_MS: '0',
    SANDBOX_DECLINE_RATE: '0',
    SANDBOX_FAILURE_RATE: '0',
    SANDBOX_SEED: '1',
  });
  await ready(`${url(ports.gateway)}/healthz`);
  await ready(`${url(ports.carrier)}/healthz`);
  await launch('api', entries.api, {});
  await ready(`${url(ports.api)}/healthz`);
  for (let i = 1; i <= options.workers; i++) await launch(`worker-${i}`, entries.worker, {});
  // info: its log says when the SKU turned hot and when the admission counter was seeded.
  await launch('flash-sale', entries.controller, { FLASH_SALE_PORT: String(ports.controller), LOG_LEVEL: 'info' });
  await ready(`${url(ports.controller)}/healthz`);
  await waitForWorkers({
    redis: singleRedis(options.servers.redisUrl),
    workers: options.workers,
    unexpectedExit: system.unexpectedExit,
    signal: phase.signal,
  });
  return system;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(killer);
}

async function waitForHttp(url: string, system: FlashSaleSystem, signal: AbortSignal): Promise<void> {
  for (const deadline = performance.now() + READY_TIMEOUT_MS; ; await sleep(100)) {
    signal.throwIfAborted();
    const exited = system.unexpectedExit();
    if (exited) throw new Error(`while starting, ${exited}`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (performance.now() > deadline) throw new Error(`${url} did not answer 200 within ${READY_TIMEOUT_MS} ms`);
  }
}

/** Start-up (loading TypeScript, connecting) is not the race: wait until every process serves every queue. */
