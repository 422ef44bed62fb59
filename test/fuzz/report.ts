import type { Outcome } from './send.ts';

export type Violation = { index: number; outcome: Outcome; curl: string };

const percentile = (sorted: readonly number[], p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const ms = (n: number) => n.toFixed(1).padStart(7);

/** The run as a table: statuses, latency per route, what changed, and each violation with its curl. */
export function formatReport(run: {
  seed: number;
  count: number;
  seconds: number;
  outcomes: readonly Outcome[];
  violations: readonly Violation[];
  changes: readonly string[];
  readyStatus: number;
}): string {
  const lines: string[] = [];
  const latencies = run.outcomes.map((o) => o.ms).sort((a, b) => a - b);
  lines.push(
    `hostile-request fuzz: seed ${run.seed}, ${run.count} requests in ${run.seconds.toFixed(1)} s ` +
      `(${Math.round(run.count / run.seconds)}/s); replay with: npm run test:fuzz -- --seed ${run.seed} --count ${run.count}`,
    '',
    'status  requests',
  );
  const statuses = new Map<number, number>();
  for (const o of run.outcomes) statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1);
  for (const [status, n] of [...statuses].sort(([a], [b]) => a - b))
    lines.push(`${String(status).padEnd(6)}  ${String(n).padStart(8)}`);

  lines.push('', `${'route'.padEnd(38)} requests   p50 ms   p99 ms   max ms  statuses`);
  const routes = new Map<string, Outcome[]>();
  for (const o of run.outcomes) routes.set(o.request.route, [...(routes.get(o.request.route) ?? []), o]);
  for (const [route, outcomes] of [...routes].sort(([a], [b]) => a.localeCompare(b))) {
    const sorted = outcomes.map((o) => o.ms).sort((a, b) => a - b);
    const seen = [...new Set(outcomes.map((o) => o.status))].sort().join(' ');
    lines.push(
      `${route.padEnd(38)} ${String(outcomes.length).padStart(8)}  ${ms(percentile(sorted, 50))}  ${ms(percentile(sorted, 99))}  ${ms(sorted.at(-1) ?? 0)}  ${seen}`,
    );
  }
  lines.push(
    `${'all'.padEnd(38)} ${String(run.outcomes.length).padStart(8)}  ${ms(percentile(latencies, 50))}  ${ms(percentile(latencies, 99))}  ${ms(latencies.at(-1) ?? 0)}`,
    '',
    `data changed: ${run.changes.length === 0 ? 'nothing' : ''}`,
    ...run.changes.map((c) => `  ${c}`),
    `/readyz after the run: ${run.readyStatus}`,
    `violations: ${run.violations.length}`,
  );
  for (const v of run.violations.slice(0, 30)) {
    lines.push(
      '',
      `#${v.index} ${v.outcome.request.route} -> ${v.outcome.status}: ${v.outcome.problems.join('; ')}`,
      `  answer: ${v.outcome.body.slice(0, 200)}`,
      `  ${v.curl}`,
    );
  }
  if (run.violations.length > 30) lines.push('', `… and ${run.violations.length - 30} more`);
  if (run.violations.length > 0) {
    lines.push(
      '',
      'The curl commands expect BASE (say http://localhost:3000) and ADMIN_KEY, CUSTOMER_KEY, OTHER_KEY (two customers).',
    );
  }
  return lines.join('\n');
}
