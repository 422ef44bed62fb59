import { randomBytes } from 'node:crypto';
import type { Worker } from 'bullmq';
import { inject } from 'vitest';
import { createApp } from '../../api/app.ts';
import { type Config, loadConfig } from '../../config/index.ts';
import { isTerminal } from '../../domain/order-status.ts';
import type { Mailer } from '../../providers/mailer.ts';
import { createDeps, type Deps } from '../../runtime/deps.ts';
import { createLogger } from '../../runtime/logger.ts';
import { type Sandbox, type SandboxOptions, startSandbox } from '../../sandbox/server.ts';
import { type DemoKeys, demoAddress, seedDemo } from '../../scripts/seed.ts';
import { setAvailable } from '../../sql/inventory.ts';
import { findOrder, type Order } from '../../sql/orders.ts';
import { findShipment, type Shipment } from '../../sql/shipments.ts';
import { listAttempts } from '../../sql/step-attempts.ts';
import { trackShipments } from '../../workers/maintenance.ts';
import { startWorkers } from '../../workers/start-workers.ts';
import { deleteKeys } from './delete-keys.ts';
import { databaseUrl, redisUrl } from './env.ts';
import { adminQuery } from './global-setup.ts';
import { waitFor } from './wait-for.ts';

export type Harness = Awaited<ReturnType<typeof startHarness>>;

export type HarnessOptions = {
  sandbox?: SandboxOptions;
  /** Run the pipeline workers in this process (default true). */
  workers?: boolean;
  concurrency?: number;
  env?: Record<string, string>;
  /** Skip removing the queues at the end (their Redis is gone, or private to the test). */
  keepQueues?: boolean;
  /** The workers' mail transport (a third party: a test fakes it here, the log mailer otherwise). */
  mailer?: Mailer;
};

/**
 * The whole system for one test file, on the real servers: a fresh database cloned from the migrated
 * template and seeded with the demo data, a queue prefix of its own in Redis, the sandbox providers
 * over HTTP, the API (called with app.request) and, unless told otherwise, the workers in-process.
 */
export async function startHarness(options: HarnessOptions = {}) {
  const suffix = randomBytes(4).toString('hex');
  const dbName = `orderflow_test_${suffix}`;
  await adminQuery(`CREATE DATABASE "${dbName}" TEMPLATE "${inject('templateDatabase')}"`);
  const sandbox: Sandbox = await startSandbox({ gatewayPort: 0, carrierPort: 0, seed: 1, ...options.sandbox });
  const env = {
    DATABASE_URL: databaseUrl(dbName),
    REDIS_URL: redisUrl,
    QUEUE_PREFIX: `{oft-${suffix}}`,
    REDIS_NAMESPACE: `oft-${suffix}`,
    PAYMENT_GATEWAY_URL: sandbox.gateway.url,
    CARRIER_URL: sandbox.carrier.url,
    // The assistant's Bedrock is the sandbox's fake, once a test names a model (BEDROCK_MODEL_ID).
    BEDROCK_ENDPOINT: sandbox.bedrock.url,
    // Two test files run at once, each with a worker pool and an API pool, beside other clients of the
    // same server (max_connections 100): keep pools small.
    DB_POOL_SIZE: '10',
    LOG_LEVEL: 'silent',
    ...options.env,
  };
  const config: Config = loadConfig(env);
  const log = createLogger(config.logLevel, 'test');
  const built: Deps = await createDeps(config, log);
  const deps: Deps = options.mailer ? { ...built, mailer: options.mailer } : built;
  const keys: DemoKeys = await seedDemo(config.db.url);
  // The API gets its own fail-fast, auto-pipelined Redis connection, as api/server.ts does, so a request
  // does not wait for a Redis that is down.
  const apiDeps: Deps = await createDeps({ ...config, db: { ...config.db, poolSize: 5 } }, log, {
    failFastRedis: true,
    autoPipelining: true,
  });
  const app = createApp({
    ...apiDeps,
    bodyLimitBytes: config.http.bodyLimitBytes,
    idempotencyStaleAfterMs: 60_000,
    recentOrdersTtlMs: config.cache.ttlMs.recentOrders,
    rateLimit: config.rateLimit,
    chat: config.chat,
  });
  const workers: Worker[] =
    options.workers === false
      ? []
      : await startWorkers(deps, deps.queues, {
          queues: config.worker.queues,
          concurrency: options.concurrency ?? 10,
          reconcileEveryMs: config.reconciler.everyMs,
          stuckAfterMs: config.reconciler.stuckAfterMs,
          retryPolicy: config.orderRetry,
        });

  const customerKey = keys.customers[0]!.apiKey;

  async function request(
    method: string,
    path: string,
    init: { key?: string; body?: unknown; headers?: Record<string, string> } = {},
  ) {
    const headers: Record<string, string> = { ...init.headers };
    if (init.key !== undefined) headers.authorization = `Bearer ${init.key}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const response = await app.request(path, {
      method,
      headers,
      body: init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
  }

  /** Waits until the order is COMPLETED, FAILED or CANCELLED (the test's timeout is the only limit). */
  async function waitForTerminal(orderId: string): Promise<Order> {
    const read = async () => {
      const order = await findOrder(deps.db, orderId);
      if (order && isTerminal(order.status)) return { order, steps: [] };
      const steps = (await listAttempts(deps.db, orderId)).map((a) => `${a.step}#${a.attempt}:${a.outcome}`);
      return { order, steps };
    };
    const { order } = await waitFor(
      `order ${orderId} to end`,
      read,
      (r) => r.order !== null && isTerminal(r.order.status),
      {
        describe: (r) => `${r.order?.status ?? 'no such order'} (${r.steps.join(', ')})`,
      },
    );
    return order!;
  }

  /**
   * Delivers a shipped order as the carrier would: the sandbox carrier moves its shipment to delivered,
   * and the tracking poll (the maintenance job's work, run here at once) stores it.
   */
  async function deliver(orderId: string): Promise<Shipment> {
    const shipment = await findShipment(deps.db, orderId);
    if (!shipment) throw new Error(`order ${orderId} has no shipment to deliver`);
    const advanced = await fetch(`${sandbox.carrier.url}/_sandbox/shipments/${shipment.carrier_shipment_id}/advance`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'delivered' }),
    });
    if (advanced.status !== 200)
      throw new Error(`the sandbox carrier answered ${advanced.status} to delivering ${orderId}`);
    await trackShipments(deps, 50);
    return shipment;
  }

  /** Waits until no job is waiting, running or delayed in any queue: every effect has settled. */
  async function waitForQuiet(): Promise<void> {
    const read = () =>
      Promise.all(
        // The maintenance queue always holds the reconciler's next run (delayed); its other states count.
        Object.entries(deps.queues.queues).map(async ([name, q]) => ({
          name,
          ...(name === 'maintenance'
            ? await q.getJobCounts('waiting', 'active')
            : await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children')),
        })),
      );
    await waitFor('the queues to be quiet', read, (counts) =>
      counts.every(({ name: _, ...c }) => Object.values(c).every((n) => n === 0)),
    );
  }

  /** Stops everything but the database (which close() then drops): every connection to it ends. */
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      await Promise.all(workers.map((w) => w.close()));
      if (options.keepQueues !== true) {
        await Promise.all(Object.values(deps.queues.queues).map((q) => q.obliterate({ force: true })));
        await deleteKeys(deps.redis, `${config.namespace}:*`);
      }
      await apiDeps.close();
      await deps.close();
      await sandbox.close();
    })();
    return stopped;
  };

  return {
    app,
    apiDeps,
    workers,
    waitForQuiet,
    deps,
    config,
    env,
    sandbox,
    keys,
    customerKey,
    adminKey: keys.adminKey,
    request,
    placeOrder: (body: unknown, key = customerKey, headers?: Record<string, string>) =>
      request('POST', '/orders', { key, body, headers }),
    waitForTerminal,
    deliver,
    setStock: (sku: string, region: string, available: number) => setAvailable(deps.db, sku, region, available),
    stop,
    async close() {
      await stop();
      await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    },
  };
}

export function orderBody(
  overrides: Partial<{ items: Array<{ sku: string; quantity: number }>; token: string; region: string }> = {},
) {
  return {
    region: overrides.region ?? 'eu',
    items: overrides.items ?? [{ sku: 'BERSERK-42', quantity: 1 }],
    shippingAddress: demoAddress,
    payment: { token: overrides.token ?? '4242424242424242' },
  };
}
