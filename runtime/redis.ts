import { Redis } from 'ioredis';

/**
 * maxRetriesPerRequest: null makes commands wait for Redis to come back instead of failing after a
 * few tries: BullMQ requires it for workers, and it keeps a worker consuming after a Redis restart.
 * The API passes `failFast` so that a request does not hang while Redis is down.
 */
export function createRedis(url: string, options: { failFast?: boolean } = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: !options.failFast,
    connectionName: 'orderflow',
  });
}
