import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../config/index.ts';
import { seedDemo } from '../scripts/seed.ts';
import { startWatchdog } from '../scripts/watchdog.ts';
import { Ledger, startStockPoller, waitForTerminal } from './flash-sale/ledger.ts';
import { runRace } from './flash-sale/load.ts';
import { BUCKET_MS, buildResults, printReport, writeResults } from './flash-sale/report.ts';
import { createBuyers, declareSale, readCounter, setStock, waitUntilHot } from './flash-sale/setup.ts';
import { startFlashSaleSystem } from './flash-sale/system.ts';
import { createProgress } from './pipeline/progress.ts';
import { startBenchServers } from './pipeline/servers.ts';
import { epochNow, runBenchmark } from './support.ts';

// npm run bench:flash-sale: N buyers race for M units of one SKU during a declared flash sale, against
// the real processes (API, worker processes, the flash-sale controller, the sandbox providers at
// latency 0) on a PostgreSQL and a Redis of the bench's own. Each buyer posts one order of one unit as
// fast as a bounded pool of keep-alive connections allows; the door's answers are timed and counted,
// PostgreSQL's stock is polled, and every accepted order is followed until it is terminal. The results
// are judged against the targets: nothing oversold, few accepted orders failing out of stock,
// sold_out answered fast, and the last accepted order done soon after the last submission.

const { values: args } = parseArgs({
  options: {
    buyers: { type: 'string' },
    customers: { type: 'string' },
    units: { type: 'string' },
    clients: { type: 'string' },
    retries: { type: 'string' },
    workers: { type: 'string' },
    concurrency: { type: 'string' },
    'admission-wait': { type: 'string' },
    quick: { type: 'boolean' },
  },
});
function integer(name: keyof typeof args, fallback: number, min = 1): number {
  const value = args[name];
  const n = value === undefined ? fallback : Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${value}`);
  return n;
}
const quick = args.quick ?? false;
const BUYERS = integer('buyers', quick ? 1_000 : 10_000);
const CUSTOMERS = integer('customers', quick ? 100 : 1_000);
const UNITS = integer('units', quick ? 50 : 100);
const CLIENTS = integer('clients', 100);
const RETRIES = integer('retries', 3, 0);
const WORKERS = integer('workers', 2);
const CONCURRENCY = integer('concurrency', 10); // WORKER_CONCURRENCY's own default
const ADMISSION_WAIT_MS = integer('admission-wait', 15) * 1000;
const SKU = 'FRIEREN-01-LTD';
const REGION = 'eu';
// Every buyer may buy: a customer's buyers together stay within the sale's limit (at most 1,000, the API's).
const PURCHASE_LIMIT = Math.ceil(BUYERS / CUSTOMERS);
if (PURCHASE_LIMIT > 1_000)
  throw new Error('--buyers / --customers must be at most 1,000 (the largest purchase limit)');
const STOCK_POLL_MS = 100;
const TERMINAL_STALL_MS = 60_000;

async function main(interrupted: AbortSignal): Promise<void> {
  const startedAt = new Date();
  const loadavgAtStart = loadavg();
  const progress = createProgress();
  const log = (message: string) => progress.note(message);
  const cleanups: Array<() => Promise<unknown>> = [];
  const watchdog = startWatchdog();
  cleanups.push(() => watchdog.done());
  const logDir = await mkdtemp(join(tmpdir(), 'orderflow-flash-sale-logs-'));
  let succeeded = false;
  try {
    const servers = await startBenchServers(cleanups, log);
    const keys = await seedDemo(servers.appUrl);
    log(`${CUSTOMERS} customers with a customer API key each, for ${BUYERS} buyers`);
    const customers = await createBuyers(servers.appUrl, CUSTOMERS);

    log(`API, ${WORKERS} worker processes (WORKER_CONCURRENCY=${CONCURRENCY}), flash-sale controller, sandbox`);
    log(`their logs: ${logDir}`);
    const phase = { signal: interrupted, progress, watchdog };
    const system = await startFlashSaleSystem(
      { servers, workers: WORKERS, concurrency: CONCURRENCY, logDir },
      phase,
      cleanups,
    );
    const { namespace } = loadConfig(system.env);
    const failure = () => system.unexpectedExit();

    const admin = { apiUrl: system.apiUrl, adminKey: keys.adminKey };
    await setStock(admin, REGION, SKU, UNITS);
    const redis = new Redis(servers.redisUrl, { maxRetriesPerRequest: null });
    cleanups.push(() => redis.quit());
    const declaredAt = epochNow();
    const flashSaleId = await declareSale(admin, { region: REGION, sku: SKU, purchaseLimit: PURCHASE_LIMIT });
    log(
      `flash sale ${flashSaleId} declared for ${SKU} in ${REGION}, ${UNITS} units, limit ${PURCHASE_LIMIT} per customer`,
    );
    const readiness = await waitUntilHot(
      redis,
      { namespace, region: REGION, sku: SKU, declaredAt, admissionWaitMs: ADMISSION_WAIT_MS },
      interrupted,
      failure,
      log,
    );
    const counterAtStart = await readCounter(redis, readiness.admissionKey);

    const ledger = new Ledger(servers.monitorAppUrl, SKU, REGION);
    await ledger.connect();
    cleanups.push(() => ledger.close());
    const stockBefore = await ledger.stock();
    if (stockBefore.available !== UNITS) {
      throw new Error(`${SKU} has ${stockBefore.available} units available before the race, not ${UNITS}`);
    }
    const poller = await startStockPoller(servers.monitorAppUrl, SKU, REGION, STOCK_POLL_MS);
    cleanups.push(() => poller.stop());

    log(`race: ${BUYERS} buyers, ${CLIENTS} connections, up to ${RETRIES} retries after a 429`);
    const died = new AbortController();
    const watch = setInterval(() => {
      const failed = failure();
      if (failed) died.abort(new Error(`during the race, ${failed}`));
    }, 200);
    let drawnAt = 0;
    const race = await runRace(
      {
        apiUrl: system.apiUrl,
        region: REGION,
        sku: SKU,
        buyers: BUYERS,
        customers,
        clients: CLIENTS,
        retries: RETRIES,
      },
      AbortSignal.any([interrupted, died.signal]),
      (done) => {
        const now = performance.now();
        if (now - drawnAt < 100 && done < BUYERS) return;
        drawnAt = now;
        progress.update('race', done, BUYERS, 'buyers answered');
      },
    ).finally(() => clearInterval(watch));
    progress.end();

    const acceptedIds = race.outcomes.flatMap((a) => (a.orderId ? [a.orderId] : []));
    log(`race over in ${((race.finishedAt - race.startedAt) / 1000).toFixed(1)} s: ${acceptedIds.length} accepted`);
    const waitStarted = performance.now();
    const completion = await waitForTerminal(ledger, acceptedIds, {
      signal: interrupted,
      stallMs: TERMINAL_STALL_MS,
      failure,
      onProgress: (terminal) => progress.update('finishing', terminal, acceptedIds.length, 'accepted orders terminal'),
    });
    progress.end();
    if (completion.open > 0) {
      log(
        `${completion.open} accepted orders are still not terminal after ${TERMINAL_STALL_MS / 1000} s without progress`,
      );
    }
    await poller.stop();
    const facts = await ledger.facts(race.startedAt, acceptedIds);
    const counterAtEnd = await readCounter(redis, readiness.admissionKey);

    const parameters = {
      buyers: BUYERS,
      customers: CUSTOMERS,
      units: UNITS,
      clients: CLIENTS,
      retriesAfter429: RETRIES,
      purchaseLimit: PURCHASE_LIMIT,
      sku: SKU,
      region: REGION,
      flashSaleId,
      workerProcesses: WORKERS,
      workerConcurrency: CONCURRENCY,
      quick,
      sandboxLatencyMs: 0,
      bucketMs: BUCKET_MS,
      stockPollMs: STOCK_POLL_MS,
      admissionWaitS: ADMISSION_WAIT_MS / 1000,
      orderBody: '1 unit of the SKU, region eu; buyer i is customer i mod customers; an Idempotency-Key per buyer',
    };
    const results = buildResults(
      {
        parameters,
        loadavgAtStart,
        postgresVersion: servers.postgresVersion,
        startedAt,
        readiness,
        counterAtStart,
        counterAtEnd,
        stockBefore,
      },
      race,
      { ...completion, waitedMs: performance.now() - waitStarted },
      facts,
      poller.samples,
    );
    printReport(results);
    await writeResults(results);
    succeeded = true;
  } finally {
    progress.end();
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => console.error('cleanup failed:', error));
    }
    if (succeeded) await rm(logDir, { recursive: true, force: true });
    else console.error(`the application's logs are kept in ${logDir}`);
  }
}

await runBenchmark(main);
