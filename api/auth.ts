import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { AppError } from '../domain/errors.ts';

export type Caller = { apiKeyId: number; name: string; role: 'customer' | 'admin'; customerId: string | null };
export type AuthEnv = { Variables: { caller: Caller } };

export type ApiKeyAuthOptions = {
  findKey: (key: string) => Promise<Caller | null>;
  /** Only callers with this role pass (default: any valid key). */
  role?: Caller['role'];
  /**
   * Also take HTTP Basic with the key as the password, and challenge with Basic alone. Only for pages a
   * browser opens (Bull Board): a browser sends Basic credentials on its own, so every other route refuses
   * them, which keeps a cross-site form from writing with an admin's remembered login.
   */
  basic?: boolean;
};

/**
 * API keys from `Authorization: Bearer <key>` or `X-API-Key: <key>` (and HTTP Basic where `basic` is
 * set). A missing or unknown key is 401 with a challenge for the scheme the route takes; a valid key
 * without the required role is 403.
 */
export function apiKeyAuth(options: ApiKeyAuthOptions) {
  const challenge = options.basic ? 'Basic realm="orderflow", charset="UTF-8"' : 'Bearer realm="orderflow"';
  const refuse = (c: Context, message: string): never => {
    c.header('WWW-Authenticate', challenge);
    throw new AppError('unauthorized', message);
  };
  return createMiddleware<AuthEnv>(async function apiKeyAuthHandler(c, next) {
    const key = readKey(c.req.header('authorization'), c.req.header('x-api-key'), options.basic === true);
    if (!key) {
      return refuse(
        c,
        options.basic
          ? 'An admin API key is required (HTTP Basic: any user name, the key as password)'
          : 'An API key is required (Authorization: Bearer <key>)',
      );
    }
    const caller = await options.findKey(key);
    if (!caller) return refuse(c, 'The API key is not valid');
    if (options.role && caller.role !== options.role) {
      throw new AppError('forbidden', `This needs an ${options.role} API key`);
    }
    c.set('caller', caller);
    await next();
  });
}

function readKey(authorization: string | undefined, apiKeyHeader: string | undefined, basic: boolean) {
  if (apiKeyHeader) return apiKeyHeader.trim() || undefined;
  if (!authorization) return undefined;
  const [scheme, value] = authorization.split(' ', 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value.trim() || undefined;
  if (basic && scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1) || undefined;
  }
  return undefined;
}
