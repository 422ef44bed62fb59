import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

// Stops what a process started when that process dies without stopping it (kill -9, a crash, a
// debugger's stop button). The owner (npm run dev, the test run, a benchmark) starts this file as a
// detached child with a pipe on its stdin, and tells it one JSON line at a time what to stop and what
// to remove. The owner's death closes the pipe; an owner that stopped everything itself says "done"
// first, and the watchdog just exits.

export type Stoppable = {
  name: string;
  pid: number;
  /** Signal the whole process group `pid` leads (a child spawned with `detached: true`). */
  group?: boolean;
  /** Default SIGTERM; SIGINT is PostgreSQL's fast shutdown. */
  signal?: NodeJS.Signals;
  /** Sent when the process is still there after KILL_AFTER_MS. Default SIGKILL. */
  killSignal?: NodeJS.Signals;
  /** Higher stages are stopped first, one stage after the other. Default 0. */
  stage?: number;
};
/**
 * Every process whose pid is in a `*.pid` file of `dir` when the owner dies: for servers that the owner's
 * children may start again under new pids (a test restarting a Redis Cluster node).
 */
export type PidFiles = Omit<Stoppable, 'pid'> & { dir: string };
type Message =
  | { stop: Stoppable }
  | { stopPidFiles: PidFiles }
  | { forget: number }
  | { remove: string }
  | { done: true };

const KILL_AFTER_MS = 10_000;

export type Watchdog = {
  pid: number;
  stop(process: Stoppable): void;
  stopPidFiles(files: PidFiles): void;
  forget(pid: number): void;
  remove(path: string): void;
  /** Everything was stopped by the owner: the watchdog exits without doing anything. */
  done(): Promise<void>;
};

/** Starts a watchdog for this process. `output: 'inherit'` lets it say what it stops. */
export function startWatchdog(options: { output?: 'inherit' | 'ignore' } = {}): Watchdog {
  const output = options.output ?? 'ignore';
  const child: ChildProcess = spawn(process.execPath, [import.meta.filename], {
    detached: true,
    stdio: ['pipe', output, output],
  });
  // Neither the child nor the pipe keeps the owner alive: the owner's exit is what the watchdog waits for.
  child.unref();
  const input = child.stdin as (NodeJS.WritableStream & Pick<Socket, 'unref'>) | null;
  if (!input) throw new Error('the watchdog has no stdin');
  input.unref();
  input.on('error', () => {}); // a watchdog that died already cannot be told anything more
  const send = (message: Message) => void input.write(`${JSON.stringify(message)}\n`);
  return {
    pid: child.pid ?? -1,
    stop: (stoppable) => send({ stop: stoppable }),
    stopPidFiles: (files) => send({ stopPidFiles: files }),
    forget: (pid) => send({ forget: pid }),
    remove: (path) => send({ remove: path }),
    done: () =>
      new Promise((resolve) => {
        send({ done: true });
        input.end(resolve);
      }),
  };
}

function signal(target: Stoppable, name: NodeJS.Signals | 0): boolean {
  try {
    process.kill(target.group ? -target.pid : target.pid, name);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function stopStage(targets: Stoppable[]): Promise<void> {
  const alive = targets.filter((t) => signal(t, 0));
  for (const t of alive) {
    console.error(`watchdog | stopping ${t.name} (pid ${t.pid})`);
    signal(t, t.signal ?? 'SIGTERM');
  }
  const deadline = Date.now() + KILL_AFTER_MS;
  let killed = false;
  while (alive.some((t) => signal(t, 0))) {
    if (!killed && Date.now() > deadline) {
      for (const t of alive) signal(t, t.killSignal ?? 'SIGKILL');
      killed = true;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The processes named by the pid files of `dir`, as they are now. */
async function fromPidFiles({ dir, ...stoppable }: PidFiles): Promise<Stoppable[]> {
  const files = (await readdir(dir).catch(() => [])).filter((file) => file.endsWith('.pid'));
  const pids = await Promise.all(
    files.map(async (file) => Number((await readFile(join(dir, file), 'utf8').catch(() => '')).trim())),
  );
  return files.flatMap((file, i) => {
    const pid = pids[i]!;
    return Number.isInteger(pid) && pid > 0 ? [{ ...stoppable, name: `${stoppable.name} (${file})`, pid }] : [];
  });
}

async function watch(): Promise<void> {
  const targets = new Map<number, Stoppable>();
  const pidFiles: PidFiles[] = [];
  const paths: string[] = [];
  let done = false;
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const message = JSON.parse(line) as Message;
    if ('stop' in message) targets.set(message.stop.pid, message.stop);
    else if ('stopPidFiles' in message) pidFiles.push(message.stopPidFiles);
    else if ('forget' in message) targets.delete(message.forget);
    else if ('remove' in message) paths.push(message.remove);
    else done = true;
  });
  await new Promise((resolve) => lines.once('close', resolve));
  if (done) return;
  console.error('watchdog | its owner exited without stopping what it started');
  for (const files of pidFiles) for (const t of await fromPidFiles(files)) targets.set(t.pid, t);
  const stages = [...new Set([...targets.values()].map((t) => t.stage ?? 0))].sort((a, b) => b - a);
  for (const stage of stages) await stopStage([...targets.values()].filter((t) => (t.stage ?? 0) === stage));
  for (const path of paths) await rm(path, { recursive: true, force: true });
}

if (import.meta.main) {
  // Detached, so a Ctrl-C in the owner's terminal does not reach it; ignore a hang-up all the same.
  process.on('SIGHUP', () => {});
  await watch();
  process.exit(0);
}
