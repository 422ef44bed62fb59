import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import {
  type ClientRateLimitInfo,
  type HonoConfigType,
  type RateLimitInfo,
  rateLimiter,
  type Store,
} from 'hono-rate-limiter';
import type { RedisKeys } from '../cache/keys.ts';
import { AppError } from '../domain/errors.ts';
import type { Logger } from '../runtime/logger.ts';
import type { RedisClient } from '../runtime/redis.ts';
import type { AuthEnv } from './auth.ts';

// Per-API-key rate limits (SPEC §7), shared by every API process through Redis: a fixed window per key
// and budget, counted by one Redis key that lives for one window (the first hit sets its expiry). Writes
// and reads have budgets of their own, so a client polling its orders does not use up its checkout.

export type RateLimitSettings = {
  /** Length of a window; each API key's counters start with its first request in it. */
  windowMs: number;
  /** Requests per window per key for POST, PUT, PATCH and DELETE; 0 = no limit. */
  writes: number;
  /** Requests per window per key for every other method (GET, HEAD); 0 = no limit. */
  reads: number;
};

export type Budget = 'writes' | 'reads';

const writeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function budgetOf(method: string): Budget {
  return writeMethods.has(method.toUpperCase()) ? 'writes' : 'reads';
}

/** Counts a hit: [hits in this window, ms until the window ends]. The first hit of a window sets its expiry. */
const hitScript = `
local hits = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {hits, ttl}
`;

/** Takes back a hit, never below zero and never outliving its window (a key gone stays gone). */
const unhitScript = `
local hits = tonumber(redis.call('GET', KEYS[1]))
if hits and hits > 0 then redis.call('DECR', KEYS[1]) end
return 0
`;

type Scripted = {
  ofRateLimitHit(key: string, windowMs: number): Promise<[number, number]>;
  ofRateLimitUnhit(key: string): Promise<number>;
};

/** Redis did not answer a count: the caller decides to let the request pass (see perKeyRateLimit). */
export class RateLimitStoreError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'RateLimitStoreError';
  }
}

/**
 * hono-rate-limiter's Store on ioredis. Each count is one script (INCR and, on a window's first hit,
 * PEXPIRE), so concurrent hits from any number of processes are counted exactly. The script is an
 * ioredis command: run by its SHA, and sent again in full after a NOSCRIPT (a Redis restarted or
 * flushed its script cache). Keys are whole Redis keys (cache/keys.ts `rateLimit`).
 */
export class RedisRateLimitStore implements Store {
  readonly localKeys = false;
  private readonly redis: RedisClient & Scripted;
  private windowMs = 60_000;

  constructor(redis: RedisClient) {
    if (typeof (redis as Partial<Scripted>).ofRateLimitHit !== 'function') {
      redis.defineCommand('ofRateLimitHit', { numberOfKeys: 1, lua: hitScript });
      redis.defineCommand('ofRateLimitUnhit', { numberOfKeys: 1, lua: unhitScript });
    }
    this.redis = redis as RedisClient & Scripted;
  }

  init(options: Pick<HonoConfigType, 'windowMs'>): void {
    this.windowMs = options.windowMs;
  }

  async increment(key: string): Promise<ClientRateLimitInfo> {
    try {
      const [totalHits, ttlMs] = await this.redis.ofRateLimitHit(key, this.windowMs);
      return { totalHits, resetTime: new Date(Date.now() + ttlMs) };
    } catch (error) {
      throw new RateLimitStoreError(`Counting a request under ${key} failed`, { cause: error });
    }
  }

  async get(key: string): Promise<ClientRateLimitInfo | undefined> {
    const [hits, ttlMs] = ((await this.redis.multi().get(key).pttl(key).exec()) ?? []).map(([, value]) => value);
    if (hits === null || hits === undefined) return undefined;
    return { totalHits: Number(hits), resetTime: Number(ttlMs) > 0 ? new Date(Date.now() + Number(ttlMs)) : undefined };
  }

  async decrement(key: string): Promise<void> {
    await this.redis.ofRateLimitUnhit(key);
  }

  async resetKey(key: string): Promise<void> {
    await this.redis.del(key);
  }
}

/** What the limiter leaves on the context: hono-rate-limiter's `rateLimit` (its default property name). */
type LimitedEnv = { Variables: AuthEnv['Variables'] & { rateLimit?: RateLimitInfo } };

export type PerKeyRateLimitOptions = {
  redis: RedisClient;
  keys: Pick<RedisKeys, 'rateLimit'>;
  settings: RateLimitSettings;
  log: Logger;
};

/**
 * Limits each authenticated caller (so it runs after apiKeyAuth) to its budget of writes and of reads
 * per window. Past it: 429 `rate_limited` naming the budget, with `Retry-After` and the IETF draft-7
 * `RateLimit` and `RateLimit-Policy` headers (one `RateLimit` field rather than draft-6's three; the
 * newest draft hono-rate-limiter writes). Every answer under a budget carries the two headers.
 *
 * While Redis does not answer, requests pass uncounted (fail open) and one warning is logged: the API
 * keeps taking orders without Redis (they are durable in PostgreSQL), and a limiter must not be what
 * stops it.
 */
export function perKeyRateLimit(options: PerKeyRateLimitOptions) {
  const { settings, log } = options;
  const limitOf = (c: Context) => settings[budgetOf(c.req.method)];
  const limiter = rateLimiter<LimitedEnv>({
    windowMs: settings.windowMs,
    limit: limitOf,
    keyGenerator: (c) => options.keys.rateLimit(budgetOf(c.req.method), c.get('caller').apiKeyId),
    store: new RedisRateLimitStore(options.redis),
    standardHeaders: 'draft-7',
    handler: (c) => {
      const budget = budgetOf(c.req.method);
      const resetTime = c.get('rateLimit')?.resetTime;
      const waitMs = resetTime ? resetTime.getTime() - Date.now() : settings.windowMs;
      throw new AppError(
        'rate_limited',
        `Rate limit of ${settings[budget]} ${budget} per ${describeWindow(settings.windowMs)} exceeded for this API key`,
        {
          details: {
            budget,
            limit: settings[budget],
            windowMs: settings.windowMs,
            retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
          },
        },
      );
    },
  });

  let failing = false;
  return createMiddleware<AuthEnv>(async function perKeyRateLimitHandler(c, next) {
    if (limitOf(c) === 0) return next();
    let counted = false;
    try {
      await limiter(c as Context<LimitedEnv>, async () => {
        counted = true;
        await next();
      });
    } catch (error) {
      if (counted || !(error instanceof RateLimitStoreError)) throw error;
      if (!failing) log.warn({ err: (error.cause as Error)?.message }, 'rate limits not enforced: Redis unavailable');
      failing = true;
      await next();
      return;
    }
    if (failing && counted) {
      failing = false;
      log.info('rate limits enforced again: Redis answers');
    }
  });
}

function describeWindow(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
