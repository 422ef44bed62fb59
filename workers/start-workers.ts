import { hostname } from 'node:os';
import { type Processor, Worker } from 'bullmq';
import { Cluster, type Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { QueueName } from '../config/index.ts';
import type { RetryPolicy } from '../domain/dead-letter-policy.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import { DEAD_LETTER_QUEUE, MAINTENANCE_QUEUE, RETURNS_QUEUE } from '../queues/order-workflow.ts';
import { servedOnShard } from '../queues/shards.ts';
import { collectQueueDepth } from '../runtime/metrics.ts';
import type { RedisClient } from '../runtime/redis.ts';
import { createDeadLetterProcessor } from './dead-letter.ts';
import { createMaintenanceProcessor } from './maintenance.ts';
import { createReturnProcessor } from './returns/run-return-step.ts';
import type { StepDeps } from './step.ts';
import { createStepProcessor } from './step-processor.ts';
import { steps } from './steps/index.ts';

export type WorkerOptions = {
  queues: QueueName[];
  concurrency: number;
  reconcileEveryMs: number;
  stuckAfterMs: number;
  retryPolicy: RetryPolicy;
  /** Poll the carrier for deliveries (config.tracking); unset, no poll is scheduled from this process. */
  trackingPoll?: { pollEveryMs: number; batchSize: number };
  /** Expire returns not received in time (config.returns); unset, no sweep is scheduled from this process. */
  returnSweep?: { sweepEveryMs: number; receiptDays: number };
};

// Stalled jobs: a worker renews its lock every lockDuration/2; a job whose lock lapses (the process was
// killed, or its event loop blocked) is moved back to waiting by another worker's stalled check and runs
// again, which the step ledger makes safe. maxStalledCount 3 tolerates repeated kills of the same job
// before BullMQ fails it on its own; the reconciler picks up any order left behind that way.
const stalledJobSettings = { lockDuration: 30_000, stalledInterval: 30_000, maxStalledCount: 3 };

/**
 * One BullMQ Worker per configured queue and shard (every process serves every shard), sharing the
 * process's dependencies. The depth of the queues it serves goes on the process's registry (served
 * with GET /metrics on the health port).
 */
export async function startWorkers(
  deps: StepDeps & { registry: Registry },
  orderQueues: OrderQueues,
  options: WorkerOptions,
): Promise<Worker[]> {
  const redis = orderQueues.connection;
  const id = `${hostname()}:${process.pid}`;
  const served = orderQueues.shards.flatMap((queues, shard) =>
    options.queues.filter((name) => servedOnShard(name, shard)).map((name) => ({ name, queue: queues[name] })),
  );
  collectQueueDepth(
    deps.registry,
    served.map(({ queue }) => queue),
  );
  const serveMaintenance = options.queues.includes(MAINTENANCE_QUEUE);
  const schedule = async () => {
    await orderQueues.scheduleReconciler(options.reconcileEveryMs);
    const { trackingPoll } = options;
    if (trackingPoll) await orderQueues.scheduleTrackingPoll(trackingPoll.pollEveryMs, trackingPoll.batchSize);
    const { returnSweep } = options;
    if (returnSweep) await orderQueues.scheduleReturnSweep(returnSweep.sweepEveryMs, returnSweep.receiptDays);
  };
  if (serveMaintenance) await schedule();
  const workers = served.map(({ name, queue }) => {
    const processor: Processor =
      name === DEAD_LETTER_QUEUE
        ? createDeadLetterProcessor(deps, orderQueues, options.retryPolicy)
        : name === MAINTENANCE_QUEUE
          ? createMaintenanceProcessor(deps, orderQueues, options)
          : name === RETURNS_QUEUE
            ? createReturnProcessor(deps, id)
            : createStepProcessor(steps[name], deps, orderQueues, id);
    const worker = new Worker(name, processor, {
      connection: redis,
      prefix: queue.opts.prefix,
      concurrency: name === MAINTENANCE_QUEUE ? 1 : options.concurrency,
      name: id,
      ...stalledJobSettings,
    });
    worker.on('error', (err) => deps.log.error({ queue: name, err }, 'worker error'));
    return worker;
  });
  if (serveMaintenance) keepScheduled(redis, deps, schedule, workers);
  return workers;
}

/**
 * The scheduler adds the reconciler's next run when a worker takes the current one. A Redis restart
 * can lose that hand-over (the job is moved to active, the answer never arrives), and the schedule
 * would stop until BullMQ's stalled-job check gives the job back, up to a minute later: right when the
 * orders accepted during the outage need the reconciler. Scheduling again on every reconnection
 * restores the next run at once (an existing schedule is left as it is). The tracking poll likewise.
 * On a cluster the client stays ready while one master restarts: the connection that ioredis opens to
 * that master again (`+node`, on the first MOVED that points back to it) is the reconnection.
 */
function keepScheduled(redis: RedisClient, deps: StepDeps, schedule: () => Promise<void>, workers: Worker[]): void {
  const reschedule = () => {
    schedule().catch((err) => deps.log.warn({ err: err.message }, 'could not schedule the maintenance jobs again'));
  };
  const onNode = (node: Redis) => node.once('ready', reschedule);
  redis.on('ready', reschedule);
  if (redis instanceof Cluster) redis.on('+node', onNode);
  for (const worker of workers) {
    worker.once('closing', () => {
      redis.off('ready', reschedule);
      redis.off('+node', onNode);
    });
  }
}
