import { execFile, spawn } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { answersPing, requireRedisServer } from './local-redis.ts';
import { freePort, isAlive, sleep } from './processes.ts';

// A Redis Cluster of a few masters on free local ports, for npm run test:cluster (three) and npm run
// bench -- --shards N (N): one redis-server per port,
// all in one temporary directory (each with its own nodes-<port>.conf, append-only directory, pid file
// and log), joined with redis-cli --cluster create. Append-only, so a node killed with SIGKILL and
// started again on the same port and directory comes back with its data and its place in the cluster.

const run = promisify(execFile);

/** `busPorts[i]`: the cluster bus port of the node on `ports[i]`. */
export type ClusterLayout = { dir: string; ports: number[]; busPorts: number[] };

function serverArgs({ dir, ports, busPorts }: ClusterLayout, port: number): string[] {
  // The bus port is chosen too: by default it is the port + 10,000, which a free port above 55,535
  // (most of the ephemeral range) cannot have.
  const busPort = busPorts[ports.indexOf(port)];
  if (busPort === undefined) throw new Error(`port ${port} is not one of the cluster's`);
  return [
    ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no'],
    ...['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-port', String(busPort)],
    // A node unreachable for 2 s (not the default 15) marks the cluster failing, and its return clears
    // that after twice as long: the tests that stop a master see both in seconds.
    ...['--cluster-node-timeout', '2000'],
    ...['--appendonly', 'yes', '--appenddirname', `appendonly-${port}`, '--save', ''],
    ...['--pidfile', join(dir, `redis-${port}.pid`), '--maxmemory-policy', 'noeviction'],
  ];
}

/** Starts the node of `port` (again, after a kill: same port, same directory) and waits for its PONG. */
export async function startNode(layout: ClusterLayout, port: number): Promise<number> {
  const output = await open(join(layout.dir, `redis-${port}.log`), 'a');
  // A process group of its own: a Ctrl-C in the terminal reaches the test run, which stops the cluster.
  const child = spawn('redis-server', serverArgs(layout, port), {
    detached: true,
    stdio: ['ignore', output.fd, output.fd],
  });
  child.unref(); // stopped by its pid file (stopCluster), whichever process started it
  await output.close();
  for (const deadline = Date.now() + 15_000; !(await answersPing(port)); await sleep(50)) {
    if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer`);
  }
  return child.pid ?? -1;
}

/** The pid of the node on `port`, from its pid file. */
export async function nodePid({ dir }: ClusterLayout, port: number): Promise<number | undefined> {
  const text = await readFile(join(dir, `redis-${port}.pid`), 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** kill -9 of the node on `port`; returns once the process is gone. */
export async function killNode(layout: ClusterLayout, port: number): Promise<void> {
  const pid = await nodePid(layout, port);
  if (pid === undefined) throw new Error(`no pid file for the node on port ${port}`);
  process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await sleep(20);
}

/** cluster_state of every node, by port. */
export async function clusterStates({ ports }: ClusterLayout): Promise<string[]> {
  return Promise.all(
    ports.map(async (port) => {
      const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info']).catch(() => ({ stdout: '' }));
      return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? 'unreachable';
    }),
  );
}

/** Waits until every node says cluster_state:ok (a deadline: this runs outside any test, in setup). */
export async function waitForClusterOk(layout: ClusterLayout, timeoutMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; await sleep(100)) {
    const states = await clusterStates(layout);
    if (states.every((s) => s === 'ok')) return;
    if (Date.now() > deadline) throw new Error(`the cluster is not ok: ${states.join(', ')}`);
  }
}

/** `masters` masters (at least 3, as redis-cli requires), no replicas, every slot covered, every node ok. */
export async function startCluster(masters = 3): Promise<ClusterLayout> {
  if (masters < 3) throw new Error(`a Redis Cluster needs at least 3 masters, not ${masters}`);
  requireRedisServer('REDIS_CLUSTER_NODES');
  const free = new Set<number>();
  while (free.size < masters * 2) free.add(await freePort());
  const [ports, busPorts] = [[...free].slice(0, masters), [...free].slice(masters)];
  const layout: ClusterLayout = { dir: await mkdtemp(join(tmpdir(), 'orderflow-cluster-')), ports, busPorts };
  try {
    for (const port of layout.ports) await startNode(layout, port);
    const nodes = layout.ports.map((port) => `127.0.0.1:${port}`);
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    await waitForClusterOk(layout);
    return layout;
  } catch (error) {
    await stopCluster(layout);
    throw error;
  }
}

/** Stops every node (whoever started it) and removes the directory. */
export async function stopCluster(layout: ClusterLayout): Promise<void> {
  const pids = (await Promise.all(layout.ports.map((port) => nodePid(layout, port)))).filter(
    (pid): pid is number => pid !== undefined && isAlive(pid),
  );
  for (const pid of pids) process.kill(pid, 'SIGKILL'); // a throwaway cluster: nothing to save
  for (const pid of pids) while (isAlive(pid)) await sleep(20);
  await rm(layout.dir, { recursive: true, force: true });
}
