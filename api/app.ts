import { readFileSync } from 'node:fs';
import { OpenAPIHono } from '@hono/zod-openapi';
import { type Context, Hono } from 'hono';
import { csrf } from 'hono/csrf';
import { requestId } from 'hono/request-id';
import { createAssistant } from '../chat/assistant.ts';
import { createChatMetrics } from '../chat/metrics.ts';
import { createChatSessions } from '../chat/sessions.ts';
import { type ChatSettings, defaultChatSettings, defaultReturnSettings, type ReturnSettings } from '../config/index.ts';
import type { Deps } from '../runtime/deps.ts';
import { collectDeadLetters, collectQueueDepth } from '../runtime/metrics.ts';
import { findApiKey } from '../sql/api-keys.ts';
import { findSellableItems } from '../sql/catalog.ts';
import { BULL_BOARD_PATH, isBullBoardPath, mountBullBoard } from './admin.ts';
import { adminInventoryRoutes } from './admin-inventory.ts';
import { adminReturnRoutes } from './admin-returns.ts';
import { cacheKeyLookups } from './api-key-cache.ts';
import { type AuthEnv, apiKeyAuth, type Caller } from './auth.ts';
import { limitBodySize } from './body-limit.ts';
import { cacheSellableItems } from './catalog-cache.ts';
import { chatRoutes } from './chat.ts';
import { chatDemoRoutes } from './chat-demo.ts';
import { deadLetterRoutes } from './dead-letters.ts';
import { createErrorHandler, notFound } from './errors.ts';
import { healthRoutes, metricsRoute } from './health.ts';
import { httpMetrics } from './http-metrics.ts';
import { mountApiDocs, openapiRoute } from './openapi.ts';
import { orderRoutes } from './orders.ts';
import { perKeyRateLimit, type RateLimitSettings } from './rate-limit.ts';
import { readRoutes } from './read-routes.ts';
import { returnRoutes } from './returns.ts';

export type AppDeps = Pick<
  Deps,
  | 'db'
  | 'redis'
  | 'queues'
  | 'admission'
  | 'log'
  | 'registry'
  | 'metrics'
  | 'keys'
  | 'cache'
  | 'orders'
  | 'stock'
  | 'invalidateOrder'
  | 'bedrock'
> & {
  bodyLimitBytes: number;
  idempotencyStaleAfterMs: number;
  recentOrdersTtlMs: number;
  /** How long a key lookup is remembered (and so how long a revoked key keeps working). */
  apiKeyCacheTtlMs?: number;
  /** Requests per window per API key (config `rateLimit`); without it, no key is limited. */
  rateLimit?: RateLimitSettings;
  /** Return window, token lifetime (config `returns`); the defaults without it. */
  returns?: ReturnSettings;
  /** The clock of return windows and tokens (tests move it). */
  now?: () => number;
  /** The support assistant (config `chat`); templates only without it. */
  chat?: ChatSettings;
};

/** The HTTP API. Opens no port: `api/server.ts` serves it, tests call `app.request()`. */
export function createApp(deps: AppDeps) {
  const app = new OpenAPIHono<AuthEnv>();
  const findKey = cacheKeyLookups(
    async (key: string): Promise<Caller | null> => {
      const found = await findApiKey(deps.db, key);
      return found && { apiKeyId: found.id, name: found.name, role: found.role, customerId: found.customer_id };
    },
    { ttlMs: deps.apiKeyCacheTtlMs ?? 60_000, maxEntries: 10_000 },
  );
  const findSellable = cacheSellableItems((region, skus) => findSellableItems(deps.db, region, skus), {
    ttlMs: 60_000,
    maxEntries: 10_000,
  });

  app.use(requestId());
  app.use(httpMetrics({ registry: deps.registry }));
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
  app.use(limitBodySize(deps.bodyLimitBytes));

  app.route('/', healthRoutes(deps));
  // Read when scraped: the API holds every queue, and one query counts the dead letters.
  collectQueueDepth(deps.registry, Object.values(deps.queues.queues));
  collectDeadLetters(deps.registry, deps.db);
  openapiRoute(app, metricsRoute, async (c) =>
    c.text(await deps.registry.metrics(), 200, { 'content-type': deps.registry.contentType }),
  );
  for (const path of ['/orders', '/orders/*', '/customers/*', '/inventory/*', '/returns/*']) {
    app.use(path, apiKeyAuth({ findKey }));
  }
  // After authentication: the budget is the caller's. Once per request: '/orders/*' matches '/orders' too.
  const limitRate = deps.rateLimit
    ? perKeyRateLimit({ redis: deps.redis, keys: deps.keys, settings: deps.rateLimit, log: deps.log })
    : undefined;
  if (limitRate)
    for (const path of ['/orders/*', '/customers/*', '/inventory/*', '/returns/*']) app.use(path, limitRate);
  app.route('/orders', orderRoutes({ ...deps, findSellable }));
  app.route('/', readRoutes(deps));
  const returnDeps = {
    ...deps,
    returns: deps.returns ?? defaultReturnSettings,
    now: deps.now ?? Date.now,
  };
  app.route('/', returnRoutes(returnDeps));
  // POST /chat alone: the assistant's demo page under /chat/ is public (it asks for a key itself).
  app.on('POST', '/chat', apiKeyAuth({ findKey }));
  if (limitRate) app.on('POST', '/chat', limitRate);
  const chat = deps.chat ?? defaultChatSettings;
  const assistant = createAssistant({
    sessions: createChatSessions(deps.redis, deps.keys, chat.sessionTtlMs),
    tools: { orders: deps.orders, stock: deps.stock, returns: returnDeps },
    metrics: createChatMetrics(deps.registry),
    log: deps.log,
    settings: chat,
    bedrock: deps.bedrock ?? null,
  });
  app.route('/', chatRoutes({ assistant }));
  // Bull Board is the one page a browser opens: it alone takes Basic auth, behind a CSRF check (a browser
  // sends remembered Basic credentials with a cross-site form too).
  const adminAuth = apiKeyAuth({ findKey, role: 'admin' });
  const boardAuth = apiKeyAuth({ findKey, role: 'admin', basic: true });
  const boardCsrf = csrf();
  app.use('/admin/*', function adminAccess(c, next) {
    // Bull Board is not limited: an operator's page that loads its assets and polls the queues.
    if (!isBullBoardPath(c.req.path)) {
      return adminAuth(c, async () => {
        await (limitRate ? limitRate(c, next) : next());
      });
    }
    return boardAuth(c, async () => {
      await boardCsrf(c, next);
    });
  });
  app.route('/admin/dead-letters', deadLetterRoutes(deps));
  app.route('/admin', adminInventoryRoutes(deps));
  app.route('/admin/returns', adminReturnRoutes(returnDeps));
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

  mountApiDocs(app, { title: 'orderflow', version: packageVersion, description: apiDescription });
  // The assistant's try-it page: no key for the page, the key typed into it goes to POST /chat.
  app.route('/', chatDemoRoutes());

  app.notFound(notFound);
  app.onError(createErrorHandler(deps.log));
  return app;
}

const packageVersion = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
const apiDescription =
  'Order processing for online stores: submit orders, follow them, check stock, and operate the pipeline. Every error answers `{ error: { code, message, details } }`. Bull Board (`/admin/queues`, HTTP Basic) is a page for operators, not part of this API.';
