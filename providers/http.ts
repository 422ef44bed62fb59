import http from 'node:http';
import https from 'node:https';
import type { z } from 'zod';
import { AppError, TransientError } from '../domain/errors.ts';

// JSON over HTTP for the provider adapters, with a hard timeout and one classification of failures:
// slow or unreachable providers are transient (retry), answers we did not expect are permanent.
//
// node:http with a keep-alive agent rather than fetch: every step calls a provider, and fetch cost about
// three times the client CPU per call here (issue 8's measurements). Connections are kept and reused.
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 256 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 256 }),
};

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

  let answer: Answer;
  try {
    answer = await request(method, url, headers, body === undefined ? undefined : JSON.stringify(body), options);
  } catch (error) {
    throw classifyFailure(error, `${method} ${url}`, options.timeoutMs);
  }
  const { status, text, retryAfter } = answer;

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

type Answer = { status: number; text: string; retryAfter: string | null };

/** One request; the timeout also covers reading the body, so a provider that stalls mid-answer times out. */
function request(
  method: string,
  url: string,
  headers: Record<string, string>,
  payload: string | undefined,
  options: RequestOptions,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const agent = agents[target.protocol as keyof typeof agents];
    if (!agent) throw new TypeError(`Unsupported provider URL ${url}`);
    const send = target.protocol === 'https:' ? https.request : http.request;
    const signal = AbortSignal.timeout(options.timeoutMs);
    const req = send(target, { method, headers, agent, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('close', () => {
        // A connection dropped mid-body ends the response without completing it.
        if (!res.complete)
          return reject(Object.assign(new Error('connection closed mid-answer'), { code: 'ECONNRESET' }));
        const retryAfter = res.headers['retry-after'];
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString('utf8'),
          retryAfter: typeof retryAfter === 'string' ? retryAfter : null,
        });
      });
    });
    req.on('error', (error) => reject(signal.aborted ? signal.reason : error));
    req.end(payload);
  });
}

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'TimeoutError';
}

// Refused, reset and dropped connections, and names that do not resolve: the socket's error code.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

function networkCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && NETWORK_CODES.has(code) ? code : undefined;
}

function classifyFailure(error: unknown, target: string, timeoutMs: number): unknown {
  if (isTimeout(error)) {
    return new TransientError('provider_timeout', `${target} got no answer within ${timeoutMs} ms`, {
      cause: error,
      details: { target, timeoutMs },
    });
  }
  const code = networkCode(error);
  if (code) {
    return new TransientError('provider_unavailable', `${target} failed: ${code}`, {
      cause: error,
      details: { target, errno: code },
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
