import { createMiddleware } from 'hono/factory';
import { AppError } from '../domain/errors.ts';

export type Caller = { apiKeyId: number; name: string; role: 'customer' | 'admin'; customerId: string | null };
export type AuthEnv = { Variables: { caller: Caller } };

export type ApiKeyAuthOptions = {
  findKey: (key: string) => Promise<Caller | null>;
  /** Only callers with this role pass (default: any valid key). */
  role?: Caller['role'];
};

/**
 * API keys from `Authorization: Bearer <key>`, `X-API-Key: <key>`, or HTTP Basic with the key as the
 * password (so a browser can open Bull Board). A missing or unknown key is 401; a valid key without the
 * required role is 403.
 */
export function apiKeyAuth(options: ApiKeyAuthOptions) {
  return createMiddleware<AuthEnv>(async function apiKeyAuthHandler(c, next) {
    const key = readKey(c.req.header('authorization'), c.req.header('x-api-key'));
    if (!key) throw new AppError('unauthorized', 'An API key is required (Authorization: Bearer <key>)');
    const caller = await options.findKey(key);
    if (!caller) throw new AppError('unauthorized', 'The API key is not valid');
    if (options.role && caller.role !== options.role) {
      throw new AppError('forbidden', `This needs an ${options.role} API key`);
    }
    c.set('caller', caller);
    await next();
  });
}

function readKey(authorization: string | undefined, apiKeyHeader: string | undefined): string | undefined {
  if (apiKeyHeader) return apiKeyHeader.trim();
  if (!authorization) return undefined;
  const [scheme, value] = authorization.split(' ', 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value.trim();
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1) || undefined;
  }
  return undefined;
}
