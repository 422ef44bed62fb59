import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { z } from 'zod';
import { type DemoKeys, seedDemo } from '../../scripts/seed.ts';
import { createDatabase, type Db, sql } from '../../sql/database.ts';
import { setAvailable } from '../../sql/inventory.ts';
import { migrate } from '../../sql/migrate.ts';
import { readStock, type StockRow } from './invariants.ts';
import { type Processes, startProcesses } from './processes.ts';
import { type PostgresServer, type RedisServer, startPostgres, startRedis } from './servers.ts';

// The whole system on private servers and ports: PostgreSQL, Redis, the sandbox, one API, the workers
// and the flash-sale controller, configured with short timeouts so that the injected faults bite.

/** Free ports, asked of the kernel: runs never collide, with each other or with anything else. */
async function choosePorts() {
  const servers = await Promise.all(
    [0, 1, 2, 3, 4, 5, 6].map(async () => {
      const server = createServer().listen(0, '127.0.0.1');
      await once(server, 'listening');
      return server;
    }),
  );
  const [postgres, redis, api, gateway, carrier, controller, bedrock] = servers.map(
    (server) => (server.address() as AddressInfo).port,
  );
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return {
    postgres: postgres!,
    redis: redis!,
    api: api!,
    gateway: gateway!,
    carrier: carrier!,
    controller: controller!,
    bedrock: bedrock!,
  };
}
export const QUEUE_PREFIX = '{faults}';
/** Names the Redis keys outside the queues (hot SKU hash, inventory stream, cache, admission counters). */
export const REDIS_NAMESPACE = 'faults';

/**
 * RECONCILE_STUCK_AFTER_MS must exceed the longest quiet spell of an order that is still being worked
 * on, or the reconciler starts a second chain of jobs beside one that is only waiting for its backoff.
 * The longest induced: a provider step failing 4 times in a row inside a fault window waits up to 8 s
 * (1 s base, doubling; jitter only shortens it) after a 1 s timed-out attempt: 9 s < 10 s. A killed
 * job's order is picked up after 10 s + at most one 2 s interval, well before BullMQ's 30 s stall check.
 */
export const PIPELINE_ENV = {
  PAYMENT_TIMEOUT_MS: '1000',
  CARRIER_TIMEOUT_MS: '1000',
  RECONCILE_INTERVAL_MS: '2000',
  RECONCILE_STUCK_AFTER_MS: '10000',
  ORDER_RETRY_MAX: '1',
  ORDER_RETRY_BASE_DELAY_MS: '2000',
  WORKER_CONCURRENCY: '10',
  WORKER_SHUTDOWN_TIMEOUT_MS: '5000',
  IDEMPOTENCY_IN_FLIGHT_TIMEOUT_MS: '5000',
  // The returns load waits for deliveries and for returns' lost steps: both are found within seconds. The
  // sandbox carrier moves no parcel by itself, so every shipment stays on its way until the load delivers
  // it; a batch of 100 a second asks each of the ~350 of a full run every few seconds.
  TRACKING_POLL_MS: '1000',
  TRACKING_POLL_BATCH: '100',
  RETURN_SWEEP_MS: '2000',
  LOG_LEVEL: 'warn',
};

/**
 * The flash-sale controller's thresholds. The suite makes one SKU hot on purpose (a declared sale, see
 * flash-sale.ts); the sales-rate trigger is off, since the steady load would make every popular SKU hot,
 * and the low-stock one fires only at 0, so the limited SKUs keep racing for their last units in the
 * pipeline and turn hot once sold out. Three customers share the whole load: a per-customer purchase
 * limit would refuse most orders of a hot SKU, so it is out of the way. The cool-down is short enough to
 * happen within the run (restocked SKUs). The admission gate closes when admitted orders pile up in
 * front of the pipeline (a stall: workers killed, PostgreSQL restarting), down to 1 order/s.
 */
export const FLASH_SALE_ENV = {
  FLASH_SALE_HOT_RATE_PER_MIN: '0',
  FLASH_SALE_HOT_STOCK: '0',
  FLASH_SALE_COOL_DOWN_MS: '5000',
  FLASH_SALE_PURCHASE_LIMIT: '1000',
  FLASH_SALE_GATE_MIN_RATE: '1',
};

// Limited stock where orders race for the last units (out_of_stock at check or at reserve, releases),
// none at all for VAGABOND-VIZBIG-01 in eu (retried once, then parked), plenty for the rest; the run's
// hot SKU gets its own stock (`stock` below).
const STOCK: Record<string, Record<string, number>> = {
  eu: {
    'BERSERK-41': 100_000,
    'BERSERK-42': 60,
    'ONEPIECE-105': 100_000,
    'CHAINSAW-05': 100_000,
    'FRIEREN-01-LTD': 25,
    'VAGABOND-VIZBIG-01': 0,
  },
  us: { 'BERSERK-41': 100_000, 'BERSERK-42': 20, 'ONEPIECE-105': 100_000, 'CHAINSAW-05': 100_000, 'FRIEREN-01-LTD': 8 },
};

export type System = {
  postgres: PostgresServer;
  redis: RedisServer;
  db: Db;
  keys: DemoKeys;
  initialStock: StockRow[];
  /** The last stock movement before the run: the ones after it are the run's. */
  lastMovementBefore: number;
  processes: Processes;
  urls: { api: string; gateway: string; carrier: string; controller: string };
};

/** Starts everything; `onStarted` receives each part as soon as it exists, so that it can be cleaned up. */
export async function startSystem(options: {
  root: string;
  seed: number;
  workers: number;
  /** Stock that replaces the defaults above, such as the hot SKU's. */
  stock: Array<{ sku: string; region: string; available: number }>;
  onStarted: (stop: () => Promise<void>, kill?: () => void) => void;
}): Promise<System> {
  const PORTS = await choosePorts();
  const postgres = await startPostgres(options.root, PORTS.postgres);
  options.onStarted(postgres.stop);
  const redis = await startRedis(options.root, PORTS.redis);
  options.onStarted(redis.stop);

  await migrate(postgres.url);
  const keys = await seedDemo(postgres.url);
  // The suite's own connections carry a name, so that terminating "the application's" backends spares them.
  const db = await createDatabase({
    url: `${postgres.url}?application_name=orderflow-faults`,
    poolSize: 4,
    statementTimeoutMs: 15_000,
  });
  options.onStarted(() => db.end());
  for (const [region, levels] of Object.entries(STOCK)) {
    for (const [sku, available] of Object.entries(levels)) {
      if (!options.stock.some((s) => s.sku === sku && s.region === region))
        await setAvailable(db, sku, region, available);
    }
  }
  for (const { sku, region, available } of options.stock) await setAvailable(db, sku, region, available);
  const initialStock = await readStock(db);
  const lastMovementBefore = await db.oneFirst(sql.type(z.object({ id: z.number() }))`
    SELECT coalesce(max(id), 0)::int AS id FROM stock_movements`);

  const urls = {
    api: `http://127.0.0.1:${PORTS.api}`,
    gateway: `http://127.0.0.1:${PORTS.gateway}`,
    carrier: `http://127.0.0.1:${PORTS.carrier}`,
    controller: `http://127.0.0.1:${PORTS.controller}`,
  };
  const processes = await startProcesses({
    logDir: `${options.root}/logs`,
    workerCount: options.workers,
    readyUrls: { api: urls.api, gateway: urls.gateway, carrier: urls.carrier },
    controller: { env: { FLASH_SALE_PORT: String(PORTS.controller) }, readyUrl: urls.controller },
    sandboxEnv: {
      SANDBOX_HOST: '127.0.0.1',
      SANDBOX_GATEWAY_PORT: String(PORTS.gateway),
      SANDBOX_CARRIER_PORT: String(PORTS.carrier),
      SANDBOX_BEDROCK_PORT: String(PORTS.bedrock),
      SANDBOX_SEED: String(options.seed),
    },
    env: {
      ...PIPELINE_ENV,
      ...FLASH_SALE_ENV,
      REDIS_NAMESPACE,
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      QUEUE_PREFIX,
      HOST: '127.0.0.1',
      PORT: String(PORTS.api),
      PAYMENT_GATEWAY_URL: urls.gateway,
      CARRIER_URL: urls.carrier,
    },
  });
  options.onStarted(processes.stopAll, processes.killAllNow);
  return { postgres, redis, db, keys, initialStock, lastMovementBefore, processes, urls };
}
