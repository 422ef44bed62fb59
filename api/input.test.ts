import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AppError } from '../domain/errors.ts';
import { createLogger } from '../runtime/logger.ts';
import { createErrorHandler } from './errors.ts';
import { calendarDate, instant, isMomentInRange, jsonBody, noBody, text } from './input.ts';

describe('text', () => {
  it.each([
    ['plain text', 'Ada Lovelace', true],
    ['accents and emoji', 'Zoë 🐈 Ōsaka', true],
    ['a NUL', 'a\u0000b', false],
    ['a lone high surrogate', 'a\ud800b', false],
    ['a lone low surrogate', 'a\udc00', false],
    ['a line break', 'a\nb', false],
    ['an escape character', 'a\u001bb', false],
    ['DEL', 'a\u007fb', false],
    ['a C1 control', 'a\u0085b', false],
    ['only spaces', '   ', false],
    ['one character too many', 'x'.repeat(21), false],
  ])('%s is %s', (_name, value, ok) => {
    expect(text(20).safeParse(value).success).toBe(ok);
  });

  it('allows tabs and line breaks, and nothing else, where multiline', () => {
    expect(text(50, { multiline: true }).safeParse('line one\r\n\tline two').success).toBe(true);
    expect(text(50, { multiline: true }).safeParse('a\u0000b').success).toBe(false);
    expect(text(50, { multiline: true }).safeParse('a\ud800').success).toBe(false);
  });

  it('keeps surrounding spaces when told not to trim', () => {
    expect(text(10, { trim: false }).parse(' a ')).toBe(' a ');
    expect(text(10).parse(' a ')).toBe('a');
  });
});

describe('dates and instants', () => {
  it.each([
    ['2026-05-01', true],
    ['1970-01-01', true],
    ['9999-12-31', true],
    ['0000-01-01', false],
    ['1969-12-31', false],
    ['2026-02-30', false],
    ['10000-01-01', false],
  ])('calendarDate %s is %s, with one message at most', (value, ok) => {
    const parsed = calendarDate.safeParse(value);
    expect(parsed.success).toBe(ok);
    if (!parsed.success) expect(parsed.error.issues).toHaveLength(1);
  });

  it.each([
    ['2026-05-01T10:00:00Z', true],
    ['2026-05-01T10:00:00+02:00', true],
    ['0000-01-01T00:00:00Z', false],
    ['9999-12-31T23:59:59-14:00', false],
    ['2026-05-01T10:00:00', false],
  ])('instant %s is %s', (value, ok) => {
    expect(instant.safeParse(value).success).toBe(ok);
  });

  it.each([
    [Date.UTC(2026, 0, 1), true],
    [0, true],
    [-1, false],
    [1e20, false],
    [Number.NaN, false],
    [Number.POSITIVE_INFINITY, false],
    ['1700000000000', false],
    [null, false],
  ])('isMomentInRange(%s) is %s', (value, ok) => {
    expect(isMomentInRange(value)).toBe(ok);
  });
});

describe('jsonBody', () => {
  const app = new Hono();
  app.post('/required', jsonBody(z.strictObject({ n: z.int() })), (c) => c.json(c.req.valid('json')));
  app.post('/optional', jsonBody(z.strictObject({ n: z.int().optional() }), { optional: true }), (c) =>
    c.json(c.req.valid('json')),
  );
  app.post('/none', noBody(), (c) => c.json({ ok: true }));
  app.onError(createErrorHandler(createLogger('silent', 'test')));
  const post = async (path: string, body?: string, contentType?: string) => {
    const res = await app.request(path, {
      method: 'POST',
      // Bytes, so that no content type is added for us.
      body: body === undefined ? undefined : new TextEncoder().encode(body),
      headers: contentType ? { 'content-type': contentType } : {},
    });
    return { status: res.status, body: (await res.json()) as { error?: { code: string; details: unknown } } };
  };

  it('passes a JSON body that matches the schema', async () => {
    expect(await post('/required', '{"n":1}', 'application/json')).toEqual({ status: 200, body: { n: 1 } });
    expect((await post('/required', '{"n":1}', 'Application/JSON; charset=utf-8')).status).toBe(200);
  });

  it.each([
    ['text/plain', '{"n":1}'],
    ['application/x-www-form-urlencoded', 'n=1'],
    ['multipart/form-data; boundary=x', '--x--'],
    ['application/jsonp', '{"n":1}'],
    [undefined, '{"n":1}'],
  ])('refuses a body sent as %s with 415', async (contentType, body) => {
    const res = await post('/required', body, contentType);
    expect(res.status).toBe(415);
    expect(res.body.error).toEqual({
      code: 'unsupported_media_type',
      message: expect.any(String),
      details: { contentType: contentType ?? null },
    });
  });

  it('answers 400 for JSON that does not parse or does not match', async () => {
    expect((await post('/required', '{"n":', 'application/json')).body.error?.code).toBe('validation_failed');
    expect((await post('/required', '', 'application/json')).body.error?.code).toBe('validation_failed');
    expect((await post('/required', '{"n":1,"x":2}', 'application/json')).body.error?.details).toEqual([
      { field: 'x', message: 'is not a known field' },
    ]);
  });

  it('takes an empty body as {} where the body is optional, whatever its content type', async () => {
    expect(await post('/optional')).toEqual({ status: 200, body: {} });
    expect(await post('/optional', '', 'text/plain')).toEqual({ status: 200, body: {} });
    expect((await post('/optional', '{"n":2}', 'text/plain')).status).toBe(415);
    expect(await post('/optional', '{"n":2}', 'application/json')).toEqual({ status: 200, body: { n: 2 } });
  });

  it('takes nothing or {} on a route without a body', async () => {
    expect((await post('/none')).status).toBe(200);
    expect((await post('/none', '{}', 'application/json')).status).toBe(200);
    expect((await post('/none', '{"force":true}', 'application/json')).status).toBe(400);
    expect((await post('/none', 'x', 'text/plain')).status).toBe(415);
  });
});

describe('the error handler', () => {
  const app = new Hono();
  app.get('/bug', () => {
    throw new TypeError('secret detail');
  });
  app.get('/detailed-bug', () => {
    throw new AppError('internal', 'secret', { details: { secret: true } });
  });
  app.onError(createErrorHandler(createLogger('silent', 'test')));

  it('answers a bug with 500, details null, and nothing from inside', async () => {
    for (const path of ['/bug', '/detailed-bug']) {
      const res = await app.request(path);
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: { code: 'internal', message: 'Internal error', details: null } });
    }
  });
});
