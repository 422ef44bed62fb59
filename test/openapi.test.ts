import { createHash } from 'node:crypto';
import type { RouteConfig } from '@hono/zod-openapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { BULL_BOARD_PATH } from '../api/admin.ts';
import { recordDeadLetter } from '../sql/dead-letters.ts';
import { insertQuote } from '../sql/return-quotes.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

// The OpenAPI document against the app that serves it: every route is in it, it is well-formed 3.1, and
// the real API's answers, success and error, match the schema it declares for their status.
let h: Harness;
let doc: OpenApiDocument;
beforeAll(async () => {
  h = await startHarness({ workers: false });
  const res = await h.request('GET', '/openapi.json');
  expect(res.status).toBe(200);
  doc = res.body;
});
afterAll(async () => {
  await h?.close();
});

type Operation = { operationId?: string; responses: Record<string, { content?: Record<string, { schema: unknown }> }> };
type OpenApiDocument = {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: Record<string, Record<string, unknown>>;
};

const methods = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const undocumented = (path: string) =>
  path === '/openapi.json' ||
  path === '/docs' ||
  path.startsWith('/docs/') ||
  path.startsWith(BULL_BOARD_PATH) ||
  // The assistant's demo page: a page for people, like /docs.
  path === '/chat/demo' ||
  path.startsWith('/chat/demo/');

describe('the document', () => {
  it('is OpenAPI 3.1 named after the package, with the API key schemes', async () => {
    const pkg = (await import('../package.json', { with: { type: 'json' } })).default;
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info).toMatchObject({ title: 'orderflow', version: pkg.version });
    expect(doc.components.securitySchemes).toEqual({
      bearerAuth: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      apiKeyHeader: expect.objectContaining({ type: 'apiKey', in: 'header', name: 'X-API-Key' }),
    });
    // Basic is for Bull Board alone, which is not part of the API.
    expect(Object.values(doc.paths).some((item) => JSON.stringify(item).includes('/admin/queues'))).toBe(false);
    expect(Object.values(doc.components.securitySchemes!).map((s) => (s as { scheme?: string }).scheme)).not.toContain(
      'basic',
    );
  });

  it('has every route the app serves, with its method', () => {
    const served = new Set(
      h.app.routes
        .filter((r) => r.method !== 'ALL' && r.method !== 'HEAD' && !undocumented(r.path))
        .map((r) => `${r.method} ${r.path.replaceAll(/:([^/]+)/g, '{$1}')}`),
    );
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.keys(item)
          .filter((m) => methods.includes(m))
          .map((m) => `${m.toUpperCase()} ${path}`),
      ),
    );
    expect(served.size).toBeGreaterThan(10);
    expect([...served].filter((route) => !documented.has(route)).sort()).toEqual([]);
    expect([...documented].filter((route) => !served.has(route)).sort()).toEqual([]);
  });

  it('names each operation once, and every $ref resolves', () => {
    const ids = Object.values(doc.paths).flatMap((item) =>
      Object.entries(item)
        .filter(([m]) => methods.includes(m))
        .map(([, op]) => op.operationId),
    );
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      expect(ref.startsWith('#/')).toBe(true);
      const target = ref
        .slice(2)
        .split('/')
        .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
      expect(target, ref).toBeDefined();
    }
  });

  it('declares the error body on every 4xx and 5xx answer', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, answer] of Object.entries(op.responses)) {
          if (Number(status) < 400 || (path === '/readyz' && status === '503')) continue;
          expect(answer.content?.['application/json']?.schema, `${method} ${path} ${status}`).toEqual({
            $ref: '#/components/schemas/Error',
          });
        }
      }
    }
  });
});

describe('the answers', () => {
  /** The zod schema the document declares for this route and status, from the routes' declarations. */
  function declared(method: string, path: string, status: number): z.ZodType {
    const routes = h.app.openAPIRegistry.definitions.flatMap((d) =>
      d.type === 'route' ? [d.route as RouteConfig] : [],
    );
    const route = routes.find((r) => r.method === method && r.path === path);
    if (!route) throw new Error(`${method} ${path} is not declared`);
    const answer = route.responses[status] as { content?: Record<string, { schema: z.ZodType }> } | undefined;
    const schema = answer?.content?.['application/json']?.schema ?? answer?.content?.['text/plain']?.schema;
    if (!schema) throw new Error(`${method} ${path} declares no ${status} answer`);
    return schema;
  }

  const seen: string[] = [];
  /** Sends the request and checks the answer's status and body against the declared schema. */
  async function check(
    route: [method: string, path: string],
    status: number,
    request: { path: string; key?: string; body?: unknown; headers?: Record<string, string> },
  ) {
    const [method, path] = route;
    const headers: Record<string, string> = {
      ...(request.key ? { authorization: `Bearer ${request.key}` } : {}),
      ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...request.headers,
    };
    const sent = await h.app.request(request.path, {
      method: method.toUpperCase(),
      headers,
      body:
        typeof request.body === 'string' || request.body === undefined ? request.body : JSON.stringify(request.body),
    });
    const text = await sent.text();
    const res = { status: sent.status, body: text ? JSON.parse(text) : null };
    expect(res.status, `${method} ${request.path}: ${JSON.stringify(res.body)}`).toBe(status);
    const parsed = declared(method, path, status).safeParse(res.body);
    expect(parsed.error?.issues ?? [], `${method} ${request.path} ${status}`).toEqual([]);
    seen.push(`${method} ${path} ${status}`);
    return res.body;
  }

  it('match their declared schemas, for success and the main errors', async () => {
    const admin = h.adminKey;
    const customer = h.customerKey;
    await check(['get', '/healthz'], 200, { path: '/healthz' });
    // The API's fail-fast Redis connection may still be connecting: ready is a fact to wait for.
    await waitFor(
      'the API to be ready',
      async () => (await h.app.request('/readyz')).status,
      (s) => s === 200,
    );
    await check(['get', '/readyz'], 200, { path: '/readyz' });

    const placed = await check(['post', '/orders'], 201, { path: '/orders', key: customer, body: orderBody() });
    await check(['post', '/orders'], 400, { path: '/orders', key: customer, body: { region: '' } });
    await check(['post', '/orders'], 401, { path: '/orders', body: orderBody() });
    await check(['post', '/orders'], 403, {
      path: '/orders',
      key: customer,
      body: { ...orderBody(), customerId: 'cust_somebody_else' },
    });
    await check(['post', '/orders'], 415, {
      path: '/orders',
      key: customer,
      body: JSON.stringify(orderBody()),
      headers: { 'content-type': 'text/plain' },
    });
    await check(['post', '/orders'], 201, {
      path: '/orders',
      key: customer,
      body: orderBody(),
      headers: { 'idempotency-key': 'openapi-1' },
    });
    await check(['post', '/orders'], 422, {
      path: '/orders',
      key: customer,
      body: orderBody({ items: [{ sku: 'BERSERK-42', quantity: 2 }] }),
      headers: { 'idempotency-key': 'openapi-1' },
    });

    await check(['get', '/orders/{id}'], 200, { path: `/orders/${placed.id}`, key: customer });
    await check(['get', '/orders/{id}'], 400, { path: '/orders/not-a-uuid', key: customer });
    await check(['get', '/orders/{id}'], 401, { path: `/orders/${placed.id}` });
    await check(['get', '/orders/{id}'], 404, { path: '/orders/00000000-0000-4000-8000-000000000000', key: customer });

    await check(['get', '/customers/{id}/orders'], 200, { path: '/customers/cust_ada/orders?limit=5', key: customer });
    await check(['get', '/customers/{id}/orders'], 400, { path: '/customers/cust_ada/orders?limit=0', key: customer });
    await check(['get', '/customers/{id}/orders'], 404, { path: '/customers/cust_other/orders', key: customer });

    await check(['get', '/inventory/{sku}'], 200, { path: '/inventory/BERSERK-42?region=eu', key: customer });
    await check(['get', '/inventory/{sku}'], 400, { path: '/inventory/BERSERK-42', key: customer });
    await check(['get', '/inventory/{sku}'], 404, { path: '/inventory/NOPE-1?region=eu', key: customer });

    await check(['post', '/orders/{id}/cancel'], 200, {
      path: `/orders/${placed.id}/cancel`,
      key: customer,
      body: { reason: 'changed my mind' },
    });
    await check(['post', '/orders/{id}/cancel'], 404, {
      path: '/orders/00000000-0000-4000-8000-000000000000/cancel',
      key: customer,
    });

    const restock = { region: 'eu', quantity: 3 };
    await check(['post', '/admin/inventory/{sku}/restock'], 200, {
      path: '/admin/inventory/BERSERK-42/restock',
      key: admin,
      body: restock,
    });
    await check(['post', '/admin/inventory/{sku}/restock'], 403, {
      path: '/admin/inventory/BERSERK-42/restock',
      key: customer,
      body: restock,
    });
    await check(['post', '/admin/inventory/{sku}/restock'], 404, {
      path: '/admin/inventory/NOPE-1/restock',
      key: admin,
      body: restock,
    });
    await check(['post', '/admin/inventory/{sku}/adjust'], 200, {
      path: '/admin/inventory/BERSERK-42/adjust',
      key: admin,
      body: { region: 'eu', available: 40 },
    });
    await check(['post', '/admin/inventory/{sku}/adjust'], 400, {
      path: '/admin/inventory/BERSERK-42/adjust',
      key: admin,
      body: { region: 'eu', available: -1 },
    });

    const sale = await check(['post', '/admin/flash-sales'], 201, {
      path: '/admin/flash-sales',
      key: admin,
      body: {
        name: 'Spring',
        region: 'eu',
        skus: ['BERSERK-41'],
        startsAt: new Date().toISOString(),
        endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        purchaseLimit: 2,
      },
    });
    await check(['post', '/admin/flash-sales'], 400, { path: '/admin/flash-sales', key: admin, body: { name: 'x' } });
    await check(['get', '/admin/flash-sales'], 200, { path: '/admin/flash-sales', key: admin });
    await check(['post', '/admin/flash-sales/{id}/end'], 200, {
      path: `/admin/flash-sales/${sale.id}/end`,
      key: admin,
    });
    await check(['post', '/admin/flash-sales/{id}/end'], 409, {
      path: `/admin/flash-sales/${sale.id}/end`,
      key: admin,
    });
    await check(['get', '/admin/hot-skus'], 200, { path: '/admin/hot-skus', key: admin });
    await check(['get', '/admin/hot-skus'], 401, { path: '/admin/hot-skus' });

    const letter = await recordDeadLetter(h.deps.db, {
      orderId: placed.id,
      generation: 1,
      step: 'ship',
      errorCode: 'internal',
      message: 'for the test',
      attempts: 1,
      payload: null,
    });
    await check(['get', '/admin/dead-letters'], 200, { path: '/admin/dead-letters', key: admin });
    await check(['get', '/admin/dead-letters/{id}'], 200, { path: `/admin/dead-letters/${letter.id}`, key: admin });
    await check(['get', '/admin/dead-letters/{id}'], 404, { path: '/admin/dead-letters/999999', key: admin });
    await check(['post', '/admin/dead-letters/{id}/discard'], 200, {
      path: `/admin/dead-letters/${letter.id}/discard`,
      key: admin,
    });
    await check(['post', '/admin/dead-letters/{id}/replay'], 409, {
      path: `/admin/dead-letters/${letter.id}/replay`,
      key: admin,
    });

    // Returns. No workers run here, so nothing is delivered: the quote of the cancelled order is an
    // ineligible answer, and the tokens that create returns are quotes written straight to the database.
    await check(['post', '/orders/{id}/returns/quote'], 200, {
      path: `/orders/${placed.id}/returns/quote`,
      key: customer,
      body: { items: [{ orderItemId: 'BERSERK-42', quantity: 1 }], reason: 'too small' },
    });
    await check(['post', '/orders/{id}/returns/quote'], 400, {
      path: `/orders/${placed.id}/returns/quote`,
      key: customer,
      body: { items: [] },
    });
    const quoted = async (token: string) => {
      await insertQuote(h.deps.db, {
        tokenHash: createHash('sha256').update(token).digest('hex'),
        customerId: 'cust_ada',
        orderId: placed.id,
        items: [{ sku: 'BERSERK-42', quantity: 1, refundCents: 1999 }],
        reason: 'too small',
        refundCents: 1999,
        expiresAt: Date.now() + 600_000,
      });
      return token;
    };
    const first = await check(['post', '/orders/{id}/returns'], 201, {
      path: `/orders/${placed.id}/returns`,
      key: customer,
      body: { token: await quoted('rt_openapi-1') },
    });
    await check(['post', '/orders/{id}/returns'], 404, {
      path: `/orders/${placed.id}/returns`,
      key: customer,
      body: { token: 'rt_unknown' },
    });
    await check(['post', '/orders/{id}/returns'], 409, {
      path: `/orders/${placed.id}/returns`,
      key: customer,
      body: { token: 'rt_openapi-1' },
    });
    await check(['post', '/returns/{rma}/cancel'], 200, { path: `/returns/${first.rma}/cancel`, key: customer });
    const second = await check(['post', '/orders/{id}/returns'], 201, {
      path: `/orders/${placed.id}/returns`,
      key: customer,
      body: { token: await quoted('rt_openapi-2') },
    });
    await check(['get', '/returns/{rma}'], 200, { path: `/returns/${second.rma}`, key: customer });
    await check(['get', '/returns/{rma}'], 400, { path: '/returns/not-an-rma', key: customer });
    await check(['get', '/returns/{rma}'], 404, { path: '/returns/RMA-000000000000', key: customer });
    await check(['get', '/orders/{id}/returns'], 200, { path: `/orders/${placed.id}/returns`, key: customer });
    const receipt = { items: [{ orderItemId: 'BERSERK-42', quantity: 1, disposition: 'restock' }] };
    await check(['post', '/admin/returns/{rma}/receive'], 200, {
      path: `/admin/returns/${second.rma}/receive`,
      key: admin,
      body: receipt,
    });
    await check(['post', '/admin/returns/{rma}/receive'], 409, {
      path: `/admin/returns/${second.rma}/receive`,
      key: admin,
      body: receipt,
    });
    await check(['post', '/returns/{rma}/cancel'], 409, { path: `/returns/${second.rma}/cancel`, key: customer });
    await check(['get', '/admin/returns'], 200, { path: '/admin/returns?status=received', key: admin });
    await check(['get', '/admin/returns'], 400, { path: '/admin/returns?status=lost', key: admin });
    await check(['get', '/orders/{id}'], 200, { path: `/orders/${placed.id}`, key: customer });

    const chat = await check(['post', '/chat'], 200, {
      path: '/chat',
      key: customer,
      body: { message: 'Where is my order?' },
    });
    await check(['post', '/chat'], 400, { path: '/chat', key: customer, body: { message: '' } });
    await check(['post', '/chat'], 401, { path: '/chat', body: { message: 'hi' } });
    await check(['post', '/chat'], 403, { path: '/chat', key: admin, body: { message: 'hi' } });
    await check(['post', '/chat'], 404, {
      path: '/chat',
      key: h.keys.customers[1]!.apiKey,
      body: { sessionId: chat.sessionId, message: 'hi' },
    });

    // The scrape is text: its schema is a string.
    const metrics = await h.app.request('/metrics');
    expect(metrics.status).toBe(200);
    expect(declared('get', '/metrics', 200).safeParse(await metrics.text()).success).toBe(true);
    seen.push('get /metrics 200');

    // Every documented operation had at least its success answer checked here.
    const operations = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item).map((m) => `${m} ${path}`),
    );
    const checked = new Set(seen.map((s) => s.split(' ').slice(0, 2).join(' ')));
    expect(operations.filter((op) => !checked.has(op))).toEqual([]);
  });
});
