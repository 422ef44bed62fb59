import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type AddressInfo, createConnection, createServer } from 'node:net';

// Small facts about processes and ports, for the scripts that start servers and clean up after them.

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The command line of a live process, or undefined when there is none with that pid. */
export function commandOf(pid: number | undefined): string | undefined {
  if (!pid || !Number.isInteger(pid) || pid < 0) return undefined;
  if (existsSync('/proc/self')) {
    // Linux: /proc, so that a machine without `ps` (a slim container) gets the answer too.
    const command = readFileIfThere(`/proc/${pid}/cmdline`)?.replaceAll('\0', ' ').trim();
    return command || undefined; // a zombie's is empty
  }
  const ps = spawnSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' });
  return ps.status === 0 ? ps.stdout.trim() : undefined;
}

function readFileIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export async function readPid(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const pid = Number(text?.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Something accepts TCP connections on 127.0.0.1:port. */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const answer = (answers: boolean) => {
      socket.destroy();
      resolve(answers);
    };
    socket.setTimeout(1_000, () => answer(false));
    socket.once('connect', () => answer(true));
    socket.once('error', () => answer(false));
  });
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * SIGTERM to a process that is not our child, or to the process group it leads (SIGKILL after 10 s);
 * resolves once it is gone.
 */
export async function stopProcess(pid: number, options: { group?: boolean } = {}): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(options.group ? -pid : pid, name);
    } catch {
      // gone already
    }
  };
  signal('SIGTERM');
  const killer = setTimeout(() => signal('SIGKILL'), 10_000);
  while (isAlive(pid)) await sleep(50);
  clearTimeout(killer);
}
