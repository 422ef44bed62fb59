import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { Queue } from 'bullmq';
import type { Hono } from 'hono';

export const BULL_BOARD_PATH = '/admin/queues';

export function isBullBoardPath(path: string): boolean {
  return path === BULL_BOARD_PATH || path.startsWith(`${BULL_BOARD_PATH}/`);
}

/** Mounts Bull Board on the app; the caller puts admin authentication in front of the path. */
export function mountBullBoard(app: Hono<never>, queues: Queue[]): void {
  const serverAdapter = new HonoAdapter(serveStatic).setBasePath(BULL_BOARD_PATH);
  // Sharded queues (queues/shards.ts) share their names: each is shown under its shard's hash tag then.
  const sharded = new Set(queues.map((q) => q.opts.prefix)).size > 1;
  const adapter = (q: Queue) =>
    new BullMQAdapter(q, sharded ? { prefix: `${(q.opts.prefix ?? '').replace(/[{}]/g, '')}:` } : {});
  createBullBoard({ queues: queues.map(adapter), serverAdapter });
  app.route(BULL_BOARD_PATH, serverAdapter.registerPlugin());
}
