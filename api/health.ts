import { createRoute, z } from '@hono/zod-openapi';
import type { RedisClient } from '../runtime/redis.ts';
import type { Db } from '../sql/database.ts';
import { pingDatabase } from '../sql/health.ts';
import { apiRoutes, errorAnswers, jsonAnswer, openapiRoute } from './openapi.ts';

type Check = { ok: boolean; detail?: string };

/** BullMQ loses jobs silently if Redis evicts its keys under memory pressure. */
export async function redisEvictionPolicy(redis: RedisClient): Promise<string> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    return policy;
  } catch {
    // Managed Redis often disables CONFIG; INFO still tells.
    const info = await redis.info('memory');
    return /maxmemory_policy:(\S+)/.exec(info)?.[1] ?? 'unknown';
  }
}

export function healthRoutes(deps: { db: Db; redis: RedisClient }) {
  const app = apiRoutes();
  openapiRoute(app, liveRoute, (c) => c.json({ status: 'ok' as const }, 200));
  openapiRoute(app, readyRoute, async (c) => {
    const checks: Record<string, Check> = {
      postgres: await probe(() => pingDatabase(deps.db)),
      redis: await probe(() => deps.redis.ping()),
      redisEvictionPolicy: await probe(async () => {
        const policy = await redisEvictionPolicy(deps.redis);
        if (policy !== 'noeviction') throw new Error(`maxmemory-policy is ${policy}; queues need noeviction`);
      }),
    };
    const ready = Object.values(checks).every((check) => check.ok);
    if (!ready) c.header('Retry-After', '5');
    return ready
      ? c.json({ status: 'ready' as const, checks }, 200)
      : c.json({ status: 'not ready' as const, checks }, 503);
  });
  return app;
}

const operations = { tags: ['Operations'], security: [] };
const liveRoute = createRoute({
  ...operations,
  method: 'get',
  path: '/healthz',
  operationId: 'live',
  summary: 'Liveness: the process answers',
  responses: { 200: jsonAnswer(z.object({ status: z.literal('ok') }), 'Alive'), ...errorAnswers() },
});
const readiness = z
  .object({
    status: z.enum(['ready', 'not ready']),
    checks: z.record(z.string(), z.object({ ok: z.boolean(), detail: z.string().optional() })),
  })
  .openapi('Readiness');
const readyRoute = createRoute({
  ...operations,
  method: 'get',
  path: '/readyz',
  operationId: 'ready',
  summary: 'Readiness: PostgreSQL and Redis answer, and Redis never evicts queue keys',
  responses: {
    200: jsonAnswer(readiness, 'Ready'),
    503: { ...jsonAnswer(readiness, 'Not ready: `checks` says what failed (with Retry-After)') },
  },
});

/** The Prometheus scrape, served by the app beside its registry. */
export const metricsRoute = createRoute({
  ...operations,
  method: 'get',
  path: '/metrics',
  operationId: 'metrics',
  summary: 'Prometheus metrics',
  responses: {
    200: { description: 'The text exposition format', content: { 'text/plain': { schema: z.string() } } },
    ...errorAnswers(),
  },
});

async function probe(check: () => Promise<unknown>, timeoutMs = 2_000): Promise<Check> {
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs).unref(),
      ),
    ]);
    return { ok: true };
  } catch (error) {
    return { ok: false, detail: (error as Error).message };
  }
}
