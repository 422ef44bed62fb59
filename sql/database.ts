import { AsyncLocalStorage } from 'node:async_hooks';
import { createPgDriverFactory } from '@slonik/pg-driver';
import pg from 'pg';
import {
  BackendTerminatedError,
  BackendTerminatedUnexpectedlyError,
  CheckExclusionConstraintViolationError,
  CheckIntegrityConstraintViolationError,
  ConnectionError,
  createPool,
  createSqlTag,
  type DatabasePool,
  type DatabaseTransactionConnection,
  type DriverFactory,
  ForeignKeyIntegrityConstraintViolationError,
  IntegrityConstraintViolationError,
  type Interceptor,
  InvalidInputError,
  NotNullIntegrityConstraintViolationError,
  type QueryResultRow,
  SchemaValidationError,
  SlonikError,
  StatementTimeoutError,
  UniqueIntegrityConstraintViolationError,
} from 'slonik';
import { z } from 'zod';
import type { Config } from '../config/index.ts';
import { AppError, DataRejectedError, TransientError } from '../domain/errors.ts';

/** The one SQL tag. `sql.typeAlias('void')` marks statements that return no rows. */
export const sql = createSqlTag({ typeAliases: { void: z.object({}).strict() } });

// The database handle that the rest of the system sees. It is slonik's pool with two additions: rows
// of `sql.type(schema)` queries are validated against their schema, and its errors come out as ours
// (`translate`), so no caller ever handles a slonik error type.

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
  if (
    error instanceof ConnectionError ||
    error instanceof BackendTerminatedError ||
    error instanceof BackendTerminatedUnexpectedlyError
  ) {
    return true;
  }
  if (error instanceof StatementTimeoutError) return true;
  const cause = (error as { cause?: { code?: string } })?.cause;
  const code = (error as { code?: string })?.code ?? cause?.code;
  if (typeof code !== 'string') return false;
  return (
    TRANSIENT_SQLSTATE.test(code) || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(code)
  );
}

/**
 * Slonik's and PostgreSQL's errors as ours, each keeping its cause: an outage is transient
 * (database_unavailable); data PostgreSQL refuses is a DataRejectedError (a 4xx at the API); any other
 * database error is a bug (internal). Errors that are already ours (thrown inside a transaction) pass.
 */
function translate(error: unknown): never {
  if (error instanceof AppError) throw error;
  if (isDatabaseOutage(error)) {
    throw new TransientError('database_unavailable', 'The database is unavailable', { cause: error });
  }
  const rejected = rejectedData(error);
  if (rejected) throw rejected;
  if (error instanceof SlonikError || error instanceof pg.DatabaseError) {
    throw new AppError('internal', error.message, { cause: error });
  }
  throw error;
}

const constraintKinds: Array<[new (...args: never[]) => IntegrityConstraintViolationError, string, string]> = [
  [UniqueIntegrityConstraintViolationError, 'unique', 'The data conflicts with a record that exists already'],
  [ForeignKeyIntegrityConstraintViolationError, 'foreign_key', 'The data refers to something that does not exist'],
  [NotNullIntegrityConstraintViolationError, 'not_null', 'A required value is missing'],
  [CheckIntegrityConstraintViolationError, 'check', 'The data breaks a rule of the store'],
  [CheckExclusionConstraintViolationError, 'exclusion', 'The data overlaps a record that exists already'],
];

function rejectedData(error: unknown): DataRejectedError | null {
  if (error instanceof IntegrityConstraintViolationError) {
    const [, kind, message] = constraintKinds.find(([type]) => error instanceof type) ?? [
      null,
      'other',
      'A rule of the store refused the data',
    ];
    return new DataRejectedError('constraint_violated', message, {
      cause: error,
      details: { kind },
      constraint: error.constraint,
    });
  }
  // Slonik turns PostgreSQL's 22P02 (invalid text representation) into an InvalidInputError without its
  // code; its sql tag raises the same for a jsonb value PostgreSQL would refuse (a NUL, a lone surrogate).
  if (error instanceof InvalidInputError) {
    return new DataRejectedError('invalid_value', `A value cannot be stored: ${error.message}`, { cause: error });
  }
  const code = (error as { code?: unknown })?.code;
  if (error instanceof pg.DatabaseError && typeof code === 'string') {
    // Class 22 (data exception: out of range, NUL, bad datetime) and 23 (integrity) not wrapped by slonik.
    if (code.startsWith('22')) {
      return new DataRejectedError('invalid_value', `A value cannot be stored: ${error.message}`, {
        cause: error,
        details: { sqlstate: code },
      });
    }
    if (code.startsWith('23')) {
      return new DataRejectedError('constraint_violated', 'A rule of the store refused the data', {
        cause: error,
        details: { kind: 'other' },
        constraint: error.constraint ?? null,
      });
    }
  }
  return null;
}

/** Where the pool reports connections that PostgreSQL ended: the process's logger. */
export type DatabaseLog = { warn(details: Record<string, unknown>, message: string): void };

const nodeWarnings: DatabaseLog = {
  warn: (details, message) => process.emitWarning(`${message} ${JSON.stringify(details)}`, 'DatabaseWarning'),
};

// pg throws at the process an 'error' event nobody listens for, and PostgreSQL ending a connection (a
// fast shutdown, pg_terminate_backend) emits one. Slonik's pg driver leaves nobody listening twice:
// - to the client its setup (in createPool) opens to look up type oids: ended between the look-up and
//   its close, it crashed workers starting during a restart. No slonik option reaches that client, so
//   pg clients that connect during the setup get a listener here;
// - to a pooled client whose end() outlasts gracefulTerminationTimeout: slonik stops listening, while
//   the driver still passes the client's errors on.
const typeLookup = new AsyncLocalStorage<(error: Error) => void>();
const connect = pg.Client.prototype.connect;
pg.Client.prototype.connect = function (this: pg.Client, ...args: unknown[]) {
  const onError = typeLookup.getStore();
  if (onError) this.on('error', onError);
  return Reflect.apply(connect, this, args);
} as typeof connect;

function pgDriverFactory(log: DatabaseLog): DriverFactory {
  const driverFactory = createPgDriverFactory();
  const onError = (error: Error) => {
    const cause = error.cause instanceof Error ? error.cause : error;
    log.warn({ err: cause.message, code: (cause as { code?: unknown }).code }, 'database connection lost');
  };
  return async (input) => {
    const driver = await typeLookup.run(onError, () => driverFactory(input));
    return {
      createClient: async () => {
        const client = await driver.createClient();
        client.on('error', onError);
        return client;
      },
    };
  };
}

export async function createDatabase(config: Config['db'], log: DatabaseLog = nodeWarnings): Promise<Db> {
  const pool = await createPool(config.url, {
    driverFactory: pgDriverFactory(log),
    maxPoolSize: config.poolSize,
    // A connection closed after its idle timeout (slonik's default, 5 s) is a new backend next time: a
    // fork, then its catalog caches loaded and the PL/pgSQL functions compiled again. A step's first
    // commit on a new backend took 15 ms against 1.4 ms on a warm one, so every order after a quiet
    // spell of five seconds paid that in each process. Two connections stay open whatever.
    minPoolSize: Math.min(2, config.poolSize),
    statementTimeout: config.statementTimeoutMs,
    connectionTimeout: 5_000,
    interceptors: [resultParser],
    // slonik's default runs DISCARD ALL on every released connection: a round trip and a commit per
    // query, half of all commits in the pipeline. Nothing here leaves session state behind (no SET, no
    // session advisory locks, no temporary tables), so there is nothing to reset.
    resetConnection: async () => {},
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
