import { FlowProducer, Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { buildFulfilmentFlow, stepJobOptions } from './flow.ts';
import { DEAD_LETTER_QUEUE, type DeadLetterJobData, type StepJobData, type StepName, stepNames } from './pipeline.ts';

export type QueueConnection = { url: string; prefix: string };

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

/** Producers for the pipeline: what the API and the workers use to add jobs. */
export function createOrderQueues(redis: Redis, prefix: string) {
  const queues = Object.fromEntries(
    [...stepNames, DEAD_LETTER_QUEUE].map((name) => [name, new Queue(name, { connection: redis, prefix })]),
  ) as Record<StepName | typeof DEAD_LETTER_QUEUE, Queue>;
  const flows = new FlowProducer({ connection: redis, prefix });

  return {
    queues,
    /** Starts an order's pipeline. Safe to call twice: the job id is the order's. */
    async enqueueOrder(orderId: string): Promise<void> {
      const data: StepJobData = { orderId };
      await queues.validate.add('validate', data, stepJobOptions(orderId, 'validate'));
    },
    /** Adds the rest of the pipeline once validation passed; does nothing if it is already there. */
    async addFulfilmentFlow(orderId: string): Promise<void> {
      const flow = buildFulfilmentFlow(orderId);
      if (await Job.fromId(queues.notify, flow.opts?.jobId ?? '')) return;
      await flows.add(flow);
    },
    async addDeadLetter(data: DeadLetterJobData): Promise<void> {
      await queues[DEAD_LETTER_QUEUE].add('dead-letter', data, {
        jobId: `${data.orderId}-${data.step}`,
        attempts: 10,
        backoff: { type: 'exponential', delay: 5_000, jitter: 0.5 },
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: false,
      });
    },
    async close(): Promise<void> {
      await Promise.all([...Object.values(queues).map((q) => q.close()), flows.close()]);
    },
  };
}
