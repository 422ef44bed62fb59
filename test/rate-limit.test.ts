import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthEnv } from '../api/auth.ts';
import { createErrorHandler } from '../api/errors.ts';
import { perKeyRateLimit, RedisRateLimitStore } from '../api/rate-limit.ts';
import { redisKeys } from '../cache/keys.ts';
import { createLogger } from '../runtime/logger.ts';
import { freePort } from '../scripts/processes.ts';
import { redisUrl } from './support/env.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { startPrivateRedis } from './support/redis-server.ts';
import { waitFor } from './support/wait-for.ts';

const silent = createLogger('silent', 'test');

describe('the Redis store', () => {
  let redis: Redis;
  const keyOf = (name: string) => `rlt-${randomBytes(4).toString('hex')}:${name}`;
  beforeAll(() => {
    redis = new Redis(redisUrl);
  });
  afterAll(() => redis?.quit());

  it('counts concurrent hits exactly, one key that lives for one window', async () => {
    const store = new RedisRateLimitStore(redis);
    store.init({ windowMs: 60_000 });
    const key = keyOf('concurrent');
    try {
      const hits = await Promise.all(Array.from({ length: 50 }, () => store.increment(key)));
      expect(hits.map((h) => h.totalHits).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
      expect((await store.get(key))?.totalHits).toBe(50);
    } finally {
      await redis.del(key);
    }
  });

  it('starts a new count once the window is over', async () => {
    const store = new RedisRateLimitStore(redis);
    store.init({ windowMs: 200 });
    const key = keyOf('window');
    await store.increment(key);
    expect((await store.increment(key)).totalHits).toBe(2);
    await waitFor('the window to end', async () => (await redis.exists(key)) === 0);
    expect((await store.increment(key)).totalHits).toBe(1);
    await redis.del(key);
  });

  it('takes a hit back without going below zero or bringing back an ended window', async () => {
    const store = new RedisRateLimitStore(redis);
    store.init({ windowMs: 60_000 });
    const key = keyOf('decrement');
    await store.decrement(key);
    expect(await redis.exists(key)).toBe(0);
    await store.increment(key);
    await store.decrement(key);
    await store.decrement(key);
    expect(await redis.get(key)).toBe('0');
    await store.resetKey(key);
    expect(await store.get(key)).toBeUndefined();
  });
});

describe('on a Redis that restarts or goes away', () => {
  let privateRedis: Awaited<ReturnType<typeof startPrivateRedis>>;
  let redis: Redis;
  beforeAll(async () => {
    privateRedis = await startPrivateRedis();
    // Fail-fast, as the API's own connection (runtime/redis.ts): a command while Redis is down fails at once.
    redis = new Redis(privateRedis.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true });
    await redis.connect();
  });
  afterAll(async () => {
    redis?.disconnect();
    await privateRedis?.destroy();
  });

  it('keeps counting after Redis forgets its scripts (NOSCRIPT)', async () => {
    const store = new RedisRateLimitStore(redis);
    store.init({ windowMs: 60_000 });
    expect((await store.increment('noscript')).totalHits).toBe(1);
    await redis.script('FLUSH');
    expect((await store.increment('noscript')).totalHits).toBe(2);
  });

  it('lets requests through uncounted while Redis is down, and counts again once it is back', async () => {
    const app = new Hono<AuthEnv>();
    app.use(async (c, next) => {
      c.set('caller', { apiKeyId: 1, name: 'test', role: 'customer', customerId: null });
      await next();
    });
    app.use(
      perKeyRateLimit({
        redis,
        keys: redisKeys('rlt-outage'),
        settings: { windowMs: 60_000, writes: 1, reads: 1 },
        log: silent,
      }),
    );
    app.get('/', (c) => c.text('ok'));
    app.onError(createErrorHandler(silent));

    await privateRedis.stop();
    const answers = [await app.request('/'), await app.request('/')];
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(answers[0]!.headers.get('RateLimit')).toBeNull();

    await privateRedis.start();
    await waitFor('the connection to come back', async () => redis.status === 'ready');
    expect((await app.request('/')).status).toBe(200);
    expect((await app.request('/')).status).toBe(429);
  });
});

type Answer = {
  status: number;
  headers: Headers;
  body: { error?: { code: string; message: string; details: unknown } };
};

/** Two API processes (node api/server.ts) on one database and one Redis, as `--scale api=2` runs them. */
describe('per-key rate limits across two API processes', () => {
  let h: Harness;
  const apis: Array<{ child: ChildProcess; url: string }> = [];

  async function startApi(env: Record<string, string>) {
    const port = await freePort();
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'api', 'server.ts')], {
      env: { ...process.env, ...h.env, HOST: '127.0.0.1', PORT: String(port), DB_POOL_SIZE: '3', ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const api = { child, url: `http://127.0.0.1:${port}` };
    apis.push(api);
    await waitFor(`the API on port ${port}`, () =>
      fetch(`${api.url}/healthz`).then(
        (r) => r.ok,
        () => false,
      ),
    );
    return api;
  }

  async function send(url: string, method: string, path: string, key: string, body?: unknown): Promise<Answer> {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} };
  }

  beforeAll(async () => {
    // A window far longer than any test, so that no count starts over in the middle of one.
    h = await startHarness({
      workers: false,
      env: { RATE_LIMIT_WRITES: '4', RATE_LIMIT_READS: '6', RATE_LIMIT_WINDOW_MS: '60000', LOG_LEVEL: 'warn' },
    });
    await Promise.all([startApi({}), startApi({})]);
  });

  afterAll(async () => {
    await Promise.all(
      apis.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }),
    );
    await h?.close();
  });

  // An order body the API refuses (400) still counts: the budget is spent before the body is read.
  const refusedBody = {};
  const a = () => apis[0]!.url;
  const b = () => apis[1]!.url;

  it('answers 429 with RateLimit, RateLimit-Policy and Retry-After once the writes of a key, counted by both processes, are spent', async () => {
    const key = h.keys.customers[0]!.apiKey;
    const within = [];
    for (let i = 0; i < 4; i++) within.push(await send(i % 2 ? b() : a(), 'POST', '/orders', key, refusedBody));
    expect(within.map((r) => r.status)).toEqual([400, 400, 400, 400]);
    expect(within[0]!.headers.get('RateLimit')).toMatch(/^limit=4, remaining=3, reset=\d+$/);
    expect(within[3]!.headers.get('RateLimit')).toMatch(/^limit=4, remaining=0, reset=\d+$/);

    const refused = await send(a(), 'POST', '/orders', key, orderBody());
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({
      code: 'rate_limited',
      message: 'Rate limit of 4 writes per 60 s exceeded for this API key',
      details: { budget: 'writes', limit: 4, windowMs: 60_000 },
    });
    expect(refused.headers.get('RateLimit-Policy')).toBe('4;w=60');
    expect(refused.headers.get('RateLimit')).toMatch(/^limit=4, remaining=0, reset=\d+$/);
    const retryAfter = Number(refused.headers.get('Retry-After'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await send(b(), 'POST', '/orders/00000000-0000-4000-8000-000000000000/cancel', key)).status).toBe(429);
  });

  it('keeps reads on a budget of their own', async () => {
    const key = h.keys.customers[0]!.apiKey; // its writes were spent above
    const reads = [];
    for (let i = 0; i < 6; i++)
      reads.push(await send(i % 2 ? b() : a(), 'GET', '/inventory/ONEPIECE-105?region=eu', key));
    expect(reads.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const refused = await send(b(), 'GET', '/inventory/ONEPIECE-105?region=eu', key);
    expect(refused.status).toBe(429);
    expect(refused.body.error?.message).toBe('Rate limit of 6 reads per 60 s exceeded for this API key');
    expect(refused.headers.get('RateLimit-Policy')).toBe('6;w=60');
  });

  it('admits exactly the budget of a burst sent to both processes at once', async () => {
    const key = h.keys.customers[1]!.apiKey;
    const burst = await Promise.all(
      Array.from({ length: 30 }, (_, i) => send(i % 2 ? b() : a(), 'POST', '/orders', key, refusedBody)),
    );
    expect(burst.filter((r) => r.status !== 429).map((r) => r.status)).toEqual([400, 400, 400, 400]);
  });

  it('leaves another key alone while one key is flooded', async () => {
    const flooded = h.keys.customers[1]!.apiKey; // over its write budget since the burst above
    const other = h.keys.customers[2]!.apiKey;
    const [flood, placed, ...reads] = await Promise.all([
      Promise.all(
        Array.from({ length: 40 }, (_, i) => send(i % 2 ? b() : a(), 'POST', '/orders', flooded, orderBody())),
      ),
      send(a(), 'POST', '/orders', other, orderBody({ items: [{ sku: 'ONEPIECE-105', quantity: 1 }] })),
      ...Array.from({ length: 3 }, (_, i) => send(i % 2 ? b() : a(), 'GET', '/inventory/BERSERK-42?region=eu', other)),
    ]);
    expect(new Set(flood.map((r) => r.status))).toEqual(new Set([429]));
    expect(placed.status).toBe(201);
    expect(reads.map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it('never limits /healthz, /readyz or /metrics, and counts nothing for a request without a valid key', async () => {
    for (let i = 0; i < 10; i++) {
      for (const path of ['/healthz', '/readyz', '/metrics']) expect((await fetch(`${a()}${path}`)).status).toBe(200);
    }
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => send(a(), 'POST', '/orders', 'of_cus_unknown', {})),
    );
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 401));
  });

  it('counts the admin routes, and lets a key through again once its window is over', async () => {
    // A process of its own with a short window; the admin key is not used by the tests above.
    const api = await startApi({ RATE_LIMIT_WINDOW_MS: '300', RATE_LIMIT_READS: '2' });
    const read = () => send(api.url, 'GET', '/admin/dead-letters', h.adminKey);
    await waitFor('the admin key to be over its budget', read, (r) => r.status === 429);
    const back = await waitFor('its window to end', read, (r) => r.status !== 429);
    expect(back.status).toBe(200);
  });
});
