import { z } from 'zod';
import type { RateLimitSettings } from '../api/rate-limit.ts';
import type { AdmissionSettings } from '../flash-sale/controller.ts';
import { type QueueName, queueNames } from '../queues/order-workflow.ts';

// The only module that reads process.env. Every setting is declared here once, with its default,
// and validated at start-up: a bad value stops the process with every problem listed.

const port = z.coerce.number().int().min(0).max(65_535);
const ms = z.coerce.number().int().min(1);
const url = z.url();
/** `host:port`, as in REDIS_CLUSTER_NODES. */
const hostPort = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')
  .transform((s) => {
    const at = s.lastIndexOf(':');
    return { host: s.slice(0, at), port: Number(s.slice(at + 1)) };
  });

const fields = z.object({
  DATABASE_URL: url.describe('PostgreSQL connection string'),
  REDIS_URL: url.describe('Redis connection string').optional(),
  // A Redis Cluster: its nodes (some or all; the others are discovered), comma-separated. When set, it
  // wins over REDIS_URL and every process connects with ioredis's Cluster client.
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((node) => node.trim())
        .filter(Boolean),
    )
    .pipe(z.array(hostPort).min(1))
    .optional(),
  HOST: z.string().default('0.0.0.0'),
  PORT: port.default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(64 * 1024),
  DB_POOL_SIZE: z.coerce.number().int().min(1).default(10),
  DB_STATEMENT_TIMEOUT_MS: ms.default(30_000),
  QUEUE_PREFIX: z.string().min(1).default('{orderflow}'),
  // The pipeline on N queue prefixes (queues/shards.ts): an order's whole flow on the shard its id hashes to.
  QUEUE_SHARDS: z.coerce.number().int().min(1).max(1024).default(1),
  IDEMPOTENCY_IN_FLIGHT_TIMEOUT_MS: ms.default(60_000),
  WORKER_QUEUES: z
    .string()
    .default(queueNames.join(','))
    .transform((s) =>
      s
        .split(',')
        .map((q) => q.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(queueNames as readonly QueueName[] as [QueueName, ...QueueName[]])).min(1)),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(10),
  WORKER_SHUTDOWN_TIMEOUT_MS: ms.default(30_000),
  WORKER_HEALTH_PORT: port.default(0),
  WORKER_STALE_AFTER_MS: ms.default(5 * 60_000),
  RECONCILE_INTERVAL_MS: ms.default(30_000),
  RECONCILE_STUCK_AFTER_MS: ms.default(10 * 60_000),
  TRACKING_POLL_MS: ms.default(60_000),
  TRACKING_POLL_BATCH: z.coerce.number().int().min(1).max(10_000).default(200),
  // Returns (SPEC §5): the window from delivery, how long a quote's token lasts, how long a return may
  // take to arrive before it expires, and how often the worker looks for expired (and stalled) returns.
  RETURN_WINDOW_DAYS: z.coerce.number().int().min(0).max(3650).default(30),
  RETURN_TOKEN_TTL_MS: ms.default(600_000),
  RETURN_RECEIPT_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  RETURN_SWEEP_MS: ms.default(10 * 60_000),
  ORDER_RETRY_MAX: z.coerce.number().int().min(0).max(20).default(3),
  ORDER_RETRY_BASE_DELAY_MS: ms.default(5 * 60_000),
  REDIS_NAMESPACE: z
    .string()
    .regex(/^[a-zA-Z0-9_-]+$/)
    .default('orderflow'),
  CACHE_TTL_PLACED_MS: ms.default(60 * 60_000),
  CACHE_TTL_STATUS_MS: ms.default(5 * 60_000),
  CACHE_TTL_TRACKING_MS: ms.default(15 * 60_000),
  CACHE_TTL_STOCK_MS: ms.default(60_000),
  CACHE_TTL_HOT_STOCK_MS: ms.default(5_000),
  CACHE_TTL_RECENT_ORDERS_MS: ms.default(30_000),
  CACHE_STALE_RETENTION_MS: ms.default(24 * 60 * 60_000),
  DB_READ_BUDGET_MS: ms.default(500),
  LOW_STOCK_THRESHOLD: z.coerce.number().int().min(0).default(5),
  FLASH_SALE_PORT: port.default(3002),
  FLASH_SALE_RATE_WINDOW_MS: ms.default(60_000),
  FLASH_SALE_HOT_RATE_PER_MIN: z.coerce.number().min(0).default(30),
  FLASH_SALE_HOT_STOCK: z.coerce.number().int().min(0).default(20),
  FLASH_SALE_COOL_DOWN_MS: ms.default(60_000),
  FLASH_SALE_PURCHASE_LIMIT: z.coerce.number().int().min(1).default(2),
  FLASH_SALE_RELAY_FALLBACK_POLL_MS: ms.default(1_000),
  FLASH_SALE_RELAY_LISTEN_URL: url.optional(),
  FLASH_SALE_ADMISSION_RESEED_MS: ms.default(2_000),
  FLASH_SALE_HEARTBEAT_MS: ms.default(5_000),
  FLASH_SALE_GATE_MIN_RATE: z.coerce.number().positive().default(5),
  FLASH_SALE_GATE_BACKLOG_SECONDS: z.coerce.number().positive().default(2),
  // Per API key and window, shared by every API process (api/rate-limit.ts); 0 turns a budget off. A
  // shopper's app sends a few requests a second; these leave a store's busiest key room for a flash
  // sale's checkout while one runaway key is turned away before it costs PostgreSQL anything.
  RATE_LIMIT_WINDOW_MS: ms.default(1_000),
  RATE_LIMIT_WRITES: z.coerce.number().int().min(0).default(100),
  RATE_LIMIT_READS: z.coerce.number().int().min(0).default(1_000),
  PAYMENT_GATEWAY_URL: url.default('http://127.0.0.1:4001'),
  PAYMENT_TIMEOUT_MS: ms.default(10_000),
  CARRIER_URL: url.default('http://127.0.0.1:4002'),
  CARRIER_TIMEOUT_MS: ms.default(5_000),
  // The support assistant (SPEC §6): Amazon Bedrock's Converse API when a model is named, the template
  // responder alone otherwise. Credentials come from the AWS SDK's standard chain, not from here.
  BEDROCK_MODEL_ID: z.string().min(1).optional(),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  BEDROCK_ENDPOINT: url.optional(),
  CHAT_TIMEOUT_MS: ms.default(8_000),
  CHAT_SESSION_TTL_MS: ms.default(30 * 60_000),
  CHAT_MAX_TOOL_CALLS: z.coerce.number().int().min(1).max(50).default(5),
});

// Checked beside the other problems (`when`: even if some field failed), so that every one is listed at once.
const schema = fields.superRefine(
  (e, ctx) => {
    if (!e.REDIS_URL && !e.REDIS_CLUSTER_NODES) {
      ctx.addIssue({ code: 'custom', path: ['REDIS_URL'], message: 'required, not set (or set REDIS_CLUSTER_NODES)' });
    }
    // BullMQ runs a flow's scripts over every queue of the flow at once: on a cluster they must share a slot.
    if (e.REDIS_CLUSTER_NODES && typeof e.QUEUE_PREFIX === 'string' && !/\{[^{}]+\}/.test(e.QUEUE_PREFIX)) {
      ctx.addIssue({
        code: 'custom',
        path: ['QUEUE_PREFIX'],
        message: 'on a Redis Cluster it must hold a {hash tag}, as the default {orderflow} does',
      });
    }
  },
  { when: () => true },
);

export type Env = z.input<typeof schema>;
export type { QueueName };
export { queueNames };

/** One Redis server, or a Redis Cluster named by some of its nodes (runtime/redis.ts connects to either). */
export type RedisTarget = { url: string } | { clusterNodes: Array<{ host: string; port: number }> };

export type Config = {
  db: { url: string; poolSize: number; statementTimeoutMs: number };
  /** `prefix` is the queues' (shard 0's when `shards` > 1: queues/shards.ts). */
  redis: RedisTarget & { prefix: string; shards: number };
  http: { host: string; port: number; bodyLimitBytes: number };
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
  idempotency: { inFlightTimeoutMs: number };
  worker: {
    queues: QueueName[];
    concurrency: number;
    shutdownTimeoutMs: number;
    healthPort: number;
    staleAfterMs: number;
  };
  reconciler: { everyMs: number; stuckAfterMs: number };
  /** How often the worker asks the carrier about shipments on their way, and at most how many per run. */
  tracking: { pollEveryMs: number; batchSize: number };
  orderRetry: { maxRetries: number; baseDelayMs: number };
  returns: ReturnSettings;
  /** Names every Redis key that is not a queue: cache, inventory stream, hot SKUs. */
  namespace: string;
  cache: {
    ttlMs: { placed: number; status: number; tracking: number; stock: number; hotStock: number; recentOrders: number };
    staleRetentionMs: number;
    dbReadBudgetMs: number;
    lowStockThreshold: number;
  };
  flashSale: {
    port: number;
    rateWindowMs: number;
    hotRatePerMinute: number;
    hotStock: number;
    coolDownMs: number;
    purchaseLimit: number;
    /**
     * How often the outbox relay looks for new inventory events without being notified: it bounds the
     * delay of an event whose notification was lost (the relay's LISTEN connection down).
     */
    relayFallbackPollMs: number;
    /** Where the relay LISTENs for new stock movements: a direct connection (a pooler in transaction mode drops LISTEN). */
    relayListenUrl: string;
    /** How often the controller renews the hot SKU hash, which expires 6 heartbeats after the last one. */
    heartbeatMs: number;
    admission: AdmissionSettings;
  };
  /** Requests per window per API key, writes (POST, PUT, PATCH, DELETE) and reads apart; 0 = unlimited. */
  rateLimit: RateLimitSettings;
  paymentGateway: { url: string; timeoutMs: number };
  carrier: { url: string; timeoutMs: number };
  chat: ChatSettings;
};

export type ChatSettings = {
  /** Unset: the template responder answers every turn. */
  bedrock: { modelId: string; region: string; endpoint?: string } | null;
  /** The latency budget of one turn on Bedrock, all its Converse calls together. */
  timeoutMs: number;
  sessionTtlMs: number;
  maxToolCalls: number;
};

/** Templates only, for an app built without a configuration (tests). */
export const defaultChatSettings: ChatSettings = {
  bedrock: null,
  timeoutMs: 8_000,
  sessionTtlMs: 30 * 60_000,
  maxToolCalls: 5,
};

export type ReturnSettings = {
  windowDays: number;
  tokenTtlMs: number;
  receiptDays: number;
  /** How often the worker expires returns not received in time and re-enqueues stalled return steps. */
  sweepEveryMs: number;
};

/** The defaults, for an app or worker built without a configuration (tests). */
export const defaultReturnSettings: ReturnSettings = {
  windowDays: 30,
  tokenTtlMs: 600_000,
  receiptDays: 30,
  sweepEveryMs: 10 * 60_000,
};

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Parses the environment against a schema; throws a ConfigError that lists every problem. */
export function parseEnv<T extends z.ZodType>(schema: T, env: Record<string, string | undefined>): z.infer<T> {
  // Empty strings count as unset, so `FOO=` in a .env file falls back to the default.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(cleaned);
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '(environment)');
      const given = cleaned[name];
      return given === undefined ? `${name}: required, not set` : `${name}: ${issue.message} (got "${given}")`;
    }),
  );
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const e = parseEnv(schema, env);
  return {
    db: { url: e.DATABASE_URL, poolSize: e.DB_POOL_SIZE, statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS },
    redis: {
      ...(e.REDIS_CLUSTER_NODES ? { clusterNodes: e.REDIS_CLUSTER_NODES } : { url: e.REDIS_URL! }),
      prefix: e.QUEUE_PREFIX,
      shards: e.QUEUE_SHARDS,
    },
    http: { host: e.HOST, port: e.PORT, bodyLimitBytes: e.BODY_LIMIT_BYTES },
    logLevel: e.LOG_LEVEL,
    idempotency: { inFlightTimeoutMs: e.IDEMPOTENCY_IN_FLIGHT_TIMEOUT_MS },
    worker: {
      queues: e.WORKER_QUEUES,
      concurrency: e.WORKER_CONCURRENCY,
      shutdownTimeoutMs: e.WORKER_SHUTDOWN_TIMEOUT_MS,
      healthPort: e.WORKER_HEALTH_PORT,
      staleAfterMs: e.WORKER_STALE_AFTER_MS,
    },
    reconciler: { everyMs: e.RECONCILE_INTERVAL_MS, stuckAfterMs: e.RECONCILE_STUCK_AFTER_MS },
    tracking: { pollEveryMs: e.TRACKING_POLL_MS, batchSize: e.TRACKING_POLL_BATCH },
    orderRetry: { maxRetries: e.ORDER_RETRY_MAX, baseDelayMs: e.ORDER_RETRY_BASE_DELAY_MS },
    returns: {
      windowDays: e.RETURN_WINDOW_DAYS,
      tokenTtlMs: e.RETURN_TOKEN_TTL_MS,
      receiptDays: e.RETURN_RECEIPT_DAYS,
      sweepEveryMs: e.RETURN_SWEEP_MS,
    },
    namespace: e.REDIS_NAMESPACE,
    cache: {
      ttlMs: {
        placed: e.CACHE_TTL_PLACED_MS,
        status: e.CACHE_TTL_STATUS_MS,
        tracking: e.CACHE_TTL_TRACKING_MS,
        stock: e.CACHE_TTL_STOCK_MS,
        hotStock: e.CACHE_TTL_HOT_STOCK_MS,
        recentOrders: e.CACHE_TTL_RECENT_ORDERS_MS,
      },
      staleRetentionMs: e.CACHE_STALE_RETENTION_MS,
      dbReadBudgetMs: e.DB_READ_BUDGET_MS,
      lowStockThreshold: e.LOW_STOCK_THRESHOLD,
    },
    flashSale: {
      port: e.FLASH_SALE_PORT,
      rateWindowMs: e.FLASH_SALE_RATE_WINDOW_MS,
      hotRatePerMinute: e.FLASH_SALE_HOT_RATE_PER_MIN,
      hotStock: e.FLASH_SALE_HOT_STOCK,
      coolDownMs: e.FLASH_SALE_COOL_DOWN_MS,
      purchaseLimit: e.FLASH_SALE_PURCHASE_LIMIT,
      relayFallbackPollMs: e.FLASH_SALE_RELAY_FALLBACK_POLL_MS,
      relayListenUrl: e.FLASH_SALE_RELAY_LISTEN_URL ?? e.DATABASE_URL,
      heartbeatMs: e.FLASH_SALE_HEARTBEAT_MS,
      admission: {
        reseedEveryMs: e.FLASH_SALE_ADMISSION_RESEED_MS,
        gate: { minRate: e.FLASH_SALE_GATE_MIN_RATE, backlogSeconds: e.FLASH_SALE_GATE_BACKLOG_SECONDS },
      },
    },
    rateLimit: { windowMs: e.RATE_LIMIT_WINDOW_MS, writes: e.RATE_LIMIT_WRITES, reads: e.RATE_LIMIT_READS },
    paymentGateway: { url: e.PAYMENT_GATEWAY_URL, timeoutMs: e.PAYMENT_TIMEOUT_MS },
    carrier: { url: e.CARRIER_URL, timeoutMs: e.CARRIER_TIMEOUT_MS },
    chat: {
      bedrock: e.BEDROCK_MODEL_ID
        ? { modelId: e.BEDROCK_MODEL_ID, region: e.AWS_REGION, endpoint: e.BEDROCK_ENDPOINT }
        : null,
      timeoutMs: e.CHAT_TIMEOUT_MS,
      sessionTtlMs: e.CHAT_SESSION_TTL_MS,
      maxToolCalls: e.CHAT_MAX_TOOL_CALLS,
    },
  };
}

/** For entry points: `orExit(() => loadConfig())` prints every problem and exits instead of throwing. */
export function orExit<T>(load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
}

/** For one-shot tools (migrate, seed) that need nothing but the database. */
export function loadDatabaseUrl(env: Record<string, string | undefined> = process.env): string {
  return parseEnv(z.object({ DATABASE_URL: url }), env).DATABASE_URL;
}
