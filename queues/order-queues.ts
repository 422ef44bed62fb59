import { FlowProducer, Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { buildFulfilmentFlow, retention, stepJobOptions } from './flow.ts';
import {
  DEAD_LETTER_QUEUE,
  type DeadLetterJobData,
  MAINTENANCE_QUEUE,
  type MaintenanceJobData,
  type OrderRef,
  type StepName,
  stepNames,
} from './pipeline.ts';

/**
 * maxRetriesPerRequest: null makes commands wait for Redis to come back instead of failing after a
 * few tries: BullMQ requires it for workers, and it keeps a worker consuming after a Redis restart.
 * The API passes `failFast` so that a request does not hang while Redis is down.
 */
export function createRedis(url: string, options: { failFast?: boolean } = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: !options.failFast,
    connectionName: 'orderflow',
  });
}

export type OrderQueues = ReturnType<typeof createOrderQueues>;
export type QueueMap = Record<StepName | typeof DEAD_LETTER_QUEUE | typeof MAINTENANCE_QUEUE, Queue>;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Producers for the pipeline: what the API and the workers use to add jobs. */
export function createOrderQueues(redis: Redis, prefix: string, onError: (error: Error) => void = () => {}) {
  const queues = Object.fromEntries(
    [...stepNames, DEAD_LETTER_QUEUE, MAINTENANCE_QUEUE].map((name) => [
      name,
      new Queue(name, { connection: redis, prefix }).on('error', onError),
    ]),
  ) as QueueMap;
  const flows = new FlowProducer({ connection: redis, prefix }).on('error', onError);
  const maintenance = (data: MaintenanceJobData, opts: { jobId?: string; delay?: number } = {}) =>
    queues[MAINTENANCE_QUEUE].add(data.kind, data, {
      attempts: 10,
      backoff: { type: 'exponential', delay: 2_000, jitter: 0.5 },
      ...retention,
      ...opts,
    });

  return {
    queues,
    /** Starts (or, with a new round, restarts) an order's pipeline. Adding the same ref twice does nothing. */
    async enqueueOrder(ref: OrderRef): Promise<void> {
      await queues.validate.add('validate', ref, stepJobOptions(ref, 'validate'));
    },
    /** Adds the rest of the pipeline once validation passed; does nothing if it is already there. */
    async addFulfilmentFlow(ref: OrderRef): Promise<void> {
      const flow = buildFulfilmentFlow(ref);
      if (await Job.fromId(queues.notify, flow.opts?.jobId ?? '')) return;
      await flows.add(flow);
    },
    async addDeadLetter(data: DeadLetterJobData): Promise<void> {
      // A poison job's "order id" can be anything; only real ones make a deduplicating job id.
      const jobId = uuid.test(data.orderId) ? `${data.orderId}-g${data.generation}-${data.step}` : undefined;
      await queues[DEAD_LETTER_QUEUE].add('dead-letter', data, {
        jobId,
        attempts: 8,
        backoff: { type: 'exponential', delay: 5_000, jitter: 0.5 },
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: false,
      });
    },
    async scheduleOrderRetry(deadLetterId: number, retries: number, delayMs: number): Promise<void> {
      await maintenance(
        { kind: 'retry-order', deadLetterId },
        { jobId: `retry-${deadLetterId}-${retries}`, delay: delayMs },
      );
    },
    async compensateLater(orderId: string, generation: number): Promise<void> {
      await maintenance(
        { kind: 'compensate-order', orderId, generation },
        { jobId: `compensate-${orderId}-g${generation}` },
      );
    },
    /** The reconciler runs on a BullMQ job scheduler: one schedule however many workers start. */
    async scheduleReconciler(everyMs: number): Promise<void> {
      await queues[MAINTENANCE_QUEUE].upsertJobScheduler(
        'reconcile',
        { every: everyMs },
        { name: 'reconcile', data: { kind: 'reconcile' } satisfies MaintenanceJobData, opts: retention },
      );
    },
    async close(): Promise<void> {
      await Promise.all([...Object.values(queues).map((q) => q.close()), flows.close()]);
    },
  };
}
