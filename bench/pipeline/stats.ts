import type { Redis } from 'ioredis';
import pg from 'pg';
import { APP_DATABASE, MONITOR_USER } from './servers.ts';

// What PostgreSQL and Redis did for the application, from their own statistics. The bench's queries run
// as MONITOR_USER (left out of pg_stat_statements by user) and its statistics reads run in another
// database (left out of the application database's commits); the few it sends to the application
// database, and the Redis commands it sends, it counts and subtracts.

export type DatabaseCounters = { xactCommit: number; xactRollback: number; deadlocks: number };
export type TopStatement = { calls: number; rows: number; totalMs: number; topLevel: boolean; query: string };
export type Statements = { calls: number; topLevelCalls: number; top: TopStatement[] };

/**
 * pg_stat_database is fed by each backend at most once a second, and an idle one waits up to 10 s
 * (PGSTAT_IDLE_INTERVAL) before sending what it holds: read it only after that long a quiet spell.
 */
export const STATS_FLUSH_WAIT_MS = 11_500;

export class StatisticsReader {
  readonly #client: pg.Client;
  #ids: { dbid: number; monitor: number } | undefined;

  constructor(monitorStatsUrl: string) {
    this.#client = new pg.Client({ connectionString: monitorStatsUrl });
  }

  async connect(): Promise<void> {
    await this.#client.connect();
    const { rows } = await this.#client.query<{ dbid: number; monitor: number }>(
      `SELECT (SELECT oid FROM pg_database WHERE datname = $1)::int AS dbid,
        (SELECT oid FROM pg_roles WHERE rolname = $2)::int AS monitor`,
      [APP_DATABASE, MONITOR_USER],
    );
    this.#ids = rows[0];
  }

  async databaseCounters(): Promise<DatabaseCounters> {
    const { rows } = await this.#client.query<Record<keyof DatabaseCounters, string>>(
      `SELECT xact_commit AS "xactCommit", xact_rollback AS "xactRollback", deadlocks
      FROM pg_stat_database WHERE datname = $1`,
      [APP_DATABASE],
    );
    const row = rows[0]!;
    return {
      xactCommit: Number(row.xactCommit),
      xactRollback: Number(row.xactRollback),
      deadlocks: Number(row.deadlocks),
    };
  }

  async resetStatements(): Promise<void> {
    await this.#client.query('SELECT pg_stat_statements_reset()');
  }

  /** The application's statements since the reset: every call (nested ones too, track = all), the top ones. */
  async statements(limit: number): Promise<Statements> {
    const ids = [this.#ids!.dbid, this.#ids!.monitor];
    const totals = await this.#client.query<{ calls: string; top_level: string }>(
      `SELECT coalesce(sum(calls), 0) AS calls, coalesce(sum(calls) FILTER (WHERE toplevel), 0) AS top_level
      FROM pg_stat_statements WHERE dbid = $1 AND userid <> $2`,
      ids,
    );
    const top = await this.#client.query<{
      calls: string;
      rows: string;
      total_ms: number;
      toplevel: boolean;
      query: string;
    }>(
      `SELECT calls, rows, total_exec_time AS total_ms, toplevel, query
      FROM pg_stat_statements WHERE dbid = $1 AND userid <> $2 ORDER BY calls DESC, total_exec_time DESC LIMIT $3`,
      [...ids, limit],
    );
    return {
      calls: Number(totals.rows[0]!.calls),
      topLevelCalls: Number(totals.rows[0]!.top_level),
      top: top.rows.map((r) => ({
        calls: Number(r.calls),
        rows: Number(r.rows),
        totalMs: Math.round(r.total_ms * 10) / 10,
        topLevel: r.toplevel,
        query: r.query.replace(/\s+/g, ' ').trim(),
      })),
    };
  }

  close(): Promise<void> {
    return this.#client.end();
  }
}

/** A connection to the application's database that counts the transactions it runs (each query is one). */
export class CountingClient {
  readonly #client: pg.Client;
  queries = 0;

  constructor(monitorAppUrl: string) {
    this.#client = new pg.Client({ connectionString: monitorAppUrl });
  }

  async connect(): Promise<void> {
    await this.#client.connect();
  }

  async query<Row extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<Row[]> {
    this.queries += 1;
    return (await this.#client.query<Row>(config)).rows;
  }

  close(): Promise<void> {
    return this.#client.end();
  }
}

/** Calls per command since the server started (or since CONFIG RESETSTAT), from INFO commandstats. */
export async function redisCommandCalls(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]));
  return calls;
}

export function callsBetween(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [command, calls] of after) {
    const diff = calls - (before.get(command) ?? 0);
    if (diff > 0) delta.set(command, diff);
  }
  return delta;
}
