import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { AppError, TransientError, toAppError } from '../domain/errors.ts';
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

const extendIfOwner = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

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
      // Another process is filling: wait for its value for as long as it holds the lock. If it let go
      // without writing one (its load failed, or an invalidation barred the write), try for the lock.
      while ((await redis.set(`${key}:fill`, token, 'PX', lockMs, 'NX')) === null) {
        const filled = await waitForFill<T>(key);
        if (filled) return filled;
      }
      const release = () =>
        redis.eval(
          "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end",
          1,
          `${key}:fill`,
          token,
        );
      // A fill that finished between our miss and our lock has left its value: no second load.
      const filledMeanwhile = await get<T>(key);
      if (filledMeanwhile) {
        await release();
        return filledMeanwhile;
      }
      // The lock lasts as long as the load: renewed while it runs, it expires only if this process dies.
      const renewal = setInterval(() => {
        redis.eval(extendIfOwner, 1, `${key}:fill`, token, lockMs).catch(() => {});
      }, lockMs / 3);
      let entry: Entry<T>;
      try {
        entry = await loadAndWrite(cache, key, ttlMs, load);
      } catch (error) {
        // A fill that failed (say, the order does not exist) lets go of the lock at once, or every reader
        // of the key would wait it out and answer 503. The original error is the one that matters: the
        // lock expires by itself if Redis cannot take the release.
        await release().catch(() => {});
        throw error;
      } finally {
        clearInterval(renewal);
      }
      await release();
      return entry;
    })().finally(() => inflight.delete(key));
    inflight.set(key, filling);
    return filling;
  }

  async function loadAndWrite<T>(cache: string, key: string, ttlMs: number, load: () => Promise<T>) {
    const version = (await redis.get(`${key}:ver`)) ?? '0';
    const started = performance.now();
    // sql/ translates every database error, so anything else the load throws is a bug, not an outage.
    const value = await load().catch((error: unknown) => {
      throw toAppError(error);
    });
    const entry: Entry<T> = { value, asOf: Date.now() };
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
    return entry;
  }

  /** Waits while another process holds the key's fill lock: its value, or null if it let go without one. */
  async function waitForFill<T>(key: string): Promise<Entry<T> | null> {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const entry = await get<T>(key);
      if (entry) return entry;
      if ((await redis.exists(`${key}:fill`)) === 0) return get<T>(key);
    }
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
        // Only an outage (of PostgreSQL, or of Redis during the fill) is answered from the stale copy or
        // with a 503. A caller's error (not found, a value the database refused) or a bug is the answer.
        if (error instanceof AppError && !(error instanceof TransientError)) throw error;
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
