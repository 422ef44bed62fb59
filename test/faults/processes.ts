import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';

// The system under test, as real processes: the sandbox providers, one API, the worker processes and
// the flash-sale controller (its outbox relay and stream consumer). Each writes its output to a log file
// of its own under the run's directory.

const root = join(import.meta.dirname, '..', '..');
const entries = {
  sandbox: join(root, 'sandbox', 'server.ts'),
  api: join(root, 'api', 'server.ts'),
  worker: join(root, 'workers', 'main.ts'),
  flashSale: join(root, 'flash-sale', 'main.ts'),
};

export type AppProcess = { name: string; child: ChildProcess; pid: number };

export type Processes = {
  /** The worker processes alive now, oldest first. */
  workers(): AppProcess[];
  startWorker(): Promise<AppProcess>;
  /** The flash-sale controller alive now (one per system), if any. */
  controller(): AppProcess | undefined;
  startController(): Promise<AppProcess>;
  /** kill -9 (a worker or the controller), as a crash or an OOM kill would do it. */
  kill(process: AppProcess): void;
  /** Processes that died without being killed by the suite: a crash is a finding. */
  unexpectedExits(): string[];
  stopAll(): Promise<void>;
  /** Last resort on exit, when no async work is possible any more: SIGKILL to every child still alive. */
  killAllNow(): void;
};

export async function startProcesses(options: {
  logDir: string;
  env: Record<string, string>;
  sandboxEnv: Record<string, string>;
  workerCount: number;
  readyUrls: { api: string; gateway: string; carrier: string };
  /** The flash-sale controller, when it is part of the system: `env` is added to the common one. */
  controller?: { env: Record<string, string>; readyUrl: string };
}): Promise<Processes> {
  await mkdir(options.logDir, { recursive: true });
  const all: AppProcess[] = [];
  const killed = new Set<number>();
  const exits: string[] = [];
  let stopping = false;
  let workerNumber = 0;
  let controllerNumber = 0;

  async function launch(name: string, entry: string, env: Record<string, string>): Promise<AppProcess> {
    const log = await open(join(options.logDir, `${name}.log`), 'a');
    // Only what the process needs from this environment, so nothing points it at the shared servers.
    const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
    const child = spawn(process.execPath, [entry], {
      env: { ...baseEnv, ...env },
      stdio: ['ignore', log.fd, log.fd],
    });
    const proc: AppProcess = { name, child, pid: child.pid ?? -1 };
    child.once('exit', (code, signal) => {
      void log.close();
      if (!stopping && !killed.has(proc.pid)) exits.push(`${name} (pid ${proc.pid}) exited: ${signal ?? code}`);
    });
    all.push(proc);
    return proc;
  }

  async function startWorker(): Promise<AppProcess> {
    workerNumber += 1;
    return launch(`worker-${workerNumber}`, entries.worker, options.env);
  }
  async function startController(): Promise<AppProcess> {
    if (!options.controller) throw new Error('this system has no flash-sale controller');
    controllerNumber += 1;
    return launch(`flash-sale-${controllerNumber}`, entries.flashSale, { ...options.env, ...options.controller.env });
  }
  const alive = (p: AppProcess) => p.child.exitCode === null && p.child.signalCode === null;

  try {
    const sandbox = await launch('sandbox', entries.sandbox, options.sandboxEnv);
    await waitForHttp(`${options.readyUrls.gateway}/healthz`, sandbox);
    await waitForHttp(`${options.readyUrls.carrier}/healthz`, sandbox);
    const api = await launch('api', entries.api, options.env);
    await waitForHttp(`${options.readyUrls.api}/healthz`, api);
    for (let i = 0; i < options.workerCount; i++) await startWorker();
    if (options.controller) await waitForHttp(`${options.controller.readyUrl}/healthz`, await startController());
  } catch (error) {
    stopping = true;
    for (const p of all.filter(alive)) p.child.kill('SIGKILL');
    throw error;
  }

  return {
    workers: () => all.filter((p) => p.name.startsWith('worker-') && alive(p)),
    startWorker,
    controller: () => all.find((p) => p.name.startsWith('flash-sale-') && alive(p)),
    startController,
    kill(target) {
      killed.add(target.pid);
      target.child.kill('SIGKILL');
    },
    unexpectedExits: () => [...exits],
    async stopAll() {
      stopping = true;
      await Promise.all(all.filter(alive).map(stopProcess));
    },
    killAllNow() {
      stopping = true;
      for (const p of all.filter(alive)) p.child.kill('SIGKILL');
    },
  };
}

async function stopProcess(p: AppProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const exited = once(p.child, 'exit');
  p.child.kill('SIGTERM');
  const killer = setTimeout(() => p.child.kill('SIGKILL'), 8_000);
  await exited;
  clearTimeout(killer);
}

async function waitForHttp(url: string, owner: AppProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (owner.child.exitCode !== null) throw new Error(`${owner.name} exited with ${owner.child.exitCode}`);
    const ok = await fetch(url, { signal: AbortSignal.timeout(1_000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${owner.name} did not answer ${url} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
