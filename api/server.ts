import { serve } from '@hono/node-server';
import { loadConfig, orExit } from '../config/index.ts';
import { createDeps } from '../runtime/deps.ts';
import { createLogger } from '../runtime/logger.ts';
import { createApp } from './app.ts';

const config = orExit(() => loadConfig());
const log = createLogger(config.logLevel, 'api');
// failFast: while Redis is down a request must not hang waiting for it (orders are durable in
// PostgreSQL first and the reconciler enqueues them later). autoPipelining: the commands of concurrent
// requests share writes (runtime/redis.ts).
const deps = await createDeps(config, log, { failFastRedis: true, autoPipelining: true });
const app = createApp({
  ...deps,
  bodyLimitBytes: config.http.bodyLimitBytes,
  idempotencyStaleAfterMs: config.idempotency.inFlightTimeoutMs,
  recentOrdersTtlMs: config.cache.ttlMs.recentOrders,
  rateLimit: config.rateLimit,
  returns: config.returns,
  chat: config.chat,
});
log.info(
  config.chat.bedrock
    ? { assistant: 'bedrock', modelId: config.chat.bedrock.modelId, region: config.chat.bedrock.region }
    : { assistant: 'template' },
  config.chat.bedrock
    ? 'support assistant on Amazon Bedrock (templates when it fails)'
    : 'support assistant on templates only: BEDROCK_MODEL_ID is not set',
);

const server = serve({ fetch: app.fetch, hostname: config.http.host, port: config.http.port }, (info) => {
  log.info({ url: `http://${info.address}:${info.port}` }, 'api listening');
});

server.on('error', (err) => {
  log.fatal({ err: err.message, host: config.http.host, port: config.http.port }, 'api cannot listen');
  process.exit(1);
});

// Stop accepting connections, let requests in flight finish, then close PostgreSQL and Redis.
async function shutdown(signal: string) {
  log.info({ signal }, 'api stopping');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await deps.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
