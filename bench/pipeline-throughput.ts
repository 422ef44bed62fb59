import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { createApp } from '../api/app.ts';
import { loadConfig } from '../config/index.ts';
import { createDeps, type Deps } from '../runtime/deps.ts';
import { createLogger } from '../runtime/logger.ts';
import { startSandbox } from '../sandbox/server.ts';
import { type DemoKeys, seedDemo } from '../scripts/seed.ts';
import { sql } from '../sql/database.ts';
import { setAvailable } from '../sql/inventory.ts';
import { migrate } from '../sql/migrate.ts';
import { adminQuery, benchServers, deleteKeys, percentile, printTable, runBenchmark, sleep } from './support.ts';

const workerDbPoolSize = process.env.DB_POOL_SIZE ?? '10'; // the workers' own default, recorded with the results

const { values: args } = parseArgs({ options: { orders: { type: 'string' }, quick: { type: 'boolean' } } });
const ORDERS = Number(args.orders ?? (args.quick ? 100 : 500));
if (!Number.isInteger(ORDERS) || ORDERS < 1) throw new Error(`--orders must be a positive integer, got ${args.orders}`);
const IN_FLIGHT = 50;
const POLL_MS = 50;
const WARMUP_ORDERS = 20;
const STALL_TIMEOUT_MS = 60_000;
const STARTUP_TIMEOUT_MS = 30_000;
const REGION = 'eu';
const SANDBOX = { latencyMs: 0, declineRate: 0, failureRate: 0 };
const setups = [
  { name: '1 process x 20', processes: 1, concurrency: 20 },
  { name: '2 processes x 20', processes: 2, concurrency: 20 },
];
const ADDRESS = { name: 'Ada Lovelace', line1: '12 St James Sq', city: 'London', postalCode: 'SW1Y 4JH' };
type Bench = { deps: Deps; app: ReturnType<typeof createApp>; keys: DemoKeys; env: Record<string, string> };
type RunContext = { label: string; signal: AbortSignal };
type Row = Awaited<ReturnType<typeof runSetup>>;

const workerEntry = join(import.meta.dirname, '..', 'workers', 'main.ts');
const round = (ms: number) => Math.round(ms);

// process.env is passed on so that knobs such as DB_POOL_SIZE can be tried without editing the bench.
function spawnWorkers(env: Record<string, string>, count: number, concurrency: number): ChildProcess[] {
  return Array.from({ length: count }, () =>
    spawn(process.execPath, [workerEntry], {
      env: { ...process.env, ...env, DB_POOL_SIZE: workerDbPoolSize, WORKER_CONCURRENCY: String(concurrency) },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  );
}

async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      const [code] = await exited;
      clearTimeout(killer);
      if (code !== 0) console.error(`worker process ${child.pid} exited with ${code}`);
    }),
  );
}

// Worker start-up (loading TypeScript, connecting) is not throughput: wait until every process listens.
async function waitForWorkers(deps: Deps, processes: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    const counts = await Promise.all(Object.values(deps.queues.queues).map((q) => q.getWorkersCount()));
    if (counts.every((n) => n >= processes)) return;
    signal.throwIfAborted();
    if (Date.now() > deadline) throw new Error(`workers not listening on every queue after ${STARTUP_TIMEOUT_MS} ms`);
    await sleep(POLL_MS);
  }
}

/** Submits `count` orders with at most IN_FLIGHT requests open; records when each was sent and how long it took. */
async function submitOrders(bench: Bench, count: number, submitted: Map<string, number>, latencies: number[]) {
  let next = 0;
  async function client() {
    while (next < count) {
      const i = next++;
      const key = bench.keys.customers[i % bench.keys.customers.length]!.apiKey;
      const started = performance.now();
      const response = await bench.app.request('/orders', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          region: REGION,
          items: [{ sku: bench.keys.skus[i % bench.keys.skus.length]!, quantity: 1 }],
          shippingAddress: { ...ADDRESS, country: 'GB' },
          payment: { token: '4242424242424242' },
        }),
      });
      const body = (await response.json()) as { id: string };
      if (response.status !== 201) throw new Error(`POST /orders answered ${response.status}: ${JSON.stringify(body)}`);
      latencies.push(performance.now() - started);
      submitted.set(body.id, started);
    }
  }
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, client));
}

/** Polls all unfinished orders with one query until every order is terminal; returns each order's end time. */
async function waitForOrders(bench: Bench, submitted: Map<string, number>, count: number, run: RunContext) {
  const finished = new Map<string, { status: string; at: number }>();
  let lastProgress = performance.now();
  let lastPrint = 0;
  while (finished.size < count) {
    run.signal.throwIfAborted();
    const open = [...submitted.keys()].filter((id) => !finished.has(id));
    const rows = await bench.deps.db.any(sql.type(z.object({ id: z.string(), status: z.string() }))`
      SELECT id::text, status FROM orders
      WHERE id = ANY(${sql.array(open, 'uuid')}) AND status IN ('COMPLETED', 'FAILED', 'CANCELLED')`);
    const now = performance.now();
    for (const row of rows) finished.set(row.id, { status: row.status, at: now });
    if (rows.length > 0) lastProgress = now;
    if (now - lastProgress > STALL_TIMEOUT_MS) {
      const stuck = await describeStuck(bench, open);
      throw new Error(`${run.label}: no order finished for ${STALL_TIMEOUT_MS} ms; ${stuck}`);
    }
    if (now - lastPrint > 1_000 || finished.size === count) {
      console.log(`${run.label}: ${submitted.size}/${count} submitted, ${finished.size}/${count} finished`);
      lastPrint = now;
    }
    await sleep(POLL_MS);
  }
  return finished;
}

async function describeStuck(bench: Bench, ids: string[]): Promise<string> {
  const statuses = await bench.deps.db.any(sql.type(z.object({ status: z.string(), n: z.number() }))`
    SELECT status, count(*)::int AS n FROM orders WHERE id = ANY(${sql.array(ids, 'uuid')}) GROUP BY status`);
  const lastError = await bench.deps.db.maybeOneFirst(sql.type(z.object({ error: z.string() }))`
    SELECT step || ' ' || error_code || ': ' || error_message AS error FROM step_attempts
    WHERE order_id = ANY(${sql.array(ids, 'uuid')}) AND error_code IS NOT NULL ORDER BY id DESC LIMIT 1`);
  const counts = statuses.map((s) => `${s.n} ${s.status}`).join(', ');
  return `unfinished: ${counts}; last step error: ${lastError ?? 'none'}`;
}

async function pushOrders(bench: Bench, count: number, { label, signal }: RunContext) {
  const submitted = new Map<string, number>();
  const latencies: number[] = [];
  const controller = new AbortController();
  const either = AbortSignal.any([signal, controller.signal]);
  const submitting = submitOrders(bench, count, submitted, latencies).catch((error) => controller.abort(error));
  const finished = await waitForOrders(bench, submitted, count, { label, signal: either });
  await submitting;
  const failed = [...finished].filter(([, f]) => f.status !== 'COMPLETED');
  if (failed.length > 0) {
    const [id, f] = failed[0]!;
    throw new Error(`${label}: ${failed.length}/${count} orders did not complete (e.g. ${id} is ${f.status})`);
  }
  const endToEnd = [...finished].map(([id, f]) => f.at - submitted.get(id)!);
  const first = Math.min(...submitted.values());
  const last = Math.max(...[...finished.values()].map((f) => f.at));
  return { ids: [...submitted.keys()], latencies, endToEnd, wallMs: last - first };
}

// Step timings come from the ledger: how long each step ran, and when it started relative to the order's
// creation, so the gaps show time spent waiting in queues rather than working.
async function stepTimings(bench: Bench, ids: string[]) {
  const row = z.object({ step: z.string(), startsAtMs: z.number(), runsForMs: z.number(), retries: z.number() });
  return bench.deps.db.any(sql.type(row)`
    SELECT a.step,
      round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - o.created_at)::float8)
        FILTER (WHERE a.outcome = 'succeeded') * 1000)::int AS "startsAtMs",
      round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.finished_at - a.started_at)::float8)
        FILTER (WHERE a.outcome = 'succeeded') * 1000)::int AS "runsForMs",
      (count(*) FILTER (WHERE a.attempt > 1))::int AS retries
    FROM step_attempts a JOIN orders o ON o.id = a.order_id
    WHERE a.order_id = ANY(${sql.array(ids, 'uuid')})
    GROUP BY a.step ORDER BY 2`);
}

async function runSetup(bench: Bench, setup: (typeof setups)[number], index: number, interrupted: AbortSignal) {
  const label = `setup ${index + 1}/${setups.length}`;
  const children = spawnWorkers(bench.env, setup.processes, setup.concurrency);
  const controller = new AbortController();
  const signal = AbortSignal.any([interrupted, controller.signal]);
  let stopping = false;
  for (const child of children) {
    child.on('exit', (code) => {
      if (!stopping) controller.abort(new Error(`${label}: worker process ${child.pid} exited early with ${code}`));
    });
  }
  try {
    await waitForWorkers(bench.deps, setup.processes, signal);
    await pushOrders(bench, WARMUP_ORDERS, { label: `${label} warm-up`, signal });
    const run = await pushOrders(bench, ORDERS, { label, signal });
    return {
      setup: setup.name,
      orders: ORDERS,
      submitP50Ms: round(percentile(run.latencies, 50)),
      submitP99Ms: round(percentile(run.latencies, 99)),
      endToEndP50Ms: round(percentile(run.endToEnd, 50)),
      endToEndP99Ms: round(percentile(run.endToEnd, 99)),
      endToEndMaxMs: round(Math.max(...run.endToEnd)),
      wallMs: round(run.wallMs),
      ordersPerSecond: Math.round((ORDERS / run.wallMs) * 1000 * 10) / 10,
      steps: await stepTimings(bench, run.ids),
    };
  } finally {
    stopping = true;
    await stopWorkers(children);
  }
}

const columns: Array<[string, (r: Row) => string | number]> = [
  ['setup', (r) => r.setup],
  ['orders', (r) => r.orders],
  ['submit p50 ms', (r) => r.submitP50Ms],
  ['submit p99 ms', (r) => r.submitP99Ms],
  ['e2e p50 ms', (r) => r.endToEndP50Ms],
  ['e2e p99 ms', (r) => r.endToEndP99Ms],
  ['e2e max ms', (r) => r.endToEndMaxMs],
  ['wall ms', (r) => r.wallMs],
  ['completed/s', (r) => r.ordersPerSecond],
];

function report(rows: Row[]): void {
  printTable(
    columns.map(([name]) => name),
    rows.map((r) => columns.map(([, value]) => value(r))),
  );
  for (const r of rows) {
    console.log(`\nper-step p50, ${r.setup} (starts at: ms after the order was created)`);
    const steps = r.steps.map((s) => [s.step, s.startsAtMs, s.runsForMs, s.retries]);
    printTable(['step', 'starts at ms', 'runs for ms', 'retries'], steps);
  }
}

async function writeResults(rows: Row[]): Promise<void> {
  const file = join(import.meta.dirname, 'results', 'pipeline-throughput.json');
  await mkdir(join(import.meta.dirname, 'results'), { recursive: true });
  const results = {
    date: new Date().toISOString(),
    commit: execFileSync('git', ['describe', '--always', '--dirty'], { cwd: import.meta.dirname })
      .toString()
      .trim(),
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model, node: process.version },
    parameters: { orders: ORDERS, clientInFlight: IN_FLIGHT, pollMs: POLL_MS, warmupOrders: WARMUP_ORDERS, setups },
    workerDbPoolSize: Number(workerDbPoolSize),
    sandbox: SANDBOX,
    rows,
  };
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nresults written to ${file}`);
}

async function main(interrupted: AbortSignal): Promise<void> {
  const suffix = randomBytes(4).toString('hex');
  const dbName = `orderflow_bench_${suffix}`;
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const { adminUrl, redisUrl } = await benchServers(cleanups);
    await adminQuery(adminUrl, `CREATE DATABASE "${dbName}"`);
    cleanups.push(() => adminQuery(adminUrl, `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`));
    const dbUrl = new URL(adminUrl);
    dbUrl.pathname = `/${dbName}`;
    await migrate(dbUrl.toString());
    const keys = await seedDemo(dbUrl.toString());
    const sandbox = await startSandbox({ gatewayPort: 0, carrierPort: 0, ...SANDBOX, seed: 1 });
    cleanups.push(() => sandbox.close());
    const env = {
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: `{ofb-${suffix}}`,
      REDIS_NAMESPACE: `ofb-${suffix}`,
      PAYMENT_GATEWAY_URL: sandbox.gateway.url,
      CARRIER_URL: sandbox.carrier.url,
      LOG_LEVEL: 'warn',
    };
    const config = loadConfig({ ...env, DB_POOL_SIZE: '20' });
    // failFast, as api/server.ts builds it: the API in this process is the one under test.
    const deps = await createDeps(config, createLogger('warn', 'bench'), { failFastRedis: true });
    cleanups.push(() => deps.close());
    cleanups.push(() => deleteKeys(deps.redis, `${config.namespace}:*`));
    cleanups.push(() => Promise.all(Object.values(deps.queues.queues).map((q) => q.obliterate({ force: true }))));
    for (const sku of keys.skus) await setAvailable(deps.db, sku, REGION, 1_000_000);
    // The API is called with app.request(), as the tests do: a loopback fetch would put the HTTP client's
    // parsing on the same event loop that serves the API, and the submit latency would measure the bench.
    const app = createApp({
      ...deps,
      bodyLimitBytes: config.http.bodyLimitBytes,
      idempotencyStaleAfterMs: 60_000,
      recentOrdersTtlMs: config.cache.ttlMs.recentOrders,
    });
    const bench: Bench = { deps, app, keys, env };

    const rows: Row[] = [];
    for (const [i, setup] of setups.entries()) rows.push(await runSetup(bench, setup, i, interrupted));
    report(rows);
    await writeResults(rows);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => console.error('cleanup failed:', error));
    }
  }
}

await runBenchmark(main);
