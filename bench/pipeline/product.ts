import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { terminalStatuses } from '../../domain/order-status.ts';
import { demoAddress } from '../../scripts/seed.ts';
import { boundedEach, sleep } from '../support.ts';
import type { Phase, Timeline } from './ceiling.ts';
import { cpuMsBetween, sampleCpu } from './proc-stat.ts';
import { type Product, REGION } from './product-system.ts';
import {
  type CountingClient,
  callsBetween,
  redisCommandCalls,
  STATS_FLUSH_WAIT_MS,
  type Statements,
  type StatisticsReader,
} from './stats.ts';

// The product's phases: orders over HTTP, as a store's checkout posts them (an Idempotency-Key each),
// by a bounded number of concurrent clients, until every one is terminal in PostgreSQL; then, on an
// otherwise idle system, orders one at a time for the latency of a single order.

export type Monitor = {
  app: CountingClient;
  stats: StatisticsReader;
  /**
   * A connection of the bench's own to each Redis server the product uses (the one server, or each
   * master of a cluster): their commands are counted over all of them, the bench's own subtracted.
   */
  redisNodes: Redis[];
  postgresPid: number;
  /** The Redis servers' processes, by name (`redis`, or `redis-<port>` on a cluster). */
  redisPids: Record<string, number>;
};

/** Calls per command, summed over every Redis server of the product. */
async function productRedisCalls(monitor: Monitor): Promise<Map<string, number>> {
  const total = new Map<string, number>();
  for (const calls of await Promise.all(monitor.redisNodes.map(redisCommandCalls))) {
    for (const [command, n] of calls) total.set(command, (total.get(command) ?? 0) + n);
  }
  return total;
}

export type ThroughputResult = {
  orders: number;
  wallMs: number;
  ordersPerSecond: number;
  cpuMs: Record<string, number>;
  benchClientCpuMs: number;
  statements: Statements;
  redisCalls: Map<string, number>;
  commits: number;
  rollbacks: number;
  deadlocks: number;
  monitorQueries: number;
  timeline: Timeline;
};

const POLL_MS = 50;
const STALL_MS = 60_000;
const IDLE_POLL_MS = 2;
const IDLE_TIMEOUT_MS = 30_000;
const terminal = new Set<string>(terminalStatuses);

export async function placeOrder(product: Product, i: number, signal: AbortSignal): Promise<string> {
  const { customers, skus } = product.keys;
  const response = await fetch(`${product.apiUrl}/orders`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${customers[i % customers.length]!.apiKey}`,
      'content-type': 'application/json',
      'idempotency-key': randomUUID(),
    },
    body: JSON.stringify({
      region: REGION,
      items: [{ sku: skus[i % skus.length]!, quantity: 1 }],
      shippingAddress: demoAddress,
      payment: { token: '4242424242424242' },
    }),
    signal,
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`POST /orders answered ${response.status}: ${text.slice(0, 500)}`);
  return (JSON.parse(text) as { id: string }).id;
}

async function statusCounts(monitor: Monitor): Promise<Map<string, number>> {
  const rows = await monitor.app.query<{ status: string; n: number }>({
    name: 'bench-status-counts',
    text: 'SELECT status, count(*)::int AS n FROM orders GROUP BY status',
  });
  return new Map(rows.map((r) => [r.status, r.n]));
}

const since = (before: Map<string, number>, after: Map<string, number>) =>
  new Map(
    [...after].map(([status, n]) => [status, n - (before.get(status) ?? 0)]).filter(([, n]) => n !== 0) as Array<
      [string, number]
    >,
  );
const sumWhere = (counts: Map<string, number>, keep: (status: string) => boolean) =>
  [...counts].reduce((sum, [status, n]) => sum + (keep(status) ? n : 0), 0);
const describe = (counts: Map<string, number>) =>
  [...counts].map(([status, n]) => `${status} ${n}`).join(', ') || 'none';

/**
 * Submits orders [from, from + count) and waits until all are terminal; all must be COMPLETED. Calls
 * `onProgress(finished, atMs)` at each poll. Returns the counts by status when it is over.
 */
async function pushOrders(
  product: Product,
  monitor: Monitor,
  run: { label: string; from: number; count: number; clients: number; baseline: Map<string, number> },
  phase: Phase,
  onProgress: (finished: number, at: number) => void,
): Promise<Map<string, number>> {
  const submission = new AbortController();
  const signal = AbortSignal.any([phase.signal, submission.signal]);
  let submitError: unknown;
  let submitted = 0;
  const submitting = boundedEach(run.from, run.from + run.count, run.clients, async (i) => {
    await placeOrder(product, i, signal);
    submitted += 1;
  }).catch((error: unknown) => {
    submitError = error;
  });
  try {
    let [finished, lastChange] = [-1, performance.now()];
    for (;;) {
      if (submitError) throw new Error(`${run.label}: an order was refused`, { cause: submitError });
      phase.signal.throwIfAborted();
      const exited = product.processes.unexpectedExits()[0];
      if (exited) throw new Error(`${run.label}: ${exited}`);
      const counts = since(run.baseline, await statusCounts(monitor));
      const now = performance.now();
      const done = sumWhere(counts, (s) => terminal.has(s));
      if (done !== finished) [finished, lastChange] = [done, now];
      onProgress(done, now);
      if (done >= run.count && submitted === run.count) {
        if ((counts.get('COMPLETED') ?? 0) !== run.count) {
          throw new Error(`${run.label}: not every order COMPLETED (${describe(counts)})`);
        }
        return counts;
      }
      if (now - lastChange > STALL_MS) {
        throw new Error(
          `${run.label}: no order finished for ${STALL_MS} ms; ${submitted}/${run.count} submitted, by status: ${describe(counts)}`,
        );
      }
      await sleep(POLL_MS);
    }
  } finally {
    submission.abort();
    await submitting;
  }
}

export async function runThroughput(
  product: Product,
  monitor: Monitor,
  options: { orders: number; warmup: number; clients: number },
  phase: Phase,
): Promise<ThroughputResult> {
  const empty = await statusCounts(monitor);
  await pushOrders(
    product,
    monitor,
    { label: 'warm-up', from: 0, count: options.warmup, clients: options.clients, baseline: empty },
    phase,
    (done) => phase.progress.update('product warm-up', done, options.warmup, 'orders'),
  );
  const baseline = await statusCounts(monitor);
  // Quiet, so that what the warm-up left pending in the backends' statistics is flushed before the baseline.
  phase.progress.note(`settling for ${STATS_FLUSH_WAIT_MS / 1000} s (PostgreSQL flushes idle backends' statistics)`);
  await delay(STATS_FLUSH_WAIT_MS, undefined, { signal: phase.signal });

  const pids = { ...product.pids, postgres: monitor.postgresPid, ...monitor.redisPids };
  const databaseBefore = await monitor.stats.databaseCounters();
  await monitor.stats.resetStatements();
  const redisBefore = await productRedisCalls(monitor);
  const cpuBefore = sampleCpu(pids);
  const clientBefore = process.cpuUsage();
  monitor.app.queries = 0;

  const started = performance.now();
  const timeline: Timeline = [[0, 0]];
  let lastAt = started;
  let lastDone = 0;
  await pushOrders(
    product,
    monitor,
    { label: 'product', from: options.warmup, count: options.orders, clients: options.clients, baseline },
    phase,
    (done, at) => {
      if (done !== lastDone) [lastDone, lastAt] = [done, at];
      timeline.push([(at - started) / 1000, done]);
      phase.progress.update('product', done, options.orders, 'orders');
    },
  );
  const cpuMs = cpuMsBetween(cpuBefore, sampleCpu(pids));
  const client = process.cpuUsage(clientBefore);
  const redisCalls = callsBetween(redisBefore, await productRedisCalls(monitor));
  // The bench's own INFO on each server: the first is counted once it has answered.
  const ownInfo = (redisCalls.get('info') ?? 0) - monitor.redisNodes.length;
  if (ownInfo <= 0) redisCalls.delete('info');
  else redisCalls.set('info', ownInfo);
  const statements = await monitor.stats.statements(15);
  const monitorQueries = monitor.app.queries;
  phase.progress.end();

  phase.progress.note(`settling for ${STATS_FLUSH_WAIT_MS / 1000} s before reading commits and deadlocks`);
  await delay(STATS_FLUSH_WAIT_MS, undefined, { signal: phase.signal });
  const databaseAfter = await monitor.stats.databaseCounters();
  const wallMs = lastAt - started;
  return {
    orders: options.orders,
    wallMs,
    ordersPerSecond: (options.orders / wallMs) * 1000,
    cpuMs,
    benchClientCpuMs: (client.user + client.system) / 1000,
    statements,
    redisCalls,
    commits: databaseAfter.xactCommit - databaseBefore.xactCommit - monitorQueries,
    rollbacks: databaseAfter.xactRollback - databaseBefore.xactRollback,
    deadlocks: databaseAfter.deadlocks - databaseBefore.deadlocks,
    monitorQueries,
    timeline,
  };
}

/**
 * Orders one at a time, each submitted once the one before is COMPLETED: submit → COMPLETED, in ms.
 *
 * The phase starts after the throughput phase's settling pause, with every process idle for seconds,
 * and this VM answers slowly right after idling, whatever runs on it: a Redis PING and a PostgreSQL
 * `SELECT 1` took 2 ms for the first round trip after 6-12 s idle against 0.25 ms warm, and the first
 * order after the pause took 130-180 ms against 30-50 for the next ones, with every step of it slower.
 * That first order is measured and reported on its own (`afterPause`), not in the percentiles of the
 * `orders` that follow it, which are what a steady trickle of single orders sees.
 */
export async function runIdleLatency(
  product: Product,
  monitor: Monitor,
  options: { orders: number; from: number },
  phase: Phase,
): Promise<{ afterPause: number; latencies: number[] }> {
  const latencies: number[] = [];
  for (let i = 0; i <= options.orders; i++) {
    await sleep(50); // the last order's jobs finish their bookkeeping in BullMQ
    const started = performance.now();
    const id = await placeOrder(product, options.from + i, phase.signal);
    for (;;) {
      phase.signal.throwIfAborted();
      const [row] = await monitor.app.query<{ status: string }>({
        name: 'bench-order-status',
        text: 'SELECT status FROM orders WHERE id = $1',
        values: [id],
      });
      const now = performance.now();
      if (row?.status === 'COMPLETED') {
        latencies.push(now - started);
        break;
      }
      if (row && terminal.has(row.status)) throw new Error(`idle latency: order ${id} ended ${row.status}`);
      if (now - started > IDLE_TIMEOUT_MS)
        throw new Error(`idle latency: order ${id} is ${row?.status} after ${IDLE_TIMEOUT_MS} ms`);
      await sleep(IDLE_POLL_MS);
    }
    phase.progress.update('idle latency', i + 1, options.orders + 1, 'orders');
  }
  phase.progress.end();
  const [afterPause, ...rest] = latencies;
  return { afterPause: afterPause!, latencies: rest };
}
