import type { Context, Env, MiddlewareHandler } from 'hono';
import { validator } from 'hono/validator';
import { z } from 'zod';
import { AppError, ValidationError } from '../domain/errors.ts';
import { uuidPattern } from '../domain/ids.ts';

// Parse once, at the edge: every path parameter, query string and body goes through a schema here
// before a handler sees it, and every string that can reach PostgreSQL is one it can store.

type Source = 'body' | 'query' | 'path';

/** Parses a body, query string or path parameters with its schema, or throws one 400 naming every bad field. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what: Source): z.infer<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const unknown = what === 'body' ? 'is not a known field' : 'is not a known parameter';
  const problems = parsed.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ field: fieldName([...i.path, k]), message: unknown }))
      : [{ field: fieldName(i.path), message: i.message }],
  );
  throw new ValidationError(`The ${what === 'path' ? 'path' : what} is not valid`, problems);
}

export function fieldName(path: ReadonlyArray<PropertyKey>): string {
  return (
    path.reduce<string>((name, part) => {
      if (typeof part === 'number') return `${name}[${part}]`;
      return name ? `${name}.${String(part)}` : String(part);
    }, '') || '(body)'
  );
}

// PostgreSQL refuses NUL in text; a lone UTF-16 surrogate is refused by jsonb and silently mangled in
// text. Other control characters are stored but are never part of a name, an address or an id.
const CONTROL = /\p{Cc}/u;
const CONTROL_BUT_LINE_BREAKS = /[\p{Cc}--[\t\n\r]]/v;

/**
 * A string field: trimmed (unless `trim: false`, for ids in paths), `min` to `max` characters, well-formed
 * Unicode without control characters (tabs and line breaks are allowed where `multiline`).
 */
export function text(
  max: number,
  options: { min?: number; trim?: boolean; multiline?: boolean; tooShort?: string } = {},
) {
  const base = options.trim === false ? z.string() : z.string().trim();
  return base
    .min(options.min ?? 1, options.tooShort)
    .max(max)
    .refine((s) => s.isWellFormed(), 'must be valid Unicode text (it has a lone surrogate)')
    .refine(
      (s) => !(options.multiline ? CONTROL_BUT_LINE_BREAKS : CONTROL).test(s),
      options.multiline
        ? 'must not contain control characters other than tabs and line breaks'
        : 'must not contain control characters',
    );
}

/** The range of dates and times we accept anywhere: PostgreSQL and JavaScript both hold it exactly. */
const EARLIEST_MS = Date.UTC(1970, 0, 1);
const LATEST_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
const inRange = (ms: number) => Number.isFinite(ms) && ms >= EARLIEST_MS && ms <= LATEST_MS;

// Checked only once the format is right, so that a malformed value gets one message, not two.
const formatIsRight = { when: (payload: { issues: readonly unknown[] }) => payload.issues.length === 0 };

/** A calendar date, YYYY-MM-DD, from 1970 to 9999. */
export const calendarDate = z.iso
  .date()
  .refine((d) => inRange(Date.parse(d)), { message: 'must be between 1970-01-01 and 9999-12-31', ...formatIsRight });

/** An ISO 8601 instant with its offset, from 1970 to 9999. */
export const instant = z.iso
  .datetime({ offset: true })
  .refine((t) => inRange(Date.parse(t)), { message: 'must be between 1970 and 9999', ...formatIsRight });

/** Whether an epoch-milliseconds number is a moment we accept (cursors carry them). */
export const isMomentInRange = (ms: unknown): ms is number => typeof ms === 'number' && inRange(ms);

/** Ids in paths: SKUs and customer ids are taken as sent (not trimmed), then looked up. */
export const skuParam = text(64, { trim: false });
export const customerIdParam = text(64, { trim: false });

export const uuidParam = z.string().regex(uuidPattern, 'must be a UUID');
export const positiveIdParam = z
  .string()
  .regex(/^[1-9][0-9]{0,15}$/, 'must be a positive integer')
  .transform(Number)
  .refine(Number.isSafeInteger, 'must be a positive integer');

/** Validates the route's path parameters: `c.req.valid('param')`. */
export const pathParams = <T extends z.ZodType>(schema: T) =>
  validator('param', (value) => parseInput(schema, value, 'path') as z.output<T>);

/** Validates the query string (a repeated parameter arrives as an array): `c.req.valid('query')`. */
export const queryParams = <T extends z.ZodType>(schema: T) =>
  validator('query', (value) => parseInput(schema, value, 'query') as z.output<T>);

/**
 * The one body parser: the body must be JSON sent as `Content-Type: application/json` (415 otherwise:
 * a cross-site form or `text/plain` post never reaches a handler), then pass `parse` (a schema, or a
 * function that throws a ValidationError). Where `optional`, an empty body counts as `{}` whatever its
 * content type. The handler reads it with `c.req.valid('json')`.
 */
export function jsonBody<T>(
  parse: z.ZodType<T> | ((body: unknown) => T),
  options: { optional?: boolean } = {},
): MiddlewareHandler<Env, string, { in: { json: unknown }; out: { json: T } }> {
  return async function jsonBodyParser(c, next) {
    const raw = await c.req.text();
    let body: unknown = {};
    if (raw.length > 0 || !options.optional) {
      requireJsonContentType(c);
      try {
        body = JSON.parse(raw);
      } catch {
        throw new ValidationError('The body is not valid JSON', [{ field: '(body)', message: 'is not valid JSON' }]);
      }
    }
    const parsed = typeof parse === 'function' ? parse(body) : parseInput(parse, body, 'body');
    c.req.addValidatedData('json', parsed as object);
    await next();
  };
}

/** For actions that take no body: none, or `{}` as JSON (anything else is refused like any other body). */
export const noBody = () => jsonBody(z.strictObject({}), { optional: true });

function requireJsonContentType(c: Context): void {
  const contentType = c.req.header('content-type');
  const mediaType = contentType?.split(';')[0]?.trim().toLowerCase();
  if (mediaType === 'application/json') return;
  throw new AppError('unsupported_media_type', 'The body must be JSON, sent with Content-Type: application/json', {
    details: { contentType: contentType ?? null },
  });
}
