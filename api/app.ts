import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { csrf } from 'hono/csrf';
import { requestId } from 'hono/request-id';
import { AppError } from '../domain/errors.ts';
import type { Deps } from '../runtime/deps.ts';
import { findApiKey } from '../sql/api-keys.ts';
import { BULL_BOARD_PATH, isBullBoardPath, mountBullBoard } from './admin.ts';
import { adminInventoryRoutes } from './admin-inventory.ts';
import { cacheKeyLookups } from './api-key-cache.ts';
import { type AuthEnv, apiKeyAuth, type Caller } from './auth.ts';
import { deadLetterRoutes } from './dead-letters.ts';
import { createErrorHandler, notFound } from './errors.ts';
import { healthRoutes } from './health.ts';
import { orderRoutes } from './orders.ts';
import { readRoutes } from './read-routes.ts';

export type AppDeps = Pick<
  Deps,
  | 'db'
  | 'redis'
  | 'queues'
  | 'admission'
  | 'log'
  | 'registry'
  | 'keys'
  | 'cache'
  | 'orders'
  | 'stock'
  | 'invalidateOrder'
> & {
  bodyLimitBytes: number;
  idempotencyStaleAfterMs: number;
  recentOrdersTtlMs: number;
  /** How long a key lookup is remembered (and so how long a revoked key keeps working). */
  apiKeyCacheTtlMs?: number;
};

/** The HTTP API. Opens no port: `api/server.ts` serves it, tests call `app.request()`. */
export function createApp(deps: AppDeps) {
  const app = new Hono<AuthEnv>();
  const findKey = cacheKeyLookups(
    async (key: string): Promise<Caller | null> => {
      const found = await findApiKey(deps.db, key);
      return found && { apiKeyId: found.id, name: found.name, role: found.role, customerId: found.customer_id };
    },
    { ttlMs: deps.apiKeyCacheTtlMs ?? 60_000, maxEntries: 10_000 },
  );

  app.use(requestId());
  app.use(async function accessLog(c, next) {
    const started = performance.now();
    await next();
    deps.log.info(
      {
        requestId: c.get('requestId'),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
      },
      'request',
    );
  });
  app.use(
    bodyLimit({
      maxSize: deps.bodyLimitBytes,
      onError: () => {
        throw new AppError('payload_too_large', `Request body is larger than ${deps.bodyLimitBytes} bytes`);
      },
    }),
  );

  app.route('/', healthRoutes(deps));
  app.get('/metrics', async (c) =>
    c.text(await deps.registry.metrics(), 200, { 'content-type': deps.registry.contentType }),
  );
  for (const path of ['/orders', '/orders/*', '/customers/*', '/inventory/*']) app.use(path, apiKeyAuth({ findKey }));
  app.route('/orders', orderRoutes(deps));
  app.route('/', readRoutes(deps));
  // Bull Board is the one page a browser opens: it alone takes Basic auth, behind a CSRF check (a browser
  // sends remembered Basic credentials with a cross-site form too).
  const adminAuth = apiKeyAuth({ findKey, role: 'admin' });
  const boardAuth = apiKeyAuth({ findKey, role: 'admin', basic: true });
  const boardCsrf = csrf();
  app.use('/admin/*', function adminAccess(c, next) {
    if (!isBullBoardPath(c.req.path)) return adminAuth(c, next);
    return boardAuth(c, async () => {
      await boardCsrf(c, next);
    });
  });
  app.route('/admin/dead-letters', deadLetterRoutes(deps));
  app.route('/admin', adminInventoryRoutes(deps));
  // Bull Board's routes are more than Hono's RegExpRouter takes: mounted on the API itself, they made it
  // match every request, cache hits included, with the slower TrieRouter. It gets an app of its own,
  // reached through the admin check above; its answers keep the API's headers (the request id).
  const board = new Hono();
  mountBullBoard(board as never, Object.values(deps.queues.queues));
  board.notFound(notFound);
  board.onError(createErrorHandler(deps.log));
  const toBoard = async (c: Context) => {
    const answer = await board.fetch(c.req.raw);
    return c.newResponse(answer.body, answer);
  };
  app.all(BULL_BOARD_PATH, toBoard);
  app.all(`${BULL_BOARD_PATH}/*`, toBoard);

  app.notFound(notFound);
  app.onError(createErrorHandler(deps.log));
  return app;
}
