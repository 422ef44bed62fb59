import { randomUUID } from 'node:crypto';
import { AppError, TransientError, toAppError } from '../domain/errors.ts';
import { groupsForPipelines, type RedisClient } from '../runtime/redis.ts';
import type { CacheMetrics } from './metrics.ts';

export type CacheSource = 'cache' | 'database' | 'stale';
/**
 * A cached value as the JSON it is stored as, so an answer can carry it without parsing it again, and
 * its as-of time both as epoch milliseconds and as the ISO 8601 text answers show.
 */
export type CachedJson = { json: string; asOf: number; asOfIso: string; source: CacheSource; ageMs: number };
export type CacheRead<T> = { value: T; asOf: number; asOfIso: string; source: CacheSource; ageMs: number };
/** What a miss needs: the metric's name for the cache, the key, its TTL, and how to load the value. */
export type CacheFill<T> = { cache: string; key: string; ttlMs: number; load: () => Promise<T> };
type Stored = { json: string; asOf: number; asOfIso: string };

export type ReadThroughOptions = {
  /** A database read slower than this serves the stale copy instead, when there is one; else it waits. */
  budgetMs: number;
  /** How long the last value is kept, past its TTL, for serving while the database is slow or down. */
  staleRetentionMs: number;
  metrics: CacheMetrics;
  fillLockMs?: number;
};

// An entry is `of2|<as-of ms>|<as-of ISO 8601>|<value as JSON>`. Only loadAndWrite stores one, from a
// value the load validated (sql/ parses every row), so a hit checks the tag, the shape of the as-of and
// the JSON's outer brackets instead of validating the value again. The as-of is stored in both forms
// because every answer shows its ISO text: formatting it once per fill, not once per hit. Anything else
// under the key (another format, such as `of1` entries of an older process, or a truncated value) is a
// miss.
const TAG = 'of2|';
const ISO_LENGTH = 24; // YYYY-MM-DDTHH:mm:ss.sssZ, as toISOString writes any moment from 1970 to 9999

const encode = ({ json, asOf, asOfIso }: Stored) => `${TAG}${asOf}|${asOfIso}|${json}`;

function decode(raw: string | null): Stored | null {
  if (raw === null || !raw.startsWith(TAG)) return null;
  const bar = raw.indexOf('|', TAG.length);
  if (bar === -1) return null;
  const start = bar + ISO_LENGTH + 2; // the JSON's first character
  // The ISO as-of's `T` and closing `Z|`: the value starts right after them.
  if (raw.charCodeAt(bar + 11) !== 84 || raw.charCodeAt(start - 2) !== 90 || raw.charCodeAt(start - 1) !== 124) {
    return null;
  }
  const asOf = Number(raw.slice(TAG.length, bar));
  const first = raw.charCodeAt(start);
  const last = raw.charCodeAt(raw.length - 1);
  const container = (first === 123 && last === 125) || (first === 91 && last === 93); // {…} or […]
  if (!container || !Number.isSafeInteger(asOf) || asOf <= 0) return null;
  return { json: raw.slice(start), asOf, asOfIso: raw.slice(bar + 1, start - 1) };
}

const answer = (stored: Stored, source: CacheSource, now = Date.now()): CachedJson => ({
  json: stored.json,
  asOf: stored.asOf,
  asOfIso: stored.asOfIso,
  source,
  ageMs: now - stored.asOf,
});

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

const deleteIfEqual = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0`;

const LATE = Symbol('late');

/**
 * A read-through cache over Redis. Each key has a fresh copy (expires with its TTL), a stale copy (kept
 * for outages), a version (bumped by every invalidation) and a fill lock. Misses are coalesced: within a
 * process by sharing the promise, across processes by the fill lock (the others wait for the winner's
 * value). Key names come from cache/keys.ts; derived keys share the base key's hash tag.
 */
export function createReadThrough(redis: RedisClient, options: ReadThroughOptions) {
  const inflight = new Map<string, Promise<Stored>>();
  const lockMs = options.fillLockMs ?? 5_000;
  const { metrics } = options;

  const get = async (key: string) => decode(await redis.get(key));

  function fill<T>({ cache, key, ttlMs, load }: CacheFill<T>): Promise<Stored> {
    const shared = inflight.get(key);
    if (shared) return shared;
    const filling = (async () => {
      const token = randomUUID();
      // Another process is filling: wait for its value for as long as it holds the lock. If it let go
      // without writing one (its load failed, or an invalidation barred the write), try for the lock.
      while ((await redis.set(`${key}:fill`, token, 'PX', lockMs, 'NX')) === null) {
        const filled = await waitForFill(key);
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
      const filledMeanwhile = await get(key);
      if (filledMeanwhile) {
        await release();
        return filledMeanwhile;
      }
      // The lock lasts as long as the load: renewed while it runs, it expires only if this process dies.
      const renewal = setInterval(() => {
        redis.eval(extendIfOwner, 1, `${key}:fill`, token, lockMs).catch(() => {});
      }, lockMs / 3);
      let stored: Stored;
      try {
        stored = await loadAndWrite(cache, key, ttlMs, load);
      } catch (error) {
        // A fill that failed (say, the order does not exist) lets go of the lock at once, or every reader
        // of the key would wait it out. The original error is the one that matters: the lock expires by
        // itself if Redis cannot take the release.
        await release().catch(() => {});
        throw error;
      } finally {
        clearInterval(renewal);
      }
      await release();
      return stored;
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
    const asOf = Date.now();
    const stored: Stored = { json: JSON.stringify(value), asOf, asOfIso: new Date(asOf).toISOString() };
    metrics.fill(cache, (performance.now() - started) / 1000);
    await redis.eval(
      writeIfCurrent,
      3,
      key,
      `${key}:stale`,
      `${key}:ver`,
      encode(stored),
      ttlMs,
      options.staleRetentionMs,
      version,
    );
    return stored;
  }

  /** Waits while another process holds the key's fill lock: its value, or null if it let go without one. */
  async function waitForFill(key: string): Promise<Stored | null> {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      const stored = await get(key);
      if (stored) return stored;
      if ((await redis.exists(`${key}:fill`)) === 0) return get(key);
    }
  }

  /**
   * The value after a miss. The budget only chooses between stale and fresh: a fill slower than it
   * serves the stale copy if there is one, and otherwise goes on waiting for PostgreSQL (its statement
   * timeout bounds the wait). 503 database_unavailable is for a fill that failed: PostgreSQL (or Redis,
   * during the fill) unreachable, with nothing stale to serve instead.
   */
  async function readMissed<T>(miss: CacheFill<T>, unreadable?: Stored | null): Promise<CachedJson> {
    metrics.miss(miss.cache);
    // An entry in the format whose value does not parse goes, or the fill would find it and return it.
    if (unreadable) await redis.eval(deleteIfEqual, 1, miss.key, encode(unreadable));
    const filling = fill(miss);
    // The fill goes on after the budget: its result still lands in the cache for the next reader.
    filling.catch(() => {});
    try {
      const filled = await within(filling, options.budgetMs);
      if (filled !== LATE) return answer(filled, 'database');
      const stale = await get(`${miss.key}:stale`);
      if (stale) {
        metrics.stale(miss.cache);
        return answer(stale, 'stale');
      }
      metrics.waited(miss.cache);
      return answer(await filling, 'database');
    } catch (error) {
      // Only an outage (of PostgreSQL, or of Redis during the fill) is answered from the stale copy or
      // with a 503. A caller's error (not found, a value the database refused) or a bug is the answer.
      if (error instanceof AppError && !(error instanceof TransientError)) throw error;
      // Redis down fails this read too: then there is no stale copy to serve, and the answer is the 503.
      const stale = await get(`${miss.key}:stale`).catch(() => null);
      if (!stale) {
        if (error instanceof TransientError) throw error;
        throw new TransientError('database_unavailable', 'The cache could not be filled and nothing is cached', {
          cause: error,
        });
      }
      metrics.stale(miss.cache);
      return answer(stale, 'stale');
    }
  }

  return {
    /**
     * The cached entries of several keys in one round trip (MGET; the keys must share a hash tag),
     * null for each one missing or not in the entry format. Counts the hits; pass the nulls to readMissed,
     * and an entry whose JSON the caller cannot parse as its second argument.
     */
    async lookup(caches: readonly string[], keys: readonly string[]): Promise<Array<CachedJson | null>> {
      // Redis unreachable: every key is a miss, and readMissed answers 503 if the fill cannot be made.
      const raws = await redis.mget(keys as string[]).catch(() => keys.map(() => null));
      const now = Date.now();
      const found: Array<CachedJson | null> = new Array(raws.length);
      for (let i = 0; i < raws.length; i++) {
        const stored = decode(raws[i] ?? null);
        if (stored) metrics.hit(caches[i]!);
        found[i] = stored && answer(stored, 'cache', now);
      }
      return found;
    },
    readMissed,
    /** One key's value, parsed: an entry that does not parse is a miss. */
    async read<T>(cache: string, key: string, ttlMs: number, load: () => Promise<T>): Promise<CacheRead<T>> {
      const cached = await get(key).catch(() => null);
      const value = cached ? parseJson<T>(cached.json) : undefined;
      if (cached && value !== undefined) {
        metrics.hit(cache);
        const { asOf, asOfIso } = cached;
        return { value, asOf, asOfIso, source: 'cache', ageMs: Date.now() - asOf };
      }
      const { json, ...read } = await readMissed({ cache, key, ttlMs, load }, cached);
      return { ...read, value: JSON.parse(json) as T };
    },
    invalidate: (keys: readonly string[]) => invalidateCacheKeys(redis, keys, options.staleRetentionMs),
  };
}

/**
 * Drops the fresh copies (the stale ones stay for outages) and bars in-flight fills from writing back
 * what they read before the change. For writers that do not read through the cache (the controller).
 */
export async function invalidateCacheKeys(
  redis: RedisClient,
  keys: readonly string[],
  staleRetentionMs: number,
): Promise<void> {
  if (keys.length === 0) return;
  const scripted = withInvalidateScript(redis);
  await Promise.all(
    groupsForPipelines(redis, keys).map((group) =>
      scripted[INVALIDATE](group.length * 2, ...group.flatMap((key) => [key, `${key}:ver`]), staleRetentionMs),
    ),
  );
}

// Every key's version bumped (with its expiry) and its fresh copy dropped, as one command per group of
// keys on one node: the workers invalidate an order's keys after every status change, and nine commands
// each time cost the client about six times the CPU of one script call (and Redis twice as much).
// KEYS: each key followed by its version key; ARGV[1]: the version keys' lifetime in ms.
const INVALIDATE = 'ofInvalidate';
const invalidateLua = `
for i = 1, #KEYS, 2 do
  redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
  redis.call('DEL', KEYS[i])
end
return #KEYS / 2`;
type Invalidating = { [INVALIDATE](numberOfKeys: number, ...args: Array<string | number>): Promise<unknown> };

function withInvalidateScript(redis: RedisClient): RedisClient & Invalidating {
  if (typeof (redis as unknown as Partial<Invalidating>)[INVALIDATE] !== 'function') {
    redis.defineCommand(INVALIDATE, { lua: invalidateLua });
  }
  return redis as RedisClient & Invalidating;
}
export type ReadThrough = ReturnType<typeof createReadThrough>;

function parseJson<T>(json: string): T | undefined {
  try {
    return JSON.parse(json) as T;
  } catch {
    return undefined;
  }
}

/** The work's result, or LATE if it has not settled within `ms`. */
function within<T>(work: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(resolve, ms, LATE);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
