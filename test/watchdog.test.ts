import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from './support/wait-for.ts';

// The watchdog (scripts/watchdog.ts) stops what its owner started when the owner dies. A process that
// the owner's children start again later (a test restarting a Redis Cluster node) has a pid the owner
// never told it: stopPidFiles finds such processes by the pid files of a directory, read at the owner's
// death.

const watchdogModule = join(import.meta.dirname, '..', 'scripts', 'watchdog.ts');
const started: number[] = [];
let owner: ChildProcess | undefined;
let dir: string | undefined;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

afterEach(async () => {
  owner?.kill('SIGKILL');
  for (const pid of started.splice(0)) if (alive(pid)) process.kill(-pid, 'SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A detached `sleep` (the leader of its own process group, like a cluster node), as a server stand-in. */
function startSleeper(): number {
  const child = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
  child.unref();
  started.push(child.pid!);
  return child.pid!;
}

describe('the watchdog', () => {
  it('stops the processes named by pid files written after it was told, when its owner is killed', async () => {
    dir = await mkdtemp(join(tmpdir(), 'orderflow-watchdog-'));
    // The owner registers the directory, then says it is ready; the pid files come afterwards.
    const script = `
      const { startWatchdog } = await import(${JSON.stringify(watchdogModule)});
      const watchdog = startWatchdog();
      watchdog.stopPidFiles({ name: 'sleeper', dir: ${JSON.stringify(dir)}, group: true, signal: 'SIGKILL' });
      console.log('ready');
      setInterval(() => {}, 60_000);
    `;
    owner = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(owner.stdout!, 'data')) as [Buffer];
    expect(line.toString().trim()).toBe('ready');

    const first = startSleeper();
    const restarted = startSleeper();
    await writeFile(join(dir, 'node-1.pid'), `${first}\n`);
    await writeFile(join(dir, 'node-2.pid'), `${restarted}\n`);
    await writeFile(join(dir, 'notes.txt'), 'not a pid file');
    const bystander = startSleeper(); // in no pid file: left alone

    owner.kill('SIGKILL');
    await waitFor(
      'the sleepers named by pid files to be stopped',
      async () => [first, restarted].filter(alive),
      (left) => left.length === 0,
    );
    expect(alive(bystander)).toBe(true);
    expect((await readdir(dir)).sort()).toEqual(['node-1.pid', 'node-2.pid', 'notes.txt']);
  });
});
