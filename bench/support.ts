import pg from 'pg';
import type { Deps } from '../runtime/deps.ts';
import { serversForRun } from '../scripts/local-servers.ts';

// Small helpers of the benches: statistics, the printed tables, and the setup and cleanup steps that
// reach past the system under test (the admin database, the Redis namespace).

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wall-clock time in epoch milliseconds with sub-millisecond precision, comparable with PostgreSQL's. */
export const epochNow = () => performance.timeOrigin + performance.now();

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

export function roundTo(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function summarize(values: readonly number[], digits: number) {
  return {
    count: values.length,
    p50: roundTo(percentile(values, 50), digits),
    p99: roundTo(percentile(values, 99), digits),
    max: roundTo(values.length === 0 ? Number.NaN : Math.max(...values), digits),
  };
}

export function printTable(headers: string[], rows: Array<Array<string | number>>): void {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n${line(cells[0]!)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const r of cells.slice(1)) console.log(line(r));
}

/**
 * The bench's PostgreSQL (an admin URL: it creates and drops a database) and Redis, by the tests' rule:
 * BENCH_DATABASE_URL / BENCH_REDIS_URL (a URL, or `embedded`), else the local default servers when they
 * answer, else servers started for the run. Their stop is pushed first, so it runs last.
 */
export async function benchServers(cleanups: Array<() => Promise<unknown>>) {
  const servers = await serversForRun({
    databaseUrl: process.env.BENCH_DATABASE_URL,
    redisUrl: process.env.BENCH_REDIS_URL,
    variables: { database: 'BENCH_DATABASE_URL', redis: 'BENCH_REDIS_URL' },
    log: (message) => console.log(message),
  });
  cleanups.push(() => servers.stop());
  return { adminUrl: servers.adminDatabaseUrl, redisUrl: servers.redisUrl };
}

export async function adminQuery(adminUrl: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

export async function deleteKeys(redis: Deps['redis'], pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/**
 * Runs a benchmark's main: Ctrl-C or SIGTERM aborts it through the same path as an error, so its
 * cleanup still happens; a failure is printed (with its cause) and the exit code set.
 */
export async function runBenchmark(main: (interrupted: AbortSignal) => Promise<void>): Promise<void> {
  const interrupted = new AbortController();
  const interrupt = (signal: NodeJS.Signals) => interrupted.abort(new Error(`interrupted by ${signal}`));
  process.once('SIGINT', interrupt).once('SIGTERM', interrupt);
  try {
    await main(interrupted.signal);
  } catch (error) {
    console.error(`\nBENCHMARK FAILED: ${error instanceof Error ? error.message : error}`);
    if (error instanceof Error && error.cause) console.error('cause:', error.cause);
    process.exitCode = 1;
  }
}

/**
 * Resolves once `done()` holds, checked every `everyMs`; fails when `failure()` names a reason, on
 * `signal`, or when `progressed()` has not changed for `stallMs`.
 */
export async function waitUntil(
  done: () => boolean,
  options: {
    what: string;
    signal: AbortSignal;
    stallMs: number;
    everyMs?: number;
    progressed?: () => number;
    failure?: () => string | undefined;
  },
): Promise<void> {
  let [mark, since] = [options.progressed?.(), performance.now()];
  while (!done()) {
    options.signal.throwIfAborted();
    const failure = options.failure?.();
    if (failure) throw new Error(`${options.what}: ${failure}`);
    const now = performance.now();
    const current = options.progressed?.();
    if (current !== mark) [mark, since] = [current, now];
    if (now - since > options.stallMs) throw new Error(`${options.what}: no progress for ${options.stallMs} ms`);
    await sleep(options.everyMs ?? 10);
  }
}

/** Runs `task(i)` for i in [from, to) with at most `inFlight` running at once; stops at the first error. */
export async function boundedEach(
  from: number,
  to: number,
  inFlight: number,
  task: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = from;
  let failed = false;
  const lane = async () => {
    while (next < to && !failed) {
      const i = next++;
      try {
        await task(i);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(inFlight, to - from)) }, lane));
}

/** A markdown table, columns padded so that it also reads as plain text. */
export function markdownTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(3, ...cells.map((r) => [...r[i]!].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join(' | ')} |`;
  const rule = `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`;
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}
