import { Hono } from 'hono';
import type { Redis } from 'ioredis';
import type { Db } from '../sql/database.ts';
import { pingDatabase } from '../sql/health.ts';

type Check = { ok: boolean; detail?: string };

/** BullMQ loses jobs silently if Redis evicts its keys under memory pressure. */
export async function redisEvictionPolicy(redis: Redis): Promise<string> {
  try {
    const [, policy] = (await redis.config('GET', 'maxmemory-policy')) as [string, string];
    return policy;
  } catch {
    // Managed Redis often disables CONFIG; INFO still tells.
    const info = await redis.info('memory');
    return /maxmemory_policy:(\S+)/.exec(info)?.[1] ?? 'unknown';
  }
}

export function healthRoutes(deps: { db: Db; redis: Redis }) {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
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
    return c.json({ status: ready ? 'ready' : 'not ready', checks }, ready ? 200 : 503);
  });
  return app;
}

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
