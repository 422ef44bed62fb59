import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../runtime/logger.ts';
import { limitBodySize } from './body-limit.ts';
import { createErrorHandler } from './errors.ts';

// Over real HTTP (@hono/node-server), where the declared length and a chunked body differ: app.request()
// builds a web Request, which never carries a Content-Length.

const LIMIT = 100;
const handled: number[] = [];
let server: ServerType;
let port: number;

beforeAll(async () => {
  const app = new Hono();
  app.use(limitBodySize(LIMIT));
  app.post('/echo', async (c) => {
    const body = await c.req.text();
    handled.push(body.length);
    return c.json({ length: body.length, last: body.at(-1) ?? null });
  });
  app.get('/echo', (c) => c.json({ ok: true }));
  app.onError(createErrorHandler(createLogger('silent', 'test')));
  server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  if ('closeAllConnections' in server) server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

type Answer = { length?: number; last?: string | null; error?: { code: string; message: string } };

/** Sends `chunks` as the body: with their total as Content-Length, or chunked (no length) when `chunked`. */
async function post(chunks: string[], chunked: boolean): Promise<{ status: number; body: Answer }> {
  const total = chunks.reduce((n, chunk) => n + Buffer.byteLength(chunk), 0);
  const request = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/echo',
    agent: false,
    headers: chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': total },
  });
  const answered = once(request, 'response') as Promise<[http.IncomingMessage]>;
  request.on('error', () => {}); // the server may answer 413 and close before the whole body is sent
  for (const chunk of chunks) request.write(chunk);
  request.end();
  const [response] = await answered;
  let text = '';
  for await (const part of response) text += part;
  return { status: response.statusCode ?? 0, body: JSON.parse(text) as Answer };
}

describe('limitBodySize', () => {
  it.each([
    ['with a Content-Length', false],
    ['chunked, without a length', true],
  ])('passes a body at the limit %s, which the handler reads whole', async (_name, chunked) => {
    const res = await post(['x'.repeat(LIMIT - 1), 'y'], chunked);
    expect(res).toEqual({ status: 200, body: { length: LIMIT, last: 'y' } });
  });

  it.each([
    ['with a Content-Length', false],
    ['chunked, without a length', true],
  ])('refuses a body one byte over the limit %s with 413, before the handler', async (_name, chunked) => {
    const before = handled.length;
    const res = await post(['x'.repeat(LIMIT), 'y'], chunked);
    expect(res.status).toBe(413);
    expect(res.body.error).toMatchObject({
      code: 'payload_too_large',
      message: `Request body is larger than ${LIMIT} bytes`,
    });
    expect(handled.length).toBe(before);
  });

  it('lets a GET through', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/echo`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });
});
