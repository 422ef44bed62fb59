import { type FlowJob, FlowProducer, Job, Queue } from 'bullmq';
import { isUuid } from '../domain/ids.ts';
import { loadScripts, type RedisClient } from '../runtime/redis.ts';
import {
  DEAD_LETTER_QUEUE,
  type DeadLetterJobData,
  firstStep,
  MAINTENANCE_QUEUE,
  type MaintenanceJobData,
  type QueueName,
  queueNames,
  RETURNS_QUEUE,
  type ReturnJobData,
  retention,
  returnJobOptions,
  type StepJobData,
  stepJobOptions,
} from './order-workflow.ts';
import { shardOf, shardPrefix } from './shards.ts';

export type OrderQueues = ReturnType<typeof createOrderQueues>;
export type QueueMap = Record<QueueName, Queue>;
/**
 * Every queue of every shard, for what goes over them all (Bull Board, queue depth, clean-up): under its
 * name, shard 0's queue, which holds the work that is no order's (maintenance, returns); under
 * `<name>@<shard>`, the other shards'. With one shard, exactly one queue per name.
 */
export type AllQueues = QueueMap & Record<`${QueueName}@${number}`, Queue>;

/**
 * Producers for the pipeline: what the API and the workers use to add jobs. With `shards` > 1 each
 * order's jobs go to the queues of its shard (queues/shards.ts).
 */
export function createOrderQueues(
  redis: RedisClient,
  prefix: string,
  onError: (error: Error) => void = () => {},
  shards = 1,
) {
  const prefixes = Array.from({ length: shards }, (_, shard) => shardPrefix(prefix, shard, shards));
  const shardQueues = prefixes.map(
    (shard) =>
      Object.fromEntries(
        queueNames.map((name) => [name, new Queue(name, { connection: redis, prefix: shard }).on('error', onError)]),
      ) as QueueMap,
  );
  const flowProducers = prefixes.map((shard) =>
    new FlowProducer({ connection: redis, prefix: shard }).on('error', onError),
  );
  const queues = shardQueues[0]!;
  const all = Object.assign(
    {},
    ...shardQueues.map((map, shard) =>
      shard === 0 ? map : Object.fromEntries(Object.entries(map).map(([name, q]) => [`${name}@${shard}`, q])),
    ),
  ) as AllQueues;
  const forOrder = (orderId: string): QueueMap => shardQueues[shardOf(orderId, shards)]!;
  const maintenance = (data: MaintenanceJobData, opts: { jobId?: string; delay?: number } = {}) =>
    queues[MAINTENANCE_QUEUE].add(data.kind, data, {
      attempts: 10,
      backoff: { type: 'exponential', delay: 2_000, jitter: 0.5 },
      ...retention,
      ...opts,
    });

  return {
    /** The connection the queues use, which workers share: BullMQ's own, never auto-pipelined. */
    connection: redis,
    queues: all,
    /** Each shard's queues, by shard; a prefix per shard (shard 0's is the configured one). */
    shards: shardQueues,
    prefixes,
    /** The queues of the shard an order runs on: where its step jobs and its dead letter are. */
    forOrder,
    /**
     * Starts (or, with a new round, restarts) an order's pipeline: its first step's job, carrying the
     * order as the steps see it. Adding the same run twice does nothing (same job id).
     */
    async enqueueOrder(data: StepJobData): Promise<void> {
      await forOrder(data.orderId)[firstStep].add(firstStep, data, stepJobOptions(data, firstStep));
    },
    /** Adds the rest of an order's flow (after its first step), unless a redelivered job added it already. */
    async addFlow(flow: FlowJob): Promise<void> {
      const shard = shardOf((flow.data as StepJobData).orderId, shards);
      if (await Job.fromId(shardQueues[shard]![flow.queueName as QueueName], flow.opts?.jobId ?? '')) return;
      try {
        await flowProducers[shard]!.add(flow);
      } catch (error) {
        // A node that restarted or flushed its scripts: load them again and add the flow once more.
        if (!(error instanceof Error) || !error.message.includes('NOSCRIPT')) throw error;
        await loadScripts(redis);
        await flowProducers[shard]!.add(flow);
      }
    },
    async addDeadLetter(data: DeadLetterJobData): Promise<void> {
      // A poison job's "order id" can be anything; only real ones make a deduplicating job id.
      const jobId = isUuid(data.orderId) ? `${data.orderId}-g${data.generation}-${data.step}` : undefined;
      await forOrder(data.orderId)[DEAD_LETTER_QUEUE].add('dead-letter', data, {
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
    /** Undoes what an ended order still holds; `cause` tells requests apart (a job id is added once). */
    async compensateLater(orderId: string, generation: number, cause: string): Promise<void> {
      await maintenance(
        { kind: 'compensate-order', orderId, generation },
        { jobId: `compensate-${orderId}-g${generation}-${cause}` },
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
    /** Delivery tracking polls the carrier on a job scheduler too (workers/maintenance.ts, trackShipments). */
    async scheduleTrackingPoll(everyMs: number, batchSize: number): Promise<void> {
      await queues[MAINTENANCE_QUEUE].upsertJobScheduler(
        'track-shipments',
        { every: everyMs },
        {
          name: 'track-shipments',
          data: { kind: 'track-shipments', batchSize } satisfies MaintenanceJobData,
          opts: retention,
        },
      );
    },
    /**
     * A step of a return's saga; the same step of the same return is added once (its job id), unless
     * `replay` names a new run of it (an operator's replay of its parked dead letter).
     */
    async enqueueReturnStep(data: ReturnJobData, replay?: string): Promise<void> {
      await queues[RETURNS_QUEUE].add(data.step, replay ? { ...data, replay } : data, returnJobOptions(data, replay));
    },
    /** Expiry of returns not received in time, and recovery of lost return steps (workers/returns/sweep.ts). */
    async scheduleReturnSweep(everyMs: number, receiptDays: number): Promise<void> {
      await queues[MAINTENANCE_QUEUE].upsertJobScheduler(
        'sweep-returns',
        { every: everyMs },
        {
          name: 'sweep-returns',
          data: { kind: 'sweep-returns', receiptDays } satisfies MaintenanceJobData,
          opts: retention,
        },
      );
    },
    async close(): Promise<void> {
      await Promise.all([...Object.values(all).map((q) => q.close()), ...flowProducers.map((f) => f.close())]);
    },
  };
}
