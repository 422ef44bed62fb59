import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { Registry } from 'prom-client';
import { type RedisKeys, redisKeys } from '../cache/keys.ts';
import { createCacheMetrics } from '../cache/metrics.ts';
import { createOrderReader, type OrderReader } from '../cache/order-reader.ts';
import { createReadThrough, type ReadThrough } from '../cache/read-through.ts';
import { createStockReader, type StockReader } from '../cache/stock-reader.ts';
import { createBedrockClient } from '../chat/bedrock-client.ts';
import type { Config } from '../config/index.ts';
import { type Admission, admission } from '../flash-sale/admission.ts';
import { type Carrier, createCarrierClient } from '../providers/carrier.ts';
import { createLogMailer, type Mailer } from '../providers/mailer.ts';
import { createPaymentGatewayClient, type PaymentGateway } from '../providers/payment-gateway.ts';
import { createOrderQueues, type OrderQueues } from '../queues/order-queues.ts';
import { createDatabase, type Db, isDatabaseOutage } from '../sql/database.ts';
import { pingDatabase } from '../sql/health.ts';
import { createStepCommitter, type StepCommitter } from '../sql/step-runtime.ts';
import type { Logger } from './logger.ts';
import { collectProcessMetrics, createOrderMetrics, type OrderMetrics } from './metrics.ts';
import { createRedis, type RedisClient } from './redis.ts';

// Every I/O dependency of a process, built from the configuration in one place and closed in one
// place. Entry points build them; everything else receives them.

export type Deps = {
  db: Db;
  /** The steps' commits, grouped across orders (sql/group-commit.ts). */
  stepCommits: StepCommitter;
  redis: RedisClient;
  queues: OrderQueues;
  gateway: PaymentGateway;
  carrier: Carrier;
  mailer: Mailer;
  log: Logger;
  registry: Registry;
  /** Orders, steps and compensations (runtime/metrics.ts), on `registry`. */
  metrics: OrderMetrics;
  keys: RedisKeys;
  cache: ReadThrough;
  orders: OrderReader;
  stock: StockReader;
  /** Hot SKUs' admission counters and gate (flash-sale/admission.ts). */
  admission: Admission;
  /** The support assistant's model client (config `chat.bedrock`); null runs it on templates only. */
  bedrock: BedrockRuntimeClient | null;
  /** After a committed change to an order: its cached status, tracking and the customer's list go. */
  invalidateOrder(orderId: string, customerId?: string): Promise<void>;
  close(): Promise<void>;
};

export async function createDeps(
  config: Config,
  log: Logger,
  options: { failFastRedis?: boolean; autoPipelining?: boolean } = {},
): Promise<Deps> {
  const db = await connectWhenReady(config, log);
  const connect = (autoPipelining: boolean) =>
    createRedis(config.redis, { failFast: options.failFastRedis, autoPipelining }).on('error', (err) =>
      log.warn({ err: err.message }, 'redis connection error'),
    );
  const redis = connect(options.autoPipelining ?? false);
  // BullMQ does not document support for ioredis's auto-pipelining (Bull's users reported jobs losing
  // their data with it): with auto-pipelining, the queues get a plain connection of their own.
  const queueRedis = options.autoPipelining ? connect(false) : redis;
  const queues = createOrderQueues(
    queueRedis,
    config.redis.prefix,
    (err) => log.warn({ err: err.message }, 'queue connection error'),
    config.redis.shards,
  );
  const registry = new Registry();
  collectProcessMetrics(registry);
  const keys = redisKeys(config.namespace);
  const cache = createReadThrough(redis, {
    budgetMs: config.cache.dbReadBudgetMs,
    staleRetentionMs: config.cache.staleRetentionMs,
    metrics: createCacheMetrics(registry),
  });
  const orders = createOrderReader(db, cache, keys, config.cache.ttlMs);
  const bedrock = createBedrockClient(config.chat);
  const metrics = createOrderMetrics(registry);
  return {
    db,
    stepCommits: createStepCommitter(db, {
      onBatch: metrics.commitBatch,
      onBatchFailed: (lane, size, err) =>
        log.warn(
          { lane, size, err: (err as Error).message },
          'a group commit failed; its step commits ran one at a time',
        ),
    }),
    redis,
    queues,
    registry,
    metrics,
    keys,
    cache,
    orders,
    stock: createStockReader(db, redis, cache, keys, config.cache),
    admission: admission(redis, keys, registry),
    // A lost invalidation is bounded by the TTLs; it must never fail the change that caused it.
    invalidateOrder: (orderId, customerId) =>
      orders
        .invalidate(orderId, customerId)
        .catch((err) => log.warn({ orderId, err: err.message }, 'cache invalidation failed')),
    gateway: createPaymentGatewayClient(config.paymentGateway),
    carrier: createCarrierClient(config.carrier),
    mailer: createLogMailer(log),
    log,
    bedrock,
    async close() {
      bedrock?.destroy();
      await queues.close();
      redis.disconnect();
      if (queueRedis !== redis) queueRedis.disconnect();
      await db.end();
    },
  };
}

/**
 * A process that starts while PostgreSQL is restarting (or not up yet, as in a fresh compose up) waits
 * for it, up to a minute, instead of exiting.
 */
export async function connectWhenReady(config: Config, log: Logger): Promise<Db> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    // slonik's createPool connects at once, so it fails like the ping does while PostgreSQL starts up.
    let db: Db | undefined;
    try {
      db = await createDatabase(config.db, log);
      await pingDatabase(db);
      return db;
    } catch (error) {
      await db?.end().catch(() => {});
      const cause = (error as { cause?: unknown }).cause ?? error;
      if (!isDatabaseOutage(cause) || Date.now() > deadline) throw error;
      log.warn({ attempt, err: (error as Error).message }, 'PostgreSQL not ready; waiting');
      await new Promise((resolve) => setTimeout(resolve, Math.min(500 * attempt, 5_000)));
    }
  }
}
