// From zod-openapi, which adds .openapi() to schemas made after it loads: the document names this one.
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, DataRejectedError, type ErrorCode } from '../domain/errors.ts';
import type { Logger } from '../runtime/logger.ts';

const statusByCode: Record<ErrorCode, ContentfulStatusCode> = {
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  idempotency_key_in_flight: 409,
  order_not_active: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  invalid_value: 400,
  constraint_violated: 409,
  idempotency_key_reused: 422,
  payment_declined: 422,
  out_of_stock: 422,
  invalid_order: 422,
  purchase_limit_exceeded: 422,
  sold_out: 409,
  checkout_busy: 429,
  rate_limited: 429,
  // Another customer's token is "not found", like another customer's order; the caller's own token for
  // another order is theirs to know about, but not for this order.
  return_token_invalid: 404,
  return_token_wrong_order: 403,
  return_token_expired: 422,
  return_token_used: 409,
  already_returned: 409,
  address_undeliverable: 422,
  provider_rejected: 502,
  provider_unavailable: 503,
  provider_timeout: 503,
  step_timeout: 503,
  database_unavailable: 503,
  queue_unavailable: 503,
  internal: 500,
};

/** Every error code, from the exhaustive map above: the error body's schema names them all. */
export const errorCodes = Object.keys(statusByCode) as [ErrorCode, ...ErrorCode[]];

/** The one error body, as the OpenAPI document declares it on every 4xx and 5xx answer. */
export const errorBodySchema = z.object({
  error: z.object({
    code: z.enum(errorCodes),
    message: z.string(),
    // The fields a 400 names, or what else the caller needs (a 429's wait); null on a 5xx.
    details: z.union([z.array(z.record(z.string(), z.unknown())), z.record(z.string(), z.unknown()), z.null()]),
  }),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

/** The one place where errors become HTTP answers: `{ error: { code, message, details } }`. */
export function createErrorHandler(log: Logger) {
  return function onError(err: Error, c: Context): Response {
    const error = toHttpError(err);
    const status = statusByCode[error.code];
    if (status >= 500) log.error({ err, path: c.req.path, method: c.req.method }, error.message);
    // The caller's mistake, but one the edge checks should have caught before PostgreSQL did: worth a look.
    else if (error instanceof DataRejectedError) {
      log.warn({ err, path: c.req.path, constraint: error.constraint }, 'PostgreSQL refused data from a request');
    }
    if (status === 503) c.header('Retry-After', '5');
    if (status === 429) c.header('Retry-After', String(retryAfterSeconds(error.details)));
    // Details are for the caller's mistakes; a 5xx says what kind of trouble, never what went wrong inside.
    const details = status < 500 && error.details !== undefined ? error.details : null;
    const body: ErrorBody = {
      error: { code: error.code, message: status === 500 ? 'Internal error' : error.message, details },
    };
    return c.json(body, status);
  };
}

/** A 429 says when to come back: its details' `retryAfterSeconds`, at least 1. */
function retryAfterSeconds(details: unknown): number {
  const seconds = (details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  return typeof seconds === 'number' && seconds >= 1 ? Math.ceil(seconds) : 1;
}

function toHttpError(err: Error): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof HTTPException) {
    if (err.status === 413) return new AppError('payload_too_large', err.message || 'Request body is too large');
    if (err.status === 401) return new AppError('unauthorized', err.message || 'Authentication required');
    if (err.status === 403) return new AppError('forbidden', err.message || 'Forbidden (cross-site request)');
    if (err.status === 404) return new AppError('not_found', err.message || 'Not found');
    if (err.status < 500) return new AppError('validation_failed', err.message || 'Bad request');
  }
  return new AppError('internal', err.message, { cause: err });
}

export function notFound(c: Context): Response {
  const body: ErrorBody = {
    error: { code: 'not_found', message: `No route for ${c.req.method} ${c.req.path}`, details: null },
  };
  return c.json(body, 404);
}
