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
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q)), serverAdapter });
  app.route(BULL_BOARD_PATH, serverAdapter.registerPlugin());
}
