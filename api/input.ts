import type { z } from 'zod';
import { ValidationError } from '../domain/errors.ts';
import { fieldName } from './order-request.ts';

/** Parses a body or query string with its schema, or throws one 400 that names every bad field. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what: 'body' | 'query'): z.infer<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const unknown = what === 'body' ? 'is not a known field' : 'is not a known parameter';
  const problems = parsed.error.issues.flatMap((i) =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ field: fieldName([...i.path, k]), message: unknown }))
      : [{ field: fieldName(i.path), message: i.message }],
  );
  throw new ValidationError(`The ${what} is not valid`, problems);
}

/** Timestamps in answers: ISO 8601, or null. */
export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
