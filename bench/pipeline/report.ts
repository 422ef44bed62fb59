import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { markdownTable, percentile, roundTo } from '../support.ts';
import type { CeilingResult, Timeline } from './ceiling.ts';
import { CLOCK_TICKS_PER_SECOND } from './proc-stat.ts';
import type { ThroughputResult } from './product.ts';
import { renderSvg } from './svg.ts';

// The results: a table against the targets of the issue, the statements that cost the most calls, and
// bench/results/pipeline.json with an SVG beside it.

type Target = { metric: string; value: number; unit: string; target?: { min?: number; max?: number } };

export type RunFacts = {
  parameters: Record<string, unknown>;
  loadavgAtStart: number[];
  postgresVersion: string;
  startedAt: Date;
};

const resultsDir = join(import.meta.dirname, '..', 'results');

export function commit(): string {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], {
      cwd: import.meta.dirname,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

/**
 * JSON laid out as the repository's formatter (biome) lays it out, so that the results file passes
 * `biome check` as written: objects one key a line, arrays on one line when they fit in 120 columns.
 */
export function formatJson(value: unknown, indent = '', used = 0): string {
  if (Array.isArray(value)) {
    const items = value.map((item) => formatJson(item, `${indent}  `, indent.length + 2));
    const inline = `[${items.join(', ')}]`;
    if (!inline.includes('\n') && used + inline.length + 1 <= 120) return inline;
    return `[\n${items.map((item) => `${indent}  ${item}`).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const lines = entries.map(([key, v]) => {
      const head = `${indent}  ${JSON.stringify(key)}: `;
      return head + formatJson(v, `${indent}  `, head.length);
    });
    return `{\n${lines.join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

/** At most `points` points, evenly spread over the run, the last one kept. */
function thin(timeline: Timeline, points: number): Timeline {
  if (timeline.length <= points) return timeline.map(([t, n]) => [roundTo(t, 3), n]);
  const every = timeline.length / points;
  const kept = Array.from({ length: points }, (_, i) => timeline[Math.floor(i * every)]!);
  return [...kept, timeline.at(-1)!].map(([t, n]) => [roundTo(t, 3), n]);
}

const bareResult = (bare: CeilingResult) => ({
  flows: bare.flows,
  jobsPerFlow: bare.jobsPerFlow,
  wallMs: Math.round(bare.wallMs),
  cpuMsPerFlow: Object.fromEntries(Object.entries(bare.cpuMsPerFlow).map(([k, v]) => [k, roundTo(v, 3)])),
});

export function buildResults(
  facts: RunFacts,
  { ceiling, floor }: { ceiling: CeilingResult; floor: CeilingResult },
  product: ThroughputResult,
  { afterPause, latencies: idle }: { afterPause: number; latencies: number[] },
) {
  const n = product.orders;
  const perOrder = (value: number) => roundTo(value / n, 2);
  const cpu = Object.fromEntries(Object.entries(product.cpuMs).map(([name, ms]) => [name, perOrder(ms)]));
  const total = Object.values(product.cpuMs).reduce((sum, ms) => sum + ms, 0);
  const cpuMsPerOrder = {
    ...cpu,
    total: perOrder(total),
    totalExcludingSandbox: perOrder(total - (product.cpuMs.sandbox ?? 0)),
  };
  const redisCommands = [...product.redisCalls.values()].reduce((sum, calls) => sum + calls, 0);
  const ratio = product.ordersPerSecond / ceiling.flowsPerSecond;
  // What the product spends in the processes the floor has (workers and Redis) beyond the floor's own.
  const floorCpu = Object.values(floor.cpuMsPerFlow).reduce((sum, ms) => sum + ms, 0);
  const productShare = Object.entries(product.cpuMs)
    .filter(([name]) => name.startsWith('worker-') || name.startsWith('redis'))
    .reduce((sum, [, ms]) => sum + ms, 0);
  return {
    date: facts.startedAt.toISOString(),
    commit: commit(),
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model,
      node: process.version,
      loadavgAtStart: facts.loadavgAtStart.map((l) => roundTo(l, 2)),
      clockTicksPerSecond: CLOCK_TICKS_PER_SECOND,
      postgres: facts.postgresVersion,
    },
    parameters: facts.parameters,
    ordersPerSecond: roundTo(product.ordersPerSecond, 1),
    ceilingFlowsPerSecond: roundTo(ceiling.flowsPerSecond, 1),
    ratio: roundTo(ratio, 3),
    floorFlowsPerSecond: roundTo(floor.flowsPerSecond, 1),
    floorCpuMsPerFlow: roundTo(floorCpu, 2),
    workersAndRedisCpuMsPerOrderOverFloor: roundTo(productShare / n - floorCpu, 2),
    cpuMsPerOrder,
    benchClientCpuMsPerOrder: perOrder(product.benchClientCpuMs),
    // The issue's "statements per order" are the client's (top level); the functions' own statements
    // and PostgreSQL's foreign-key checks run inside them, in the same round trip.
    statementsPerOrder: perOrder(product.statements.topLevelCalls),
    nestedStatementsPerOrder: perOrder(product.statements.calls),
    commitsPerOrder: perOrder(product.commits),
    rollbacksPerOrder: perOrder(product.rollbacks),
    redisCommandsPerOrder: perOrder(redisCommands),
    deadlocks: product.deadlocks,
    idleLatencyMs: {
      count: idle.length,
      p50: roundTo(percentile(idle, 50), 1),
      p99: roundTo(percentile(idle, 99), 1),
      max: roundTo(Math.max(...idle), 1),
      /** The order placed first, after the settling pause: not in the percentiles (bench/pipeline/product.ts). */
      afterPause: roundTo(afterPause, 1),
    },
    product: { orders: n, wallMs: Math.round(product.wallMs), benchMonitorQueriesSubtracted: product.monitorQueries },
    ceiling: bareResult(ceiling),
    floor: bareResult(floor),
    topStatements: product.statements.top.map((s) => ({ ...s, callsPerOrder: perOrder(s.calls) })),
    redisCommandsPerOrderByCommand: Object.fromEntries(
      [...product.redisCalls].sort((a, b) => b[1] - a[1]).map(([command, calls]) => [command, perOrder(calls)]),
    ),
    timelines: { product: thin(product.timeline, 200), ceiling: thin(ceiling.timeline, 200) },
  };
}
export type Results = ReturnType<typeof buildResults>;

export function targets(r: Results): Target[] {
  const rows: Target[] = [
    { metric: 'ordersPerSecond (product)', value: r.ordersPerSecond, unit: '/s' },
    { metric: 'ceilingFlowsPerSecond (bare BullMQ)', value: r.ceilingFlowsPerSecond, unit: '/s' },
    { metric: 'ratio', value: r.ratio, unit: '', target: { min: 0.3 } },
    { metric: "floorFlowsPerSecond (bare BullMQ, the product's 7 jobs)", value: r.floorFlowsPerSecond, unit: '/s' },
    { metric: 'floor CPU ms/flow (workers and Redis)', value: r.floorCpuMsPerFlow, unit: 'ms' },
  ];
  for (const [name, ms] of Object.entries(r.cpuMsPerOrder)) {
    if (name === 'total' || name === 'totalExcludingSandbox') continue;
    rows.push({ metric: `CPU ms/order: ${name}`, value: ms, unit: 'ms' });
  }
  rows.push(
    { metric: 'CPU ms/order: total', value: r.cpuMsPerOrder.total, unit: 'ms', target: { max: 6 } },
    { metric: 'CPU ms/order: total without sandbox', value: r.cpuMsPerOrder.totalExcludingSandbox, unit: 'ms' },
    {
      metric: 'CPU ms/order: workers and Redis over the floor',
      value: r.workersAndRedisCpuMsPerOrderOverFloor,
      unit: 'ms',
    },
    { metric: 'CPU ms/order: bench client (not in total)', value: r.benchClientCpuMsPerOrder, unit: 'ms' },
    { metric: 'statements/order (sent by clients)', value: r.statementsPerOrder, unit: '', target: { max: 15 } },
    { metric: 'statements/order (nested in functions too)', value: r.nestedStatementsPerOrder, unit: '' },
    { metric: 'commits/order', value: r.commitsPerOrder, unit: '', target: { max: 8 } },
    { metric: 'rollbacks/order', value: r.rollbacksPerOrder, unit: '' },
    { metric: 'redis commands/order', value: r.redisCommandsPerOrder, unit: '' },
    { metric: 'deadlocks', value: r.deadlocks, unit: '', target: { max: 0 } },
    { metric: 'idle latency p50', value: r.idleLatencyMs.p50, unit: 'ms', target: { max: 40 } },
    { metric: 'idle latency p99', value: r.idleLatencyMs.p99, unit: 'ms', target: { max: 100 } },
    { metric: 'idle latency, first order after the pause', value: r.idleLatencyMs.afterPause, unit: 'ms' },
  );
  return rows;
}

const met = (t: Target) =>
  t.target === undefined ||
  ((t.target.min === undefined || t.value >= t.target.min) && (t.target.max === undefined || t.value <= t.target.max));
const describeTarget = (t: Target) =>
  t.target === undefined
    ? ''
    : t.target.min !== undefined
      ? `≥ ${t.target.min}`
      : t.target.max === 0
        ? '0'
        : `≤ ${t.target.max}`;

export function printReport(r: Results): void {
  const rows = targets(r).map((t) => [
    t.metric,
    `${t.value}${t.unit ? ` ${t.unit}` : ''}`,
    describeTarget(t),
    t.target ? (met(t) ? '✓' : '✗') : '',
  ]);
  console.log(`\n${markdownTable(['metric', 'value', 'target', ''], rows)}`);
  console.log(`\ntop ${r.topStatements.length} statements by calls (pg_stat_statements, the product phase)\n`);
  const statements = r.topStatements.map((s) => [
    s.callsPerOrder,
    s.calls,
    s.topLevel ? 'yes' : 'no',
    s.totalMs,
    s.query.length > 110 ? `${s.query.slice(0, 107)}...` : s.query,
  ]);
  console.log(markdownTable(['calls/order', 'calls', 'top', 'total ms', 'query'], statements));
  const redis = Object.entries(r.redisCommandsPerOrderByCommand).slice(0, 10);
  console.log(`\nredis commands/order, top 10: ${redis.map(([c, n]) => `${c} ${n}`).join(', ')}`);
}

/** `name`: the files' name in bench/results (`pipeline`, or `pipeline-shards-N` on a cluster). */
export async function writeResults(r: Results, name = 'pipeline'): Promise<void> {
  await mkdir(resultsDir, { recursive: true });
  const json = join(resultsDir, `${name}.json`);
  const svg = join(resultsDir, `${name}.svg`);
  const withTargets = { ...r, targets: targets(r).flatMap((t) => (t.target ? [{ ...t, met: met(t) }] : [])) };
  await writeFile(json, `${formatJson(withTargets)}\n`);
  const cpu = Object.entries(r.cpuMsPerOrder).filter(([name]) => name !== 'totalExcludingSandbox');
  await writeFile(
    svg,
    renderSvg({
      title: `orderflow pipeline, ${r.date.slice(0, 16)}, ${r.commit}, ${r.machine.cpus} CPUs: ${r.ordersPerSecond} orders/s, ceiling ${r.ceilingFlowsPerSecond} flows/s, ratio ${r.ratio}`,
      cpuMsPerOrder: cpu,
      cpuTargetMs: 6,
      product: { label: `product: ${r.product.orders} orders, ${r.ordersPerSecond}/s`, timeline: r.timelines.product },
      ceiling: {
        label: `ceiling: ${r.ceiling.flows} flows, ${r.ceilingFlowsPerSecond}/s`,
        timeline: r.timelines.ceiling,
      },
    }),
  );
  console.log(`\nresults written to ${json} and ${svg}`);
}
