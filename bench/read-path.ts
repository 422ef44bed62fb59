import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { startFlashSaleController } from '../flash-sale/start-flash-sale-controller.ts';
import { getStockLevels } from '../sql/inventory.ts';
import {
  type Cleanups,
  placeOrder,
  type System,
  startSystem,
  submitBurst,
  waitForOrders,
} from './in-process-system.ts';
import {
  clockOffset,
  pollGaps,
  readReservations,
  reflectionLags,
  type StockChange,
  type StockPoll,
  startStockPoller,
} from './stock-freshness.ts';
import { benchServers, printTable, roundTo, runBenchmark, sleep, summarize } from './support.ts';

// How fresh the read path is during a burst of orders on one SKU, and what a cache hit costs. The whole
// system runs in this process; reads are timed through app.request() (the server-side path alone) and
// over a real HTTP socket, against a bare Redis GET of a value of the same size on the API's own
// connection, and against that same GET served by a one-route Hono app (what app.request and a Response
// cost by themselves: the floor for any handler). The four are timed interleaved, so that whatever else
// the machine does at the time weighs on all of them alike.

const { values: args } = parseArgs({ options: { rate: { type: 'string' }, seconds: { type: 'string' } } });
const RATE = Number(args.rate ?? 20);
const SECONDS = Number(args.seconds ?? 15);
if (!(RATE > 0 && SECONDS > 0)) throw new Error('--rate (orders/s) and --seconds must be positive numbers');
const ORDERS = Math.round(RATE * SECONDS);
const REGION = 'eu';
const STOCK = 1_000_000;
const POLL_MS = 5;
// The default is 60 s. A cool SKU's answer changes only when its entry expires, so a burst must span
// more than one TTL to show the spread of lags; with 60 s that would take the run past two minutes.
const STOCK_TTL_MS = 10_000;
const WORKER_CONCURRENCY = 20;
const ORDER_READS = 5_000; // of each path: the p99 is the 50th slowest
const WARMUP_READS = 500; // of each path, untimed: the first calls include JIT compilation
const STALL_TIMEOUT_MS = 60_000;
const flashSale = { rateWindowMs: 5_000, hotRatePerMinute: 30, purchaseLimit: 1_000_000 };
// Two bursts in sequence, each with a controller of its own: the normal SKU's controller has a rate
// threshold no burst reaches, so that SKU stays cool while it sells as fast as the hot one.
const phases = [
  { name: 'normal', sku: 'ONEPIECE-105', hotRatePerMinute: 1_000_000_000 },
  { name: 'hot', sku: 'BERSERK-42', hotRatePerMinute: flashSale.hotRatePerMinute },
];
type Phase = (typeof phases)[number];
type PhaseRow = ReturnType<typeof summarizePhase>;
type ReadRows = Awaited<ReturnType<typeof measureOrderReads>>;

async function runPhase(system: System, phase: Phase, interrupted: AbortSignal) {
  const label = `${phase.name} SKU ${phase.sku}`;
  const { db, redis, log, cache } = system.deps;
  const controller = await startFlashSaleController(
    { db, redis, log, cache },
    {
      ...system.config.flashSale,
      hotRatePerMinute: phase.hotRatePerMinute,
      namespace: system.config.namespace,
      consumerName: `bench-${phase.name}`,
    },
  );
  const poller = startStockPoller(system.app, system.keys.customers[0]!.apiKey, phase.sku, REGION, POLL_MS);
  const lastAnswer = () => poller.polls.at(-1);
  const detail = () => `GET /inventory: available ${lastAnswer()?.available}, hot ${lastAnswer()?.hot}`;
  try {
    const ids: string[] = [];
    const aborted = new AbortController();
    const signal = AbortSignal.any([interrupted, aborted.signal]);
    const burst = { region: REGION, sku: phase.sku, ratePerSecond: RATE, count: ORDERS };
    const submitting = submitBurst(system, burst, ids, signal).catch((error) => aborted.abort(error));
    await waitForOrders(system, ids, ORDERS, { label, signal, stallTimeoutMs: STALL_TIMEOUT_MS, detail });
    await submitting;
    // A cool SKU's answer catches up only when its entry expires: wait up to the TTL for the last change.
    const [level] = await getStockLevels(db, REGION, [phase.sku]);
    console.log(`${label}: waiting for GET /inventory to show the last change (available ${level!.available})`);
    const deadline = performance.now() + STOCK_TTL_MS + 5_000;
    while ((lastAnswer()?.available ?? Number.POSITIVE_INFINITY) > level!.available) {
      if (performance.now() > deadline || poller.failure()) break;
      signal.throwIfAborted();
      await sleep(50);
    }
    await poller.stop();
    return summarizePhase(phase, poller.polls, await readReservations(db, phase.sku, REGION, ids));
  } finally {
    await poller.stop().catch(() => {});
    await controller.stop();
  }
}

function summarizePhase(phase: Phase, polls: readonly StockPoll[], changes: readonly StockChange[]) {
  const { lags, unreflected } = reflectionLags(polls, changes);
  const [first, last] = [changes[0]?.createdAtMs ?? Number.NaN, changes.at(-1)?.createdAtMs ?? Number.NaN];
  const during = polls.filter((p) => p.at >= first && p.at <= last);
  const hotAt = polls.find((p) => p.hot)?.at;
  if (phase.name === 'normal' && hotAt !== undefined) throw new Error(`${phase.sku} turned hot: not a normal SKU`);
  if (phase.name === 'hot' && hotAt === undefined) throw new Error(`${phase.sku} never turned hot during its burst`);
  const lag = summarize(lags, 1);
  const gaps = summarize(pollGaps(during), 1);
  const pickup = summarize(
    changes.flatMap((c) => (c.publishedAtMs === null ? [] : [c.publishedAtMs - c.createdAtMs])),
    1,
  );
  return {
    phase: phase.name,
    sku: phase.sku,
    hotRatePerMinute: phase.hotRatePerMinute,
    reservations: changes.length,
    reservationsPerSecond: roundTo((changes.length - 1) / ((last - first) / 1000), 1),
    answersDuringBurst: during.length,
    hotAnswersPercent: roundTo((100 * during.filter((p) => p.hot).length) / Math.max(1, during.length), 1),
    reservationsBeforeHot: hotAt === undefined ? null : changes.filter((c) => c.createdAtMs < hotAt).length,
    ttlMsSeen: [...new Set(during.map((p) => p.ttlMs))].join('/'),
    staleAnswers: during.filter((p) => p.source === 'stale').length,
    lagP50Ms: lag.p50,
    lagP99Ms: lag.p99,
    lagMaxMs: lag.max,
    reflected: lag.count,
    unreflected,
    relayPickupP50Ms: pickup.p50,
    relayPickupP99Ms: pickup.p99,
    pollGapP50Ms: gaps.p50,
    pollGapP99Ms: gaps.p99,
  };
}

async function measureOrderReads(system: System, signal: AbortSignal) {
  const id = await placeOrder(system, REGION, phases[0]!.sku, 0);
  await waitForOrders(system, [id], 1, { label: 'order to read', signal, stallTimeoutMs: STALL_TIMEOUT_MS });
  const headers = { authorization: `Bearer ${system.keys.customers[0]!.apiKey}` };
  const inProcess = async () => {
    const response = await system.app.request(`/orders/${id}`, { headers });
    return { status: response.status, text: await response.text() };
  };
  // The same read over a real socket: the API served by @hono/node-server, a keep-alive client.
  const server = serve({ fetch: system.app.fetch, hostname: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const overHttp = () =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: `/orders/${id}`, headers, agent }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
          res.on('error', reject);
        })
        .on('error', reject);
    });
  try {
    const first = await inProcess(); // fills the cache entries
    // The bare GET reads a value of the same size as the answer, under a key of its own, so that it does
    // not depend on how the order's groups are laid out in Redis.
    const { redis } = system.apiDeps;
    const bareKey = `${system.config.namespace}:bench:bare-get`;
    await redis.set(bareKey, first.text);
    const floorApp = new Hono().get('/orders/:id', async (c) =>
      c.body((await redis.get(bareKey)) ?? '', 200, { 'Content-Type': 'application/json' }),
    );
    const paths: Array<{ read: string; call: () => Promise<unknown>; hit?: true }> = [
      { read: 'GET /orders/{id} in process (app.request), all groups cache hits', call: inProcess, hit: true },
      { read: 'GET /orders/{id} over HTTP (keep-alive), all groups cache hits', call: overHttp, hit: true },
      { read: 'redis GET of a value of the same size', call: () => redis.get(bareKey) },
      {
        read: 'that GET in a one-route Hono app (app.request): the floor',
        call: async () => (await floorApp.request(`/orders/${id}`, { headers })).text(),
      },
    ];
    // One read of each path per round, in an order shuffled anew each round (with a fixed seed), so that
    // no path runs more often than another right after a given one, whose leftovers (the server side of
    // an HTTP read finishing after its client has the answer, say) would land on it. (Rotating one fixed
    // order would not do: the path after the HTTP read would nearly always be the same one.) Each read
    // starts once the event loop has run what the previous one left ready.
    // Besides its latency, each read's CPU time (user and system, of the whole process): unlike the
    // latency, it does not depend on what else the machine is doing.
    const times = paths.map((): number[] => []);
    const cpuMicros = paths.map(() => 0);
    const notFromCache = paths.map(() => 0);
    const random = seededRandom(14);
    const order = paths.map((_, p) => p);
    for (let round = -WARMUP_READS; round < ORDER_READS; round++) {
      signal.throwIfAborted();
      for (let k = order.length - 1; k > 0; k--) {
        const j = Math.floor(random() * (k + 1));
        [order[k], order[j]] = [order[j]!, order[k]!];
      }
      for (const p of order) {
        await new Promise((resolve) => setImmediate(resolve));
        const cpu = process.cpuUsage();
        const started = performance.now();
        const answer = await paths[p]!.call();
        const ms = performance.now() - started;
        const { user, system } = process.cpuUsage(cpu);
        if (round < 0) continue;
        times[p]!.push(ms);
        cpuMicros[p]! += user + system;
        if (paths[p]!.hit && !allFromCache(answer as { status: number; text: string })) notFromCache[p]! += 1;
      }
    }
    const missed = paths.findIndex((_, p) => notFromCache[p]! > 0);
    if (missed >= 0) {
      throw new Error(`${notFromCache[missed]}/${ORDER_READS} of "${paths[missed]!.read}" were not all cache hits`);
    }
    await redis.del(bareKey);
    return paths.map(({ read }, p) => ({
      read,
      ...summarize(times[p]!, 3),
      cpuMicrosMean: roundTo(cpuMicros[p]! / ORDER_READS, 1),
    }));
  } finally {
    agent.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** mulberry32: the same sequence in every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Whether every group of the answer came from the cache: a string search, so as to allocate little between reads. */
function allFromCache(answer: { status: number; text: string }): boolean {
  const freshness = answer.text.slice(answer.text.lastIndexOf('"freshness":{'));
  const sources = freshness.split('"source":"').length - 1;
  return answer.status === 200 && sources === 3 && freshness.split('"source":"cache"').length - 1 === 3;
}

/** The figures issue 14 sets its targets on. */
function headline(rows: PhaseRow[], reads: ReadRows) {
  const [hit, , bare, floor] = reads;
  const hot = rows.find((r) => r.phase === 'hot')!;
  return {
    hitP50Ms: hit!.p50,
    hitP99Ms: hit!.p99,
    httpHitP99Ms: reads[1]!.p99,
    bareRedisP50Ms: bare!.p50,
    bareRedisP99Ms: bare!.p99,
    hitRatioP99: roundTo(hit!.p99 / bare!.p99, 2),
    honoFloorP99Ms: floor!.p99,
    honoFloorRatioP99: roundTo(floor!.p99 / bare!.p99, 2),
    hitCpuMicrosMean: hit!.cpuMicrosMean,
    bareRedisCpuMicrosMean: bare!.cpuMicrosMean,
    honoFloorCpuMicrosMean: floor!.cpuMicrosMean,
    hotStalenessP50Ms: hot.lagP50Ms,
    hotStalenessP99Ms: hot.lagP99Ms,
    hotStalenessMaxMs: hot.lagMaxMs,
  };
}

function report(rows: PhaseRow[], reads: ReadRows, clock: Awaited<ReturnType<typeof clockOffset>>): void {
  console.log(`\nGET /inventory/{sku} freshness during a burst of ${RATE} orders/s for ${SECONDS} s on that SKU`);
  const headers = ['SKU', 'hot while measured', 'TTL ms', 'reservations', 'lag p50 ms', 'lag p99 ms', 'lag max ms'];
  printTable(
    [...headers, 'relay pickup p50/p99 ms', 'poll gap p50/p99 ms'],
    rows.map((r) => [
      `${r.sku} (${r.phase})`,
      r.reservationsBeforeHot === null
        ? 'no (0 answers hot)'
        : `from reservation #${r.reservationsBeforeHot + 1} (${r.hotAnswersPercent}% of answers)`,
      r.ttlMsSeen,
      `${r.reflected}${r.unreflected ? ` (+${r.unreflected} never shown)` : ''}`,
      r.lagP50Ms,
      r.lagP99Ms,
      r.lagMaxMs,
      `${r.relayPickupP50Ms}/${r.relayPickupP99Ms}`,
      `${r.pollGapP50Ms}/${r.pollGapP99Ms}`,
    ]),
  );
  console.log(`
lag: the arrival of the first GET /inventory answer that shows a reservation, minus the reservation's created_at
  (clock_timestamp() inside its transaction; the COMMIT follows within about a millisecond and counts in the lag).
  PostgreSQL's clock minus this process's: ${clock.offsetMs} ms (±${clock.uncertaintyMs}). Polled every ${POLL_MS} ms
  plus the request's own time (poll gap). Relay pickup: the outbox relay's transaction start minus created_at.
  The normal SKU's TTL is ${STOCK_TTL_MS} ms instead of the default 60000, so the burst spans more than one TTL in a
  short run: its lag is bounded by the TTL and scales with it.`);
  printTable(
    ['read (one at a time)', 'n', 'p50 ms', 'p99 ms', 'max ms', 'CPU µs (mean)'],
    reads.map((r) => [r.read, r.count, r.p50, r.p99, r.max, r.cpuMicrosMean]),
  );
  const h = headline(rows, reads);
  console.log(`
cache hit in process against a bare GET at p99: ${h.hitRatioP99}× (target ≤ 2); the one-route Hono app's: ${h.honoFloorRatioP99}×
hot SKU staleness p99 / max: ${h.hotStalenessP99Ms} / ${h.hotStalenessMaxMs} ms (targets ≤ 100 / ≤ 250)`);
}

async function writeResults(rows: PhaseRow[], reads: ReadRows, clock: object, load: object): Promise<void> {
  const file = join(import.meta.dirname, 'results', 'read-path.json');
  await mkdir(join(import.meta.dirname, 'results'), { recursive: true });
  const git = execFileSync('git', ['describe', '--always', '--dirty'], { cwd: import.meta.dirname });
  const results = {
    date: new Date().toISOString(),
    commit: git.toString().trim(),
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model, node: process.version, loadavg: load },
    parameters: {
      ordersPerSecond: RATE,
      burstSeconds: SECONDS,
      region: REGION,
      stockPerSku: STOCK,
      pollIntervalMs: POLL_MS,
      stockTtlMs: STOCK_TTL_MS,
      workerConcurrency: WORKER_CONCURRENCY,
      flashSale,
      phases,
      orderReads: ORDER_READS,
      warmupReads: WARMUP_READS,
      http: 'app.request() in process, and @hono/node-server over a keep-alive socket',
      orderReadOrder: 'interleaved: one read of each path per round, in an order shuffled each round (seed 14)',
    },
    ...headline(rows, reads),
    clock,
    stockFreshness: rows,
    orderReads: reads,
  };
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nresults written to ${file}`);
}

// Other work on the machine shows in the latencies: recorded with them. (An object, not an array: the
// results stay in the layout the formatter wants.)
function loadAverage() {
  const [m1, m5, m15] = loadavg();
  return { '1m': m1, '5m': m5, '15m': m15 };
}

async function main(interrupted: AbortSignal): Promise<void> {
  const cleanups: Cleanups = [];
  const loadAtStart = loadAverage();
  try {
    const { adminUrl, redisUrl } = await benchServers(cleanups);
    const env = {
      CACHE_TTL_STOCK_MS: String(STOCK_TTL_MS),
      FLASH_SALE_PORT: '0',
      FLASH_SALE_RATE_WINDOW_MS: String(flashSale.rateWindowMs),
      FLASH_SALE_HOT_RATE_PER_MIN: String(flashSale.hotRatePerMinute),
      // The seed has three customers: the default limit (2 while hot) would refuse most of the burst.
      FLASH_SALE_PURCHASE_LIMIT: String(flashSale.purchaseLimit),
      // One key reads the same order back to back, thousands of times a second, to time a cache hit:
      // a per-key read budget would answer most of them 429 instead.
      RATE_LIMIT_READS: '0',
    };
    const stock = { region: REGION, skus: phases.map((p) => p.sku), available: STOCK };
    const system = await startSystem(
      { adminUrl, redisUrl, env, workerConcurrency: WORKER_CONCURRENCY, stock },
      cleanups,
    );
    const clock = await clockOffset(system.deps.db);
    const rows: PhaseRow[] = [];
    for (const phase of phases) rows.push(await runPhase(system, phase, interrupted));
    console.log(`order reads: ${ORDER_READS} of each path, interleaved, after ${WARMUP_READS} of each untimed`);
    const reads = await measureOrderReads(system, interrupted);
    report(rows, reads, clock);
    await writeResults(rows, reads, clock, { atStart: loadAtStart, atEnd: loadAverage() });
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => console.error('cleanup failed:', error));
    }
  }
}

await runBenchmark(main);
