import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { OpenAPIHono, type RouteConfig, type RouteHandler, z } from '@hono/zod-openapi';
import type { Env, Hono, MiddlewareHandler } from 'hono';
import { errorBodySchema } from './errors.ts';
import { jsonBody, pathParams, queryParams } from './input.ts';

// Every route is declared once, with the zod schemas that validate it, and /openapi.json is generated
// from those declarations. A new route, on an app made by `apiRoutes()`:
//
//   const showThing = createRoute({
//     method: 'get', path: '/{id}', tags: ['Things'], summary: 'Show a thing', security: apiKey,
//     request: { params: z.object({ id: uuidParam }) },
//     responses: { 200: jsonAnswer(thingSchema, 'The thing'), ...errorAnswers(400, 401, 404) },
//   });
//   openapiRoute(app, showThing, async (c) => c.json(present(await find(c.req.valid('param').id)), 200));
//
// `app.route(prefix, app)` carries the declarations up to the API's document.

/** A sub-app of the API whose routes are documented. */
export const apiRoutes = <E extends Env>() => new OpenAPIHono<E>();

/**
 * Declares the route in the document and serves it. The request is checked by the API's own parsers
 * (api/input.ts), with the route's schemas, rather than by zod-openapi's validators: those would check
 * the query before the path, refuse an empty body that names a content type, and answer malformed JSON
 * with a bare 400, where the API keeps its order and its answers. A route's `middleware` runs after the
 * path and query checks. `parseBody` replaces the body schema
 * where a body needs more than a schema to say what is wrong with it.
 */
export function openapiRoute<R extends RouteConfig, E extends Env>(
  app: OpenAPIHono<E>,
  route: R,
  handler: RouteHandler<R, E>,
  options: { parseBody?: (body: unknown) => unknown } = {},
): void {
  const { middleware, hide: _, ...declared } = route;
  app.openAPIRegistry.registerPath(declared);
  const checks: MiddlewareHandler[] = [];
  const { params, query, body } = route.request ?? {};
  if (params) checks.push(pathParams(params));
  if (query) checks.push(queryParams(query));
  const media = body?.content['application/json'];
  const bodySchema = media && 'schema' in media ? media.schema : undefined;
  if (body && !(bodySchema instanceof z.ZodType)) throw new Error(`${route.path}: a body is declared as a zod schema`);
  if (options.parseBody || bodySchema) {
    checks.push(jsonBody(options.parseBody ?? (bodySchema as z.ZodType), { optional: body?.required !== true }));
  }
  // A route's own middleware comes after the checks of its path and query (noBody, for one).
  checks.push(...[middleware ?? []].flat());
  const path = route.path.replaceAll(/\/{(.+?)}/g, '/:$1');
  (app as unknown as Hono).on(route.method, [path], ...checks, handler as unknown as MiddlewareHandler);
}

/** The callers' API key: `Authorization: Bearer <key>`, or `X-API-Key: <key>` (api/auth.ts). */
export const apiKey: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { apiKeyHeader: [] }];

export const jsonAnswer = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export const jsonRequest = <T extends z.ZodType>(schema: T, options: { required: boolean; description?: string }) => ({
  required: options.required,
  description: options.description,
  content: { 'application/json': { schema } },
});

const errorBody = errorBodySchema.openapi('Error');

const whenStatus = {
  400: 'The input is not valid: `details` lists each bad field',
  401: 'No API key, or one that is not valid',
  403: 'The API key may not do this (an admin key is needed, or another customer is named)',
  404: 'Not found, or not the caller’s',
  409: 'The resource is not in a state that allows this',
  413: 'The body is larger than the limit',
  415: 'The body is not sent as application/json',
  422: 'Understood but refused by a business rule',
  429: 'Too many requests: come back after `Retry-After` seconds',
  500: 'A bug: the message says nothing more',
  503: 'PostgreSQL or Redis is unavailable: retry after `Retry-After` seconds',
} as const;
type ErrorStatus = keyof typeof whenStatus;

/** The error answers a route can give, each with the API's one error body (api/errors.ts). */
export function errorAnswers<S extends ErrorStatus>(...statuses: S[]) {
  const answers = {} as Record<
    S,
    { description: string; content: { 'application/json': { schema: typeof errorBody } } }
  >;
  for (const status of [...statuses, 500 as S]) {
    answers[status] = { description: whenStatus[status], content: { 'application/json': { schema: errorBody } } };
  }
  return answers;
}

export type ApiDocsOptions = { title: string; version: string; description: string };

/**
 * Serves the OpenAPI 3.1 document at /openapi.json and Swagger UI at /docs. The page and its assets come
 * from the swagger-ui-dist package, read once here; its content-security-policy allows 'self' alone, so
 * the page loads no third-party script, style, font or image, and works without the internet.
 */
export function mountApiDocs<E extends Env>(app: OpenAPIHono<E>, options: ApiDocsOptions): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key: a customer key acts for its own customer, an admin key for any.',
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKeyHeader', {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: 'The same API key, in a header of its own.',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: { title: options.title, version: options.version, description: options.description },
    tags: apiTags,
  });

  const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const assets = new Map<string, { body: string; type: string }>([
    ['swagger-ui.css', { body: readFileSync(join(dist, 'swagger-ui.css'), 'utf8'), type: 'text/css' }],
    [
      'swagger-ui-bundle.js',
      { body: readFileSync(join(dist, 'swagger-ui-bundle.js'), 'utf8'), type: 'text/javascript' },
    ],
    ['init.js', { body: initScript, type: 'text/javascript' }],
  ]);
  const headers = (type: string) => ({
    'content-type': `${type}; charset=utf-8`,
    // Swagger UI's icons are data: images inside its CSS: bytes of the page, not another origin.
    'content-security-policy':
      "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'; form-action 'self'; base-uri 'self'",
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
  });
  app.get('/docs', (c) => c.body(docsPage(options.title), 200, headers('text/html')));
  app.get('/docs/:asset', (c) => {
    const asset = assets.get(c.req.param('asset'));
    if (!asset) return c.notFound();
    return c.body(asset.body, 200, headers(asset.type));
  });
}

/** The tags of the document, in the order the reference shows them. */
const apiTags = [
  { name: 'Orders', description: 'Place, read and cancel orders (SPEC §2, §3)' },
  { name: 'Returns', description: 'Quote, return, follow and cancel the return of delivered items (SPEC §5)' },
  { name: 'Customers', description: 'A customer’s recent orders' },
  { name: 'Inventory', description: 'Stock answers, through the cache' },
  { name: 'Admin', description: 'Operators: stock, flash sales, hot SKUs, dead letters (admin keys only)' },
  { name: 'Operations', description: 'Health, readiness and Prometheus metrics (no key)' },
];

const docsPage = (title: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} API reference</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="reference"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// A file of its own, not an inline script: the page's policy allows scripts from 'self' only. No
// validator badge: it would send the document to a third party.
const initScript = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#reference',
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: false,
});
`;
