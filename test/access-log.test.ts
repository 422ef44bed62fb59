import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

// The request id and the access log around every request, the cache hits included: an app over the
// harness's dependencies, with a logger whose lines the test reads.
let h: Harness;
let app: ReturnType<typeof createApp>;
const lines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  h = await startHarness({ workers: false });
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  app = createApp({
    ...h.apiDeps,
    log: pino({ level: 'info' }, sink),
    bodyLimitBytes: h.config.http.bodyLimitBytes,
    idempotencyStaleAfterMs: 60_000,
    recentOrdersTtlMs: h.config.cache.ttlMs.recentOrders,
  });
});
afterAll(async () => {
  await h?.close();
});

const accessLine = (requestId: string) => lines.find((l) => l.msg === 'request' && l.requestId === requestId);

describe('every request', () => {
  it('gets a request id, answered in X-Request-Id and named by its access log line, cache hits too', async () => {
    const { id } = (await h.placeOrder(orderBody())).body;
    const headers = { authorization: `Bearer ${h.customerKey}` };
    for (const source of ['database', 'cache']) {
      const res = await app.request(`/orders/${id}`, { headers });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { freshness: { placed: { source: string } } }).freshness.placed.source).toBe(
        source,
      );
      const requestId = res.headers.get('x-request-id')!;
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(accessLine(requestId)).toMatchObject({ method: 'GET', path: `/orders/${id}`, status: 200 });
      expect(accessLine(requestId)!.ms).toEqual(expect.any(Number));
    }
  });

  it("keeps the caller's own request id when it is well formed, and replaces one that is not", async () => {
    const own = await app.request('/orders/not-a-uuid', {
      headers: { authorization: `Bearer ${h.customerKey}`, 'x-request-id': 'trace-42' },
    });
    expect(own.headers.get('x-request-id')).toBe('trace-42');
    expect(accessLine('trace-42')).toMatchObject({ path: '/orders/not-a-uuid', status: 400 });

    const bad = await app.request('/healthz', { headers: { 'x-request-id': 'no spaces <allowed>' } });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers Bull Board with a request id too, which has an app of its own', async () => {
    const basic = Buffer.from(`admin:${h.adminKey}`).toString('base64');
    const page = await app.request('/admin/queues', { headers: { authorization: `Basic ${basic}` } });
    expect(page.status).toBe(200);
    const requestId = page.headers.get('x-request-id')!;
    expect(accessLine(requestId)).toMatchObject({ path: '/admin/queues', status: 200 });
  });
});
