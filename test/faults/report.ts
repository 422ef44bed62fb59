import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { QuerySqlToken } from 'slonik';
import { z } from 'zod';
import { type Db, sql } from '../../sql/database.ts';
import type { FaultLog } from './chaos.ts';
import { describeHotSku, type HotSkuOutcome } from './flash-sale.ts';
import type { Check } from './invariants.ts';
import type { LoadResult } from './load.ts';
import type { Quiescence } from './quiescence.ts';
import type { RefundCounts, ReturnCounts } from './return-invariants.ts';
import type { ReturnsLoadResult } from './returns.ts';

// What the run did and found, from the database after quiescence: printed as a table and written to
// test/faults/results/last-run.json.

export type PipelineStats = Awaited<ReturnType<typeof readPipelineStats>>;
export type RunResult = {
  seed: number;
  command: string;
  date: string;
  wallMs: number;
  parameters: Record<string, unknown>;
  load: Omit<LoadResult, 'accepted'> & { accepted: number };
  faults: FaultLog;
  hotSku: HotSkuOutcome;
  /** The returns load: what it picked and did, every answer it got. */
  returnsLoad: Omit<ReturnsLoadResult, 'created'> & { created: number };
  /** Returns and their refunds in the database (refunds also at the gateway), after quiescence. */
  returns: ReturnCounts;
  refunds: RefundCounts;
  doubleRefunds: number;
  refundsOverCaptures: number;
  pipeline: PipelineStats;
  quiescence: Quiescence;
  lost: number;
  doubleCaptures: number;
  conservationErrors: number;
  /** Oversell findings: during the run and at the end. */
  oversell: number;
  checks: Check[];
  unexpectedExits: string[];
  passed: boolean;
  /** What the database, the providers and Redis held for the orders named by failing checks. */
  evidence?: Record<string, unknown>;
};

const count = z.object({ key: z.string(), n: z.number() });
const toRecord = (rows: readonly { key: string; n: number }[]) => Object.fromEntries(rows.map((r) => [r.key, r.n]));

export async function readPipelineStats(db: Db) {
  const one = (query: QuerySqlToken<typeof count>) => db.any(query).then(toRecord);
  return {
    orders: await one(sql.type(count)`SELECT status AS key, count(*)::int AS n FROM orders GROUP BY status`),
    // A return's steps are named per RMA (return-refund:RMA-...): counted by kind.
    retriesByStep: await one(sql.type(count)`
      SELECT split_part(step, ':', 1) AS key, count(*)::int AS n FROM step_attempts WHERE outcome = 'failed'
      GROUP BY 1`),
    deadLetters: await one(sql.type(count)`SELECT status AS key, count(*)::int AS n FROM dead_letters GROUP BY status`),
    compensations: await one(sql.type(count)`
      SELECT outcome AS key, count(*)::int AS n FROM compensations WHERE detail IS DISTINCT FROM 'nothing to undo'
      GROUP BY outcome`),
    reenqueuedOrders: await db.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM orders WHERE enqueue_round > 0`),
    retriedOrders: await db.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM orders WHERE generation > 1`),
  };
}

const sum = (record: Record<string, number>) => Object.values(record).reduce((a, b) => a + b, 0);
const list = (record: Record<string, number>) =>
  Object.entries(record)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || 'none';

export function tableRows(r: RunResult): Array<[string, string]> {
  const { faults, pipeline } = r;
  const killsByStep: Record<string, number> = {};
  for (const k of faults.kills) killsByStep[k.step] = (killsByStep[k.step] ?? 0) + 1;
  const cut = faults.kills.filter((k) => k.cutInStep).length;
  const windows = faults.providerWindows;
  const refusals: Record<string, number> = {};
  for (const { code } of r.load.refused) refusals[code] = (refusals[code] ?? 0) + 1;
  const rl = r.returnsLoad;
  const down = faults.controllerKills.map((k) => `${(k.downMs / 1000).toFixed(1)} s`).join(', ');
  return [
    ['seed', String(r.seed)],
    ['orders submitted / accepted (201)', `${r.load.submitted} / ${r.load.accepted}`],
    [
      'orders completed / failed / cancelled',
      ['COMPLETED', 'FAILED', 'CANCELLED'].map((s) => pipeline.orders[s] ?? 0).join(' / '),
    ],
    ['orders refused at the door (by code)', list(refusals)],
    ['API answers (retries included)', list(r.load.answers)],
    ...describeHotSku(r.hotSku),
    [
      'worker kills (kill -9)',
      `${faults.kills.length} (${cut} cut an attempt of their step off): ${list(killsByStep)}`,
    ],
    ['flash-sale controller kills (kill -9)', `${faults.controllerKills.length}, restarted after ${down || 'nothing'}`],
    ['Redis restarts', String(faults.redisRestarts)],
    [
      'PostgreSQL restarts / terminations',
      `${faults.pgRestarts} / ${faults.pgTerminations} (${faults.backendsTerminated} backends)`,
    ],
    ['provider fault windows', `latency ${windows.latency}, 503s ${windows.failure}, resets ${windows.reset}`],
    ['restocks (units, during the faults)', list(faults.restocked)],
    [
      'returns load (orders picked)',
      `${rl.picked}: delivered ${rl.delivered}, not COMPLETED ${rl.notCompleted}, no returnable item ` +
        `${rl.noReturnableItem}; created twice at once ${rl.concurrentCreates}; unexpected answers ${rl.unexpected.length}`,
    ],
    [
      'returns created / closed / cancelled / expired',
      `${r.returns.created} / ${r.returns.closed} / ${r.returns.cancelled} / ${r.returns.expired}` +
        (r.returns.open > 0 ? ` (${r.returns.open} open)` : ''),
    ],
    ['returns received (by disposition)', list(rl.received)],
    ['return API answers (retries included)', list(rl.answers)],
    [
      'refunds of returns (count, amount)',
      `${r.refunds.count}, ${r.refunds.amountCents} cents (gateway: ${r.refunds.gatewayCount}, ` +
        `${r.refunds.gatewayAmountCents} cents)`,
    ],
    ['poison jobs', '1'],
    ['step retries (failed attempts)', `${sum(pipeline.retriesByStep)}: ${list(pipeline.retriesByStep)}`],
    ['orders re-enqueued by the reconciler', String(pipeline.reenqueuedOrders)],
    ['orders retried (new generation)', String(pipeline.retriedOrders)],
    ['dead letters', `${sum(pipeline.deadLetters)}: ${list(pipeline.deadLetters)}`],
    ['compensations (something undone)', list(pipeline.compensations)],
    ['lost orders', String(r.lost)],
    ['double captures', String(r.doubleCaptures)],
    ['conservation errors', String(r.conservationErrors)],
    ['double refunds', String(r.doubleRefunds)],
    ['refunds exceeding captures', String(r.refundsOverCaptures)],
    ['oversell', String(r.oversell)],
    ['time to quiescence', r.quiescence.reached ? `${(r.quiescence.ms / 1000).toFixed(1)} s` : 'NOT REACHED'],
    ['wall time', `${(r.wallMs / 1000).toFixed(1)} s`],
  ];
}

export function printReport(r: RunResult, print: (line: string) => void): void {
  const rows = tableRows(r);
  const width = Math.max(...rows.map(([label]) => label.length));
  print('');
  print(`${'fault suite'.padEnd(width)} | result`);
  print(`${'-'.repeat(width)}-|-${'-'.repeat(60)}`);
  for (const [label, value] of rows) print(`${label.padEnd(width)} | ${value}`);
  print('');
  for (const c of r.checks) {
    print(`${c.failures === 0 ? 'ok  ' : 'FAIL'} ${c.name}${c.failures ? ` (${c.failures})` : ''}`);
    for (const example of c.examples) print(`       ${example}`);
  }
  for (const exit of r.unexpectedExits) print(`FAIL process died on its own: ${exit}`);
  for (const error of r.faults.errors) print(`note fault injection error: ${error}`);
  for (const e of [...r.load.serverErrors, ...r.returnsLoad.serverErrors].slice(0, 5))
    print(`FAIL API answered ${e.status}: ${e.body}`);
  print('');
  print(r.passed ? 'PASSED' : `FAILED — replay with: npm run test:faults -- --seed ${r.seed}`);
}

export async function writeResult(r: RunResult): Promise<string> {
  const dir = join(import.meta.dirname, 'results');
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'last-run.json');
  // Evidence rows can hold int8 columns, which come back as BigInt.
  const json = JSON.stringify(
    { ...r, table: Object.fromEntries(tableRows(r)) },
    (_, value) => (typeof value === 'bigint' ? Number(value) : value),
    2,
  );
  await writeFile(path, `${json}\n`);
  return path;
}
