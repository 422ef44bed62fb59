import {
  BackendTerminatedError,
  ConnectionError,
  createPool,
  createSqlTag,
  type DatabasePool,
  type DatabaseTransactionConnection,
  type Interceptor,
  type QueryResultRow,
  SchemaValidationError,
  StatementTimeoutError,
} from 'slonik';
import { z } from 'zod';
import type { Config } from '../config/index.ts';
import { TransientError } from '../domain/errors.ts';

/** The one SQL tag. `sql.typeAlias('void')` marks statements that return no rows. */
export const sql = createSqlTag({ typeAliases: { void: z.object({}).strict() } });

// The database handle that the rest of the system sees. It is slonik's pool with two additions: rows
// of `sql.type(schema)` queries are validated against their schema, and infrastructure errors come out
// as our TransientError('database_unavailable'), so no caller ever handles a slonik error type.

export type Db = Pick<
  DatabasePool,
  'one' | 'maybeOne' | 'maybeOneFirst' | 'many' | 'any' | 'query' | 'oneFirst' | 'exists'
> & {
  transaction<T>(handler: (tx: Tx) => Promise<T>): Promise<T>;
  end(): Promise<void>;
};
export type Tx = DatabaseTransactionConnection;

const resultParser: Interceptor = {
  name: 'result-parser',
  transformRowAsync: async (context, query, row) => {
    if (!context.resultParser) return row;
    const result = await context.resultParser['~standard'].validate(row);
    if (result.issues) throw new SchemaValidationError(query, row, result.issues);
    return result.value as QueryResultRow;
  },
};

// PostgreSQL error classes that mean "the server or the connection is in trouble, try again later":
// 08 connection exception, 53 insufficient resources, 57P0x admin/crash shutdown, 40001/40P01 retried
// transactions that still failed after slonik's own retries.
const TRANSIENT_SQLSTATE = /^(08|53|57P0|40001|40P01)/;

export function isDatabaseOutage(error: unknown): boolean {
  if (error instanceof ConnectionError || error instanceof BackendTerminatedError) return true;
  if (error instanceof StatementTimeoutError) return true;
  const cause = (error as { cause?: { code?: string } })?.cause;
  const code = (error as { code?: string })?.code ?? cause?.code;
  if (typeof code !== 'string') return false;
  return (
    TRANSIENT_SQLSTATE.test(code) || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(code)
  );
}

function translate(error: unknown): never {
  if (isDatabaseOutage(error)) {
    throw new TransientError('database_unavailable', 'The database is unavailable', { cause: error });
  }
  throw error;
}

export async function createDatabase(config: Config['db']): Promise<Db> {
  const pool = await createPool(config.url, {
    maxPoolSize: config.poolSize,
    statementTimeout: config.statementTimeoutMs,
    connectionTimeout: 5_000,
    interceptors: [resultParser],
  });
  const wrap =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      fn(...args).catch(translate);
  return {
    one: wrap(pool.one) as Db['one'],
    maybeOne: wrap(pool.maybeOne) as Db['maybeOne'],
    many: wrap(pool.many) as Db['many'],
    any: wrap(pool.any) as Db['any'],
    query: wrap(pool.query) as Db['query'],
    oneFirst: wrap(pool.oneFirst) as Db['oneFirst'],
    maybeOneFirst: wrap(pool.maybeOneFirst) as Db['maybeOneFirst'],
    exists: wrap(pool.exists) as Db['exists'],
    transaction: (handler) => pool.transaction(handler).catch(translate),
    end: () => pool.end(),
  };
}
