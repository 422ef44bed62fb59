import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis } from '../../scripts/local-servers.ts';
import { freePort } from '../../scripts/processes.ts';

/**
 * A private redis-server for tests that stop or restart Redis; the run's Redis is never touched.
 * Append-only with fsync on every write, so a stop and start keeps every acknowledged write.
 */
export async function startPrivateRedis(extraArgs: string[] = []) {
  const dir = await mkdtemp(join(tmpdir(), 'orderflow-redis-'));
  try {
    const redis = await startRedis({
      dir,
      port: await freePort(),
      appendOnly: true,
      args: ['--appendfsync', 'always', ...extraArgs],
      // In the test run's process group: a Ctrl-C that cuts the run short stops it too.
      detached: false,
      urlVariable: 'TEST_REDIS_URL',
    });
    return {
      url: redis.url,
      port: redis.port,
      start: redis.start,
      stop: redis.stop,
      async destroy() {
        await redis.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
