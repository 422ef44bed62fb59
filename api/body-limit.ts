import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AppError } from '../domain/errors.ts';

/**
 * Refuses a request body over `maxSize` bytes with 413 `payload_too_large`, before anything reads it.
 *
 * Hono's bodyLimit looks at `c.req.raw.body` first, on every request. Under @hono/node-server that one
 * property turns the lightweight request into a full web `Request` with a stream over the socket, which
 * cost the API about a fifth of its CPU per request at the flash-sale door (a GET pays it too). Here a
 * request that declares its length is judged by its `Content-Length` alone (Node's parser never reads
 * past it), a GET or HEAD has no body to judge, and only a body streamed without a length (chunked)
 * goes through Hono's counting reader, which stops at the limit.
 */
export function limitBodySize(maxSize: number): MiddlewareHandler {
  const tooLarge = (): never => {
    throw new AppError('payload_too_large', `Request body is larger than ${maxSize} bytes`);
  };
  const counted = bodyLimit({ maxSize, onError: tooLarge });
  return async function bodySizeLimit(c, next) {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number.parseInt(declared, 10) > maxSize) tooLarge();
      return next();
    }
    return counted(c, next);
  };
}
