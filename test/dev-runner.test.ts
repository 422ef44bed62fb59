import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portAnswers } from '../scripts/processes.ts';

// `npm run dev` stops everything it started, whatever the signal and whoever gets it, and comes up
// again after a run that was killed (issue 7 §5). Every case runs the real `npm run dev` on ports and a
// data directory of its own; the first case is a first run (initdb), the others reuse its directory.

const root = join(import.meta.dirname, '..');
const STOP_WITHIN_MS = 15_000;
const READY_WITHIN_MS = 90_000;
let dataDir: string;
let ports: Record<string, number>;
let env: NodeJS.ProcessEnv;
const runs: ChildProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'orderflow-dev-runner-'));
  await chmod(dataDir, 0o755); // PostgreSQL runs as the postgres user when the tests run as root
  const names = [
    'DEV_PG_PORT',
    'DEV_REDIS_PORT',
    'PORT',
    'SANDBOX_GATEWAY_PORT',
    'SANDBOX_CARRIER_PORT',
    'SANDBOX_BEDROCK_PORT',
    'FLASH_SALE_PORT',
  ];
  ports = {};
  for (const name of names) ports[name] = await quietPort(new Set(Object.values(ports)));
  const { DATABASE_URL, REDIS_URL, ...inherited } = process.env; // the runner must start its own servers
  env = {
    ...inherited,
    ...Object.fromEntries(Object.entries(ports).map(([name, port]) => [name, String(port)])),
    DEV_DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    WORKER_HEALTH_PORT: '0',
  };
});

afterAll(async () => {
  // A failed case may leave a run behind: stop it the way a user would, then make sure.
  for (const npm of runs) if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGTERM');
  await waitUntilStopped().catch(async () => {
    for (const pid of await processesOfThisFile()) process.kill(pid, 'SIGKILL');
  });
  await rm(dataDir, { recursive: true, force: true });
});

type Run = { npm: ChildProcess; output: () => string };

/**
 * A free port below the kernel's range for outgoing connections (32768 and up on Linux): this file
 * holds its ports across several runs, and a client connection elsewhere must not take one meanwhile.
 */
async function quietPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (taken.has(port)) continue;
    const server = createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, () => resolve(true)); // every address, as the API and the flash-sale controller may
    });
    if (free) {
      await new Promise((resolve) => server.close(resolve));
      return port;
    }
  }
}

/** Starts `npm run dev`; resolves once it printed its banner. */
async function startDev(): Promise<Run> {
  const npm = spawn('npm', ['run', 'dev'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  runs.push(npm);
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`not ready within ${READY_WITHIN_MS} ms:\n${output}`)),
      READY_WITHIN_MS,
    );
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('orderflow is running')) {
        clearTimeout(timer);
        resolve();
      }
    };
    npm.stdout?.on('data', read);
    npm.stderr?.on('data', read);
    npm.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`npm run dev exited (${signal ?? code}) before it was ready:\n${output}`));
    });
  });
  await ready;
  return { npm, output: () => output };
}

/** The runner's record of its run: its pid and its watchdog's. */
async function runRecord(): Promise<{ runner: number; watchdog: number }> {
  return JSON.parse(await readFile(join(dataDir, 'dev.pid'), 'utf8'));
}

/** Every live process started for this file: they all inherit DEV_DATA_DIR (Linux /proc). */
async function processesOfThisFile(): Promise<number[]> {
  const marker = `DEV_DATA_DIR=${dataDir}\0`;
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  const found = await Promise.all(
    pids.map(async (pid) =>
      (await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '')).includes(marker) ? pid : 0,
    ),
  );
  return found.filter((pid) => pid !== 0);
}

async function processDescriptions(pids: number[]): Promise<string[]> {
  return Promise.all(
    pids.map(
      async (pid) =>
        `${pid}: ${(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '?')).replaceAll('\0', ' ')}`,
    ),
  );
}

/** Resolves once no port of the run answers and no process of it is left; rejects after STOP_WITHIN_MS. */
async function waitUntilStopped(): Promise<void> {
  const deadline = Date.now() + STOP_WITHIN_MS;
  for (;;) {
    const open = (
      await Promise.all(Object.entries(ports).map(async ([n, p]) => ((await portAnswers(p)) ? `${n}=${p}` : '')))
    ).filter(Boolean);
    const left = await processesOfThisFile();
    if (open.length === 0 && left.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `still open: ${open.join(', ') || 'none'}; still running: ${(await processDescriptions(left)).join('; ') || 'none'}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function expectStopped(npm: ChildProcess): Promise<void> {
  const exited = npm.exitCode !== null || npm.signalCode !== null ? Promise.resolve() : once(npm, 'exit');
  await waitUntilStopped();
  await exited;
}

describe('npm run dev', () => {
  it('on a first run, starts everything, and stops everything when npm gets SIGTERM', async () => {
    const { npm } = await startDev();
    expect((await fetch(`http://127.0.0.1:${ports.PORT}/readyz`)).status).toBe(200);
    npm.kill('SIGTERM');
    await expectStopped(npm);
  }, 150_000);

  it('comes up at once after the runner was killed with SIGKILL, and stops everything when npm itself is killed', async () => {
    const first = await startDev();
    process.kill((await runRecord()).runner, 'SIGKILL');
    const second = await startDev();
    // The killed run's watchdog stopped what it had started; the new run only waited for it.
    expect(second.output()).not.toMatch(/left running/);
    second.npm.kill('SIGKILL'); // the runner sees its parent gone
    await expectStopped(second.npm);
    await expectStopped(first.npm);
  }, 180_000);

  it('comes up after npm, the runner and its watchdog were all killed, and stops everything when npm gets SIGINT', async () => {
    const first = await startDev();
    const { runner, watchdog } = await runRecord();
    for (const pid of [first.npm.pid ?? 0, runner, watchdog]) process.kill(pid, 'SIGKILL');
    const second = await startDev();
    // Nobody stopped the killed run's servers and services: the new run did.
    expect(second.output()).toMatch(/stopping the PostgreSQL an earlier run left running/);
    expect(second.output()).toMatch(/api\/server\.ts \(pid \d+\), left running by an earlier run/);
    second.npm.kill('SIGINT');
    await expectStopped(second.npm);
  }, 180_000);
});
