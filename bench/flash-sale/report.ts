import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { commit, formatJson } from '../pipeline/report.ts';
import { markdownTable, percentile, roundTo } from '../support.ts';
import type { LedgerFacts, StatusCount, StockLevel, StockSample } from './ledger.ts';
import { answerKinds, type DoorAnswer, type RaceRecord } from './load.ts';
import type { Readiness } from './setup.ts';
import { renderFlashSaleSvg } from './svg.ts';

// The results: the targets beside what the run measured, the door's answers by kind, and
// bench/results/flash-sale.json with bench/results/flash-sale.svg beside it.

export const BUCKET_MS = 250;
const resultsDir = join(import.meta.dirname, '..', 'results');

export type RunFacts = {
  parameters: Record<string, unknown> & { units: number; buyers: number };
  loadavgAtStart: number[];
  postgresVersion: string;
  startedAt: Date;
  readiness: Readiness;
  counterAtStart: unknown;
  counterAtEnd: unknown;
  stockBefore: StockLevel;
};
export type Completion = { counts: StatusCount[]; open: number; waitedMs: number };

const latency = (answers: readonly DoorAnswer[]) => {
  const ms = answers.map((a) => a.answeredAt - a.sentAt);
  return {
    count: ms.length,
    p50: ms.length ? roundTo(percentile(ms, 50), 2) : null,
    p99: ms.length ? roundTo(percentile(ms, 99), 2) : null,
    max: ms.length
      ? roundTo(
          ms.reduce((a, b) => Math.max(a, b)),
          2,
        )
      : null,
  };
};

const countBy = <T>(items: readonly T[], key: (item: T) => string) => {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]));
};

/**
 * Door answers per second in BUCKET_MS buckets from the race's start: a row per bucket, [its middle in
 * seconds, then one rate per kind in `columns` order] (rows of numbers, so the JSON stays as biome lays it out).
 */
function answerRates(race: RaceRecord) {
  const buckets = Math.max(1, Math.ceil((race.finishedAt - race.startedAt) / BUCKET_MS));
  const rows = Array.from({ length: buckets }, (_, i) => [
    roundTo(((i + 0.5) * BUCKET_MS) / 1000, 3),
    ...answerKinds.map(() => 0),
  ]);
  for (const a of race.answers) {
    const i = Math.min(buckets - 1, Math.floor((a.answeredAt - race.startedAt) / BUCKET_MS));
    rows[i]![1 + answerKinds.indexOf(a.kind)]! += 1000 / BUCKET_MS;
  }
  return { bucketMs: BUCKET_MS, columns: ['seconds', ...answerKinds], rows };
}

/**
 * sold_out answers by the second (from the race's start) their request was sent: rows of [second, count,
 * p50 ms, p99 ms]. It shows where the p99 comes from: the seconds while the admitted orders are placed
 * and carried through the pipeline on the same machine, or the door on its own afterwards.
 */
function soldOutBySecondSent(race: RaceRecord, soldOut: readonly DoorAnswer[]) {
  const bySecond = new Map<number, number[]>();
  for (const a of soldOut) {
    const second = Math.floor((a.sentAt - race.startedAt) / 1000);
    const ms = bySecond.get(second) ?? bySecond.set(second, []).get(second)!;
    ms.push(a.answeredAt - a.sentAt);
  }
  const rows = [...bySecond]
    .sort(([a], [b]) => a - b)
    .map(([second, ms]) => [second, ms.length, roundTo(percentile(ms, 50), 2), roundTo(percentile(ms, 99), 2)]);
  return { columns: ['second', 'count', 'p50', 'p99'], rows };
}

/** At most `points` samples, evenly spread, the last one kept; times in seconds from `t0`. */
function unitsLeft(samples: readonly StockSample[], t0: number, points = 400): Array<[number, number]> {
  const every = Math.max(1, samples.length / points);
  const kept = samples.filter((_, i) => Math.floor(i % every) === 0 || i === samples.length - 1);
  return kept.map(([at, n]) => [roundTo((at - t0) / 1000, 3), n]);
}

export function buildResults(
  facts: RunFacts,
  race: RaceRecord,
  completion: Completion,
  ledger: LedgerFacts,
  stock: readonly StockSample[],
) {
  const units = facts.parameters.units;
  const t0 = race.startedAt;
  const sinceStart = (at: number | null) => (at === null ? null : roundTo((at - t0) / 1000, 3));
  const accepted = race.outcomes.filter((a) => a.kind === 'accepted');
  const refused = race.outcomes.filter((a) => a.kind !== 'accepted');
  const soldOut = race.answers.filter((a) => a.kind === 'sold_out');
  const statuses = completion.counts;
  const count = (keep: (c: StatusCount) => boolean) => statuses.filter(keep).reduce((n, c) => n + c.orders, 0);
  const failedOutOfStock = count((c) => c.status === 'FAILED' && c.failureReason === 'out_of_stock');

  const lastSubmissionAt = race.answers.reduce((last, a) => Math.max(last, a.sentAt), race.startedAt);
  const { soldOutAt } = ledger;
  const firstSoldOutAfter =
    soldOutAt === null
      ? undefined
      : soldOut.filter((a) => a.answeredAt >= soldOutAt).sort((a, b) => a.answeredAt - b.answeredAt)[0];
  const acceptedAfterSoldOut = soldOutAt === null ? 0 : accepted.filter((a) => a.sentAt > soldOutAt).length;
  // The door may say sold out before PostgreSQL's last reservation: the units left are all held by orders
  // admitted and still on their way through the pipeline.
  const soldOutBeforeLastUnit =
    soldOutAt === null ? soldOut.length : soldOut.filter((a) => a.answeredAt < soldOutAt).length;
  const firstSoldOut = soldOut.reduce<number | null>(
    (first, a) => (first === null || a.answeredAt < first ? a.answeredAt : first),
    null,
  );

  // Oversold, three ways: units out of the inventory row, net reservations of the race, units owed to
  // orders that did not fail; and no available count below zero, in the row or in any movement.
  const sold = ledger.stock.reserved + ledger.stock.shipped - (facts.stockBefore.reserved + facts.stockBefore.shipped);
  const oversoldChecks = {
    reservedPlusShippedMinusUnits: sold - units,
    netReservationsMinusUnits: ledger.reservedUnits - ledger.releasedUnits - units,
    unitsOfGoodOrdersMinusUnits: ledger.owedUnits - units,
    availableNow: ledger.stock.available,
    lowestAvailableAfterAMovement: Number.isFinite(ledger.lowestAvailable) ? ledger.lowestAvailable : null,
  };
  const oversold = Math.max(
    0,
    oversoldChecks.reservedPlusShippedMinusUnits,
    oversoldChecks.netReservationsMinusUnits,
    oversoldChecks.unitsOfGoodOrdersMinusUnits,
    -Math.min(ledger.stock.available, oversoldChecks.lowestAvailableAfterAMovement ?? 0),
  );
  const lastTerminalAfterLastSubmissionS =
    completion.open > 0 || ledger.lastTerminalAt === null
      ? null
      : roundTo((ledger.lastTerminalAt - lastSubmissionAt) / 1000, 3);

  return {
    date: facts.startedAt.toISOString(),
    commit: commit(),
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model,
      node: process.version,
      loadavgAtStart: facts.loadavgAtStart.map((l) => roundTo(l, 2)),
      // Read when the results are built: a machine busy with something else shows here.
      loadavgAtEnd: loadavg().map((l) => roundTo(l, 2)),
      postgres: facts.postgresVersion,
    },
    parameters: facts.parameters,
    admissionGate: {
      counterKey: facts.readiness.admissionKey,
      counterSeeded: facts.readiness.admissionAfterMs !== null,
      hotAfterDeclarationMs: Math.round(facts.readiness.hotAfterMs),
      counterAfterDeclarationMs:
        facts.readiness.admissionAfterMs === null ? null : Math.round(facts.readiness.admissionAfterMs),
      hotEntry: facts.readiness.hotEntry,
      counterAtStart: facts.counterAtStart,
      counterAtEnd: facts.counterAtEnd,
    },
    race: {
      wallS: roundTo((race.finishedAt - t0) / 1000, 3),
      requests: race.answers.length,
      requestsPerSecond: roundTo(race.answers.length / ((race.finishedAt - t0) / 1000), 1),
      lastSubmissionS: sinceStart(lastSubmissionAt),
      soldOutS: sinceStart(soldOutAt),
      firstSoldOutAnswerS: sinceStart(firstSoldOut),
      firstSoldOutAnswerAfterLastUnitS: sinceStart(firstSoldOutAfter?.answeredAt ?? null),
      benchClientCpuS: roundTo(race.clientCpuMs / 1000, 2),
    },
    answersByKind: countBy(race.answers, (a) => a.kind),
    answersByCode: countBy(race.answers, (a) => `${a.status} ${a.code}`),
    buyersByFinalAnswer: countBy(race.outcomes, (a) => `${a.status} ${a.code}`),
    accepted: accepted.length,
    refusedAtTheDoor: countBy(refused, (a) => a.code),
    completed: count((c) => c.status === 'COMPLETED'),
    acceptedByStatus: Object.fromEntries(
      statuses.map((c) => [c.failureReason ? `${c.status} ${c.failureReason}` : c.status, c.orders]),
    ),
    acceptedStillOpen: completion.open,
    acceptedFailedOutOfStock: failedOutOfStock,
    acceptedAfterSoldOut,
    soldOutAnsweredBeforeLastUnitSold: soldOutBeforeLastUnit,
    oversold,
    oversoldChecks,
    owedUnits: ledger.owedUnits,
    stockAfter: ledger.stock,
    deadLetters: ledger.deadLetters,
    doorLatencyMs: {
      soldOut: latency(soldOut),
      // Sent once PostgreSQL had reserved the last unit: every admitted order has been placed and
      // reserved, though their later steps (capture, ship, notify) may still share the cores with the door.
      soldOutSentAfterLastUnitSold: latency(soldOutAt === null ? [] : soldOut.filter((a) => a.sentAt >= soldOutAt)),
      soldOutBySecondSent: soldOutBySecondSent(race, soldOut),
      accepted: latency(race.answers.filter((a) => a.kind === 'accepted')),
      busy: latency(race.answers.filter((a) => a.kind === 'busy')),
      other: latency(race.answers.filter((a) => a.kind === 'other')),
      all: latency(race.answers),
    },
    soldOutToDoorMs:
      soldOutAt === null || firstSoldOutAfter === undefined
        ? null
        : roundTo(firstSoldOutAfter.answeredAt - soldOutAt, 1),
    lastTerminalAfterLastSubmissionS,
    waitedForTerminalS: roundTo(completion.waitedMs / 1000, 1),
    timelines: { answersPerSecond: answerRates(race), unitsLeft: unitsLeft(stock, t0) },
  };
}
export type Results = ReturnType<typeof buildResults>;

type Target = { metric: string; value: number | null; shown: string; max: number; target: string };

export function targets(r: Results): Target[] {
  const units = r.parameters.units;
  const allowed = Math.floor(units * 0.05);
  const failedShare = roundTo((r.acceptedFailedOutOfStock / units) * 100, 1);
  const p99 = r.doorLatencyMs.soldOut.p99;
  const last = r.lastTerminalAfterLastSubmissionS;
  return [
    { metric: 'oversold units', value: r.oversold, shown: String(r.oversold), max: 0, target: '0' },
    {
      metric: 'accepted orders that failed out of stock',
      value: r.acceptedFailedOutOfStock,
      shown: `${r.acceptedFailedOutOfStock} (${failedShare}% of ${units} units)`,
      max: allowed,
      target: `≤ ${allowed} (5% of units)`,
    },
    {
      metric: 'sold_out answer p99',
      value: p99,
      shown: p99 === null ? 'no sold_out answer' : `${p99} ms`,
      max: 20,
      target: '≤ 20 ms',
    },
    {
      metric: 'last accepted order terminal, after the last submission',
      value: last,
      shown:
        last !== null
          ? `${last} s`
          : r.acceptedStillOpen > 0
            ? `${r.acceptedStillOpen} accepted orders not terminal`
            : 'no accepted order',
      max: 10,
      target: '≤ 10 s',
    },
  ];
}

const met = (t: Target) => t.value !== null && t.value <= t.max;
const orNa = (value: number | null, unit: string) => (value === null ? 'n/a' : `${value} ${unit}`.trim());

export function printReport(r: Results): void {
  const gate = r.admissionGate.counterSeeded
    ? `counter ${r.admissionGate.counterKey} seeded ${r.admissionGate.counterAfterDeclarationMs} ms after the declaration`
    : `NOT RUNNING (no ${r.admissionGate.counterKey} before the race)`;
  const rows: Array<[string, string]> = [
    ['buyers / customers / units', `${r.parameters.buyers} / ${r.parameters.customers} / ${r.parameters.units}`],
    ['admission gate', gate],
    [
      'race',
      `${r.race.requests} requests in ${r.race.wallS} s (${r.race.requestsPerSecond}/s, ${r.parameters.clients} connections; bench client ${r.race.benchClientCpuS} s CPU)`,
    ],
    ['accepted (201)', String(r.accepted)],
    ['completed', String(r.completed)],
    ['accepted, by status now', describe(r.acceptedByStatus)],
    ['accepted after the last unit was sold', String(r.acceptedAfterSoldOut)],
    ['refused at the door, by reason (buyers)', describe(r.refusedAtTheDoor)],
    ['answers, by code (requests)', describe(r.answersByCode)],
    ['units owed to orders not failed', `${r.owedUnits} of ${r.parameters.units}`],
    ['first sold_out at the door', orNa(r.race.firstSoldOutAnswerS, 's after the start')],
    ['last unit sold (reserved in PostgreSQL)', orNa(r.race.soldOutS, 's after the start')],
    [
      'sold_out answers before the last unit was sold',
      `${r.soldOutAnsweredBeforeLastUnitSold} (units held by admitted orders)`,
    ],
    ['last unit sold → first sold_out at the door after it', orNa(r.soldOutToDoorMs, 'ms')],
    [
      'door latency, all answers p50 / p99',
      `${orNa(r.doorLatencyMs.all.p50, 'ms')} / ${orNa(r.doorLatencyMs.all.p99, 'ms')}`,
    ],
    [
      'door latency, 201 p50 / p99',
      `${orNa(r.doorLatencyMs.accepted.p50, 'ms')} / ${orNa(r.doorLatencyMs.accepted.p99, 'ms')}`,
    ],
    ['door latency, sold_out p50', orNa(r.doorLatencyMs.soldOut.p50, 'ms')],
    [
      'door latency, sold_out sent after the last unit was sold p50 / p99',
      `${orNa(r.doorLatencyMs.soldOutSentAfterLastUnitSold.p50, 'ms')} / ${orNa(r.doorLatencyMs.soldOutSentAfterLastUnitSold.p99, 'ms')} (${r.doorLatencyMs.soldOutSentAfterLastUnitSold.count} answers)`,
    ],
  ];
  console.log(`\n${markdownTable(['result', 'value'], rows)}`);
  const seconds = r.doorLatencyMs.soldOutBySecondSent.rows.map(([second, n, p50, p99]) => [
    `${second}–${Number(second) + 1} s`,
    String(n),
    `${p50} ms`,
    `${p99} ms`,
  ]);
  console.log('\nsold_out answers by the second their request was sent');
  console.log(`\n${markdownTable(['sent', 'answers', 'p50', 'p99'], seconds)}`);
  const targetRows = targets(r).map((t) => [t.metric, t.shown, t.target, met(t) ? '✓' : '✗']);
  console.log(`\n${markdownTable(['target of the issue', 'value', 'target', ''], targetRows)}`);
}

const describe = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([name, n]) => `${name} ${n}`)
    .join(', ') || 'none';

export async function writeResults(r: Results): Promise<void> {
  await mkdir(resultsDir, { recursive: true });
  const json = join(resultsDir, 'flash-sale.json');
  const svg = join(resultsDir, 'flash-sale.svg');
  const judged = targets(r).map((t) => ({ metric: t.metric, value: t.value, target: t.target, met: met(t) }));
  const withTargets = { ...r, targets: judged };
  await writeFile(json, `${formatJson(withTargets)}\n`);
  await writeFile(svg, renderFlashSaleSvg(r));
  console.log(`\nresults written to ${json} and ${svg}`);
}
