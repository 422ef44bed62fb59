import { invalidateCacheKeys } from '../cache/read-through.ts';
import { loadConfig, orExit } from '../config/index.ts';
import { connectWhenReady } from '../runtime/deps.ts';
import { createLogger } from '../runtime/logger.ts';
import { createRedis } from '../runtime/redis.ts';
import { startFlashSaleController } from './start-flash-sale-controller.ts';

// The flash-sale controller process (`npm run start:flash-sale`): the outbox relay and the controller.
// Redis with maxRetriesPerRequest null (createRedis's default): commands wait for a Redis that restarts
// instead of failing, and the stream reading carries on after it.

const config = orExit(() => loadConfig());
const log = createLogger(config.logLevel, 'flash-sale');
const db = await connectWhenReady(config, log);
const redis = createRedis(config.redis);
redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
// The read path's invalidation, not a bare DEL: it also stops a cache fill in flight, which read the
// stock before the change, from writing it back.
const cache = {
  invalidate: (keys: readonly string[]) => invalidateCacheKeys(redis, keys, config.cache.staleRetentionMs),
};
const flashSale = await startFlashSaleController(
  { db, redis, log, cache },
  { ...config.flashSale, namespace: config.namespace },
);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'flash-sale controller stopping');
  // Unacknowledged events stay pending in the group and are handled after the restart.
  const timer = setTimeout(() => {
    log.error('flash-sale controller did not stop in time; exiting');
    process.exit(1);
  }, 10_000);
  await flashSale.stop();
  redis.disconnect();
  await db.end();
  clearTimeout(timer);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
