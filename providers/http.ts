import type { z } from 'zod';
import { AppError, TransientError } from '../domain/errors.ts';

// JSON over fetch for the provider adapters, with a hard timeout and one classification of failures:
// slow or unreachable providers are transient (retry), answers we did not expect are permanent.

export type RequestOptions = {
  timeoutMs: number;
  idempotencyKey?: string;
  /** Non-2xx statuses the caller handles itself (a decline, an undeliverable address). */
  expect?: readonly number[];
};

export type ProviderResponse = { status: number; body: unknown; url: string };

export function postJson(url: string, body: unknown, options: RequestOptions): Promise<ProviderResponse> {
  return send('POST', url, body, options);
}

export function getJson(url: string, options: RequestOptions): Promise<ProviderResponse> {
  return send('GET', url, undefined, options);
}

/** The provider's own error code, from an `{ error: { code } }` body. */
export function providerErrorCode(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  const { error } = body as { error: unknown };
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/** Checks a provider's answer against the shape we rely on; anything else needs a human. */
export function parseResponse<T>(schema: z.ZodType<T>, response: ProviderResponse): T {
  const parsed = schema.safeParse(response.body);
  if (parsed.success) return parsed.data;
  throw new AppError('provider_rejected', `Unexpected response from ${response.url} (${response.status})`, {
    cause: parsed.error,
    details: { url: response.url, status: response.status, issues: parsed.error.issues },
  });
}

async function send(method: 'GET' | 'POST', url: string, body: unknown, options: RequestOptions) {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;

  let status: number;
  let text: string;
  let retryAfter: string | null;
  try {
    // The timeout also covers reading the body: a provider that stalls mid-answer times out too.
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    status = response.status;
    retryAfter = response.headers.get('retry-after');
    text = await response.text();
  } catch (error) {
    throw classifyFailure(error, `${method} ${url}`, options.timeoutMs);
  }

  const response: ProviderResponse = { status, body: parseJson(text), url };
  if ((status >= 200 && status < 300) || options.expect?.includes(status)) return response;
  throw classifyStatus(method, response, retryAfter);
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'TimeoutError';
}

// undici reports refused, reset and dropped connections as `TypeError('fetch failed')` with the socket
// error as cause, and a connection dropped mid-body as `TypeError('terminated')`.
function isNetworkFailure(error: unknown): boolean {
  return error instanceof TypeError && (error.message === 'fetch failed' || error.message === 'terminated');
}

function classifyFailure(error: unknown, target: string, timeoutMs: number): unknown {
  if (isTimeout(error)) {
    return new TransientError('provider_timeout', `${target} got no answer within ${timeoutMs} ms`, {
      cause: error,
      details: { target, timeoutMs },
    });
  }
  if (isNetworkFailure(error)) {
    const cause = (error as TypeError).cause;
    const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : undefined;
    return new TransientError('provider_unavailable', `${target} failed: ${code ?? (error as Error).message}`, {
      cause: error,
      details: { target, ...(code ? { errno: code } : {}) },
    });
  }
  // A malformed URL or a bug of ours: not the provider's fault, and retrying will not help.
  return error;
}

function classifyStatus(method: string, response: ProviderResponse, retryAfter: string | null): AppError {
  const code = providerErrorCode(response.body);
  const target = `${method} ${response.url}`;
  const message = `${target} answered ${response.status}${code ? ` ${code}` : ''}`;
  const details = { target, status: response.status, ...(code ? { providerCode: code } : {}) };
  // 409 in flight: the first attempt with this key is still running; its outcome is worth waiting for.
  if (response.status >= 500 || response.status === 429 || code === 'idempotency_key_in_flight') {
    return new TransientError('provider_unavailable', message, {
      details: { ...details, ...(retryAfter ? { retryAfter } : {}) },
    });
  }
  return new AppError('provider_rejected', message, { details: { ...details, body: response.body } });
}
