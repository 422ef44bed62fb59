import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Watchdog } from '../../scripts/watchdog.ts';
import { boundedEach, deleteKeys, waitUntil } from '../support.ts';
import { CEILING_PREFIX, ceilingFlow, connectionOf, type FlowShape, flowShapes, jobOptions } from './ceiling-flow.ts';
import { cpuMsBetween, sampleCpu } from './proc-stat.ts';
import type { Progress } from './progress.ts';

// The ceiling and the floor (ceiling-flow.ts): bare flows on the same Redis, at the same worker processes
// and concurrency as the product, with processors that do nothing. Worker processes of their own
// (ceiling-worker.ts), flows added from this process by as many concurrent clients as the product's
// orders are submitted with.

export type Phase = { signal: AbortSignal; progress: Progress; watchdog: Watchdog };
/** [seconds since the first submission, how many have finished] */
export type Timeline = Array<[number, number]>;
export type CeilingResult = {
  shape: FlowShape;
  flows: number;
  jobsPerFlow: number;
  wallMs: number;
  flowsPerSecond: number;
  cpuMsPerFlow: Record<string, number>;
  timeline: Timeline;
};

const entry = join(import.meta.dirname, 'ceiling-worker.ts');
const STALL_MS = 30_000;

export async function runCeiling(
  options: {
    redis: Redis;
    redisUrl: string;
    redisPid: number;
    processes: number;
    concurrency: number;
    flows: number;
    warmup: number;
    clients: number;
    shape: FlowShape;
  },
  phase: Phase,
): Promise<CeilingResult> {
  const label = options.shape;
  const counts = new Map<ChildProcess, number>();
  let ready = 0;
  let failure: string | undefined;
  let stopping = false;
  const onFinished: Array<() => void> = [];
  const children = Array.from({ length: options.processes }, (_, i) => {
    const args = [entry, '--redis', options.redisUrl, '--concurrency', String(options.concurrency), '--shape', label];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (child.pid) phase.watchdog.stop({ name: `${label} worker ${i + 1}`, pid: child.pid });
    child.on('message', (message: { type: string; count?: number; error?: string }) => {
      if (message.type === 'ready') ready += 1;
      if (message.type === 'failed') failure ??= `a no-op job failed: ${message.error}`;
      if (message.type !== 'completed') return;
      counts.set(child, message.count!);
      for (const listener of onFinished) listener();
    });
    child.on('exit', (code, signal) => {
      if (!stopping) failure ??= `${label} worker ${child.pid} exited with ${signal ?? code}`;
    });
    return child;
  });
  const finished = () => [...counts.values()].reduce((sum, n) => sum + n, 0);
  const connection = connectionOf(options.redisUrl);
  // The ceiling's flows are added whole; the floor starts as an order does, with one `validate` job,
  // which adds the rest.
  const producer =
    options.shape === 'ceiling'
      ? new FlowProducer({ connection, prefix: CEILING_PREFIX })
      : new Queue('validate', { connection, prefix: CEILING_PREFIX });
  const start = (i: number) =>
    producer instanceof FlowProducer
      ? producer.add(ceilingFlow(i, 'ceiling'))
      : producer.add('validate', { flow: i }, jobOptions(`flow-${i}-validate`));
  const wait = (what: string, done: () => boolean) =>
    waitUntil(done, { what, signal: phase.signal, stallMs: STALL_MS, progressed: finished, failure: () => failure });
  try {
    await wait(`${label} workers starting`, () => ready === options.processes);
    const add = (from: number, to: number) => boundedEach(from, to, options.clients, start);
    await add(0, options.warmup);
    await wait(`${label} warm-up`, () => finished() >= options.warmup);

    const pids = Object.fromEntries(children.map((c, i) => [`worker-${i + 1}`, c.pid!]));
    const before = sampleCpu({ ...pids, redis: options.redisPid });
    const started = performance.now();
    const timeline: Timeline = [[0, 0]];
    let lastAt = started;
    const target = options.warmup + options.flows;
    onFinished.push(() => {
      const done = Math.min(finished(), target) - options.warmup;
      lastAt = performance.now();
      timeline.push([(lastAt - started) / 1000, done]);
      phase.progress.update(label, done, options.flows, 'flows');
    });
    await add(options.warmup, target);
    await wait(label, () => finished() >= target);
    onFinished.length = 0;
    const cpu = cpuMsBetween(before, sampleCpu({ ...pids, redis: options.redisPid }));
    const wallMs = lastAt - started;
    return {
      shape: options.shape,
      flows: options.flows,
      jobsPerFlow: flowShapes[options.shape].length,
      wallMs,
      flowsPerSecond: (options.flows / wallMs) * 1000,
      cpuMsPerFlow: Object.fromEntries(Object.entries(cpu).map(([name, ms]) => [name, ms / options.flows])),
      timeline,
    };
  } finally {
    phase.progress.end();
    stopping = true;
    await Promise.all(children.map(stopChild));
    for (const child of children) if (child.pid) phase.watchdog.forget(child.pid);
    await producer.close();
    await deleteKeys(options.redis, `${CEILING_PREFIX}:*`);
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  if (child.connected) child.send('stop');
  else child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(killer);
}
