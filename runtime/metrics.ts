import type { Queue } from 'bullmq';
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from 'prom-client';
import { deadLetterStatuses } from '../domain/dead-letter-policy.ts';
import type { Db } from '../sql/database.ts';
import { countDeadLettersByStatus } from '../sql/metrics.ts';

// The pipeline's metrics (SPEC §7), shared by the API and the workers: each process counts what it
// decided, and Prometheus sums the processes. Labels are closed sets (outcomes, step names, error
// codes), never order ids.

export type OrderOutcome = 'completed' | 'failed' | 'cancelled';
export type OrderMetrics = ReturnType<typeof createOrderMetrics>;

/** The Node process metrics (CPU, memory, event loop lag, GC), once per registry. */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}

export function createOrderMetrics(registry: Registry) {
  const accepted = new Counter({
    name: 'orderflow_orders_accepted_total',
    help: 'Orders accepted by POST /orders (201; an Idempotency-Key replay is not counted again)',
    registers: [registry],
  });
  const ended = new Counter({
    name: 'orderflow_orders_total',
    help: 'Orders that reached a terminal state, by outcome (completed, failed, cancelled) and reason (the error code of a failure, who cancelled)',
    labelNames: ['outcome', 'reason'] as const,
    registers: [registry],
  });
  const stepDuration = new Histogram({
    name: 'orderflow_step_duration_seconds',
    help: 'One attempt of a pipeline step, by step and outcome (done, retry, ended, already-ended, error)',
    labelNames: ['step', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'orderflow_step_retries_total',
    help: 'Step attempts that failed transiently and will be retried, by step and error code',
    labelNames: ['step', 'code'] as const,
    registers: [registry],
  });
  const compensations = new Counter({
    name: 'orderflow_compensations_total',
    help: 'Compensations run for ended orders, by step and result (undone, nothing: nothing to undo, failed)',
    labelNames: ['step', 'result'] as const,
    registers: [registry],
  });
  const commitBatches = new Histogram({
    name: 'orderflow_step_commit_batch_size',
    help: 'Step commits sent to PostgreSQL in one statement (group commit), by lane (plain; stock: commits that lock inventory rows)',
    labelNames: ['lane'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers: [registry],
  });
  return {
    orderAccepted: () => accepted.inc(),
    /**
     * An order reached its terminal state: the one call for every place that ends an order (the last
     * step, a failure, a cancellation, a completion whose notification was parked).
     */
    orderEnded: (outcome: OrderOutcome, reason: string) => ended.inc({ outcome, reason }),
    stepFinished: (step: string, outcome: string, seconds: number) => stepDuration.observe({ step, outcome }, seconds),
    stepRetried: (step: string, code: string) => retries.inc({ step, code }),
    compensated: (step: string, result: 'undone' | 'nothing' | 'failed') => compensations.inc({ step, result }),
    commitBatch: (lane: string, size: number) => commitBatches.observe({ lane }, size),
  };
}

// A scrape should answer even while Redis or PostgreSQL is away: a collector that cannot read in time
// drops its series (absent, not stale) and the rest of the scrape goes on.
const COLLECT_TIMEOUT_MS = 2_000;

async function withinCollectTimeout<T>(read: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('metric collection timed out')), COLLECT_TIMEOUT_MS);
  });
  try {
    return await Promise.race([read, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Jobs per queue and state, read from Redis when scraped (no polling loop). */
export function collectQueueDepth(registry: Registry, queues: readonly Queue[]): void {
  if (registry.getSingleMetric('orderflow_queue_jobs')) return; // a second app or worker pool on the registry
  new Gauge({
    name: 'orderflow_queue_jobs',
    help: 'Jobs in each queue by state, read at scrape time (every process reports the same queues: use max by (queue, state))',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      try {
        const counts = await withinCollectTimeout(Promise.all(queues.map((q) => q.getJobCounts())));
        this.reset();
        // With sharded queues (queues/shards.ts) a name has a queue per shard: the gauge is their sum.
        const sums = new Map<string, { queue: string; state: string; count: number }>();
        queues.forEach((queue, i) => {
          for (const [state, count] of Object.entries(counts[i]!)) {
            const key = `${queue.name} ${state}`;
            const sum = sums.get(key) ?? { queue: queue.name, state, count: 0 };
            sums.set(key, { ...sum, count: sum.count + count });
          }
        });
        for (const { queue, state, count } of sums.values()) this.set({ queue, state }, count);
      } catch {
        this.reset();
      }
    },
  });
}

/** Dead letters per status, counted in PostgreSQL when scraped. */
export function collectDeadLetters(registry: Registry, db: Db): void {
  if (registry.getSingleMetric('orderflow_dead_letters')) return;
  new Gauge({
    name: 'orderflow_dead_letters',
    help: 'Dead letters by status, counted in PostgreSQL at scrape time (every API process reports the same rows: use max by (status))',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      try {
        const rows = await withinCollectTimeout(countDeadLettersByStatus(db));
        this.reset();
        for (const status of deadLetterStatuses) this.set({ status }, 0);
        for (const row of rows) this.set({ status: row.status }, row.count);
      } catch {
        this.reset();
      }
    },
  });
}
