import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError, TransientError } from '../domain/errors.ts';
import type { CacheMetrics } from './metrics.ts';

export type CacheRead<T> = { value: T; asOf: number; source: 'cache' | 'database' | 'stale'; ageMs: number };
type Entry<T> = { value: T; asOf: number };

export type ReadThroughOptions = {
  /** A database read slower than this serves the stale copy instead (when there is one). */
  budgetMs: number;
  /** How long the last value is kept, past its TTL, for serving while the database is slow or down. */
  staleRetentionMs: number;
  metrics: CacheMetrics;
  fillLockMs?: number;
};

// Writes the entry only if no invalidation happened since the fill read the version: a fill that
// loaded the old row must not put it back after the change's invalidation.
const writeIfCurrent = `
local current = redis.call('GET', KEYS[3]) or '0'
if current ~= ARGV[4] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
return 1`;

/**
 * A read-through cache over Redis. Each key has a fresh copy (expires with its TTL), a stale copy (kept
 * for outages), a version (bumped by every invalidation) and a fill lock. Misses are coalesced: within a
 * process by sharing the promise, across processes by the fill lock (the others wait for the winner's
 * value). Key names come from cache/keys.ts; derived keys share the base key's hash tag.
 */
export function createReadThrough(redis: Redis, options: ReadThroughOptions) {
  const inflight = new Map<string, Promise<Entry<unknown>>>();
  const lockMs = options.fillLockMs ?? 5_000;

  async function get<T>(key: string): Promise<Entry<T> | null> {
    const raw = await redis.get(key);
    return raw === null ? null : (JSON.parse(raw) as Entry<T>);
  }

  function fill<T>(cache: string, key: string, ttlMs: number, load: () => Promise<T>): Promise<Entry<T>> {
    const shared = inflight.get(key);
    if (shared) return shared as Promise<Entry<T>>;
    const filling = (async () => {
      const token = randomUUID();
      if ((await redis.set(`${key}:fill`, token, 'PX', lockMs, 'NX')) === null) {
        const filled = await waitForFill<T>(key);
        if (filled) return filled;
      }
      const version = (await redis.get(`${key}:ver`)) ?? '0';
      const started = performance.now();
      const entry: Entry<T> = { value: await load(), asOf: Date.now() };
      options.metrics.fill(cache, (performance.now() - started) / 1000);
      const json = JSON.stringify(entry);
      await redis.eval(
        writeIfCurrent,
        3,
        key,
        `${key}:stale`,
        `${key}:ver`,
        json,
        ttlMs,
        options.staleRetentionMs,
        version,
      );
      await redis.eval(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end",
        1,
        `${key}:fill`,
        token,
      );
      return entry;
    })().finally(() => inflight.delete(key));
    inflight.set(key, filling);
    return filling;
  }

  async function waitForFill<T>(key: string): Promise<Entry<T> | null> {
    const deadline = Date.now() + lockMs;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const entry = await get<T>(key);
      if (entry) return entry;
      if ((await redis.exists(`${key}:fill`)) === 0) return get<T>(key);
    }
    return null;
  }

  return {
    async read<T>(cache: string, key: string, ttlMs: number, load: () => Promise<T>): Promise<CacheRead<T>> {
      const cached = await get<T>(key);
      if (cached) {
        options.metrics.hit(cache);
        return { ...cached, source: 'cache', ageMs: Date.now() - cached.asOf };
      }
      options.metrics.miss(cache);
      try {
        const entry = await withBudget(fill(cache, key, ttlMs, load), options.budgetMs);
        return { ...entry, source: 'database', ageMs: Date.now() - entry.asOf };
      } catch (error) {
        // A caller's error (say, not found) is an answer, not an outage: no stale copy stands in for it.
        if (error instanceof AppError && !error.retryable) throw error;
        const stale = await get<T>(`${key}:stale`);
        if (!stale) {
          if (error instanceof TransientError) throw error;
          throw new TransientError('database_unavailable', 'The database is slow or down and nothing is cached', {
            cause: error,
          });
        }
        options.metrics.stale(cache);
        return { ...stale, source: 'stale', ageMs: Date.now() - stale.asOf };
      }
    },
    invalidate: (keys: readonly string[]) => invalidateCacheKeys(redis, keys, options.staleRetentionMs),
  };
}

/**
 * Drops the fresh copies (the stale ones stay for outages) and bars in-flight fills from writing back
 * what they read before the change. For writers that do not read through the cache (the controller).
 */
export async function invalidateCacheKeys(
  redis: Redis,
  keys: readonly string[],
  staleRetentionMs: number,
): Promise<void> {
  if (keys.length === 0) return;
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.incr(`${key}:ver`).pexpire(`${key}:ver`, staleRetentionMs).del(key);
  await pipeline.exec();
}
export type ReadThrough = ReturnType<typeof createReadThrough>;

function withBudget<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TransientError('database_unavailable', `The database did not answer within ${ms} ms`)),
      ms,
    );
  });
  // The fill goes on after the budget: its result still lands in the cache for the next reader.
  work.catch(() => {});
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
