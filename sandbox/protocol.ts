import type { Context, Hono, MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';

// What both fake providers share on the wire: error bodies, body validation and idempotency keys
// with the semantics of Stripe's (replay on the same request, reject a reused key, 409 while in flight).

export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
  details?: unknown,
) {
  return c.json({ error: { code, message, ...(details === undefined ? {} : { details }) } }, status);
}

export function notFound(c: Context, what: string, id: string) {
  return errorResponse(c, 404, 'not_found', `No ${what} with id ${id}`);
}

/** Parses the JSON body against a schema; an empty body counts as `{}` so bodiless POSTs validate. */
export async function parseBody<T>(
  c: Context,
  schema: z.ZodType<T>,
): Promise<{ ok: true; data: T } | { ok: false; response: Response }> {
  const text = await c.req.text();
  let json: unknown;
  try {
    json = text.trim() === '' ? {} : JSON.parse(text);
  } catch {
    return { ok: false, response: errorResponse(c, 400, 'invalid_json', 'The body is not valid JSON') };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, data: parsed.data };
  const details = parsed.error.issues.map((issue) => ({
    field: issue.path.join('.') || '(body)',
    message: issue.message,
  }));
  return {
    ok: false,
    response: errorResponse(
      c,
      400,
      'validation_failed',
      `Invalid fields: ${details.map((d) => d.field).join(', ')}`,
      details,
    ),
  };
}

type StoredResponse = { status: number; body: string; contentType: string };
type IdempotencyEntry = { fingerprint: string; response: StoredResponse | undefined };
export type IdempotencyStore = Map<string, IdempotencyEntry>;

export function idempotencyKeys(options: { store: IdempotencyStore }): MiddlewareHandler {
  const { store } = options;
  return async function idempotency(c, next) {
    if (c.req.method !== 'POST') return next();
    const key = c.req.header('idempotency-key');
    if (!key) return errorResponse(c, 400, 'idempotency_key_missing', 'POST requests need an Idempotency-Key header');
    const fingerprint = `${c.req.method} ${c.req.path}\n${await c.req.text()}`;
    const existing = store.get(key);
    if (existing && existing.fingerprint !== fingerprint) {
      return errorResponse(c, 422, 'idempotency_key_reused', 'This Idempotency-Key was used with another request');
    }
    if (existing && !existing.response) {
      return errorResponse(c, 409, 'idempotency_key_in_flight', 'A request with this Idempotency-Key is in progress');
    }
    if (existing?.response) {
      return new Response(existing.response.body, {
        status: existing.response.status,
        headers: { 'content-type': existing.response.contentType, 'Idempotent-Replayed': 'true' },
      });
    }
    const entry: IdempotencyEntry = { fingerprint, response: undefined };
    store.set(key, entry);
    await next();
    // A crash did nothing the client can rely on: free the key so a retry runs the operation.
    if (c.res.status >= 500) {
      store.delete(key);
      return;
    }
    entry.response = {
      status: c.res.status,
      body: await c.res.clone().text(),
      contentType: c.res.headers.get('content-type') ?? 'application/json',
    };
  };
}

export function handleErrorsAsJson(app: Hono): void {
  app.notFound((c) => errorResponse(c, 404, 'not_found', `No route for ${c.req.method} ${c.req.path}`));
  app.onError((error, c) => errorResponse(c, 500, 'internal_error', error.message));
}
