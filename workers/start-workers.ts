import { hostname } from 'node:os';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { QueueName } from '../config/index.ts';
import type { OrderQueues } from '../queues/order-queues.ts';
import { DEAD_LETTER_QUEUE } from '../queues/pipeline.ts';
import { createDeadLetterProcessor } from './dead-letter.ts';
import type { StepDeps } from './step.ts';
import { createStepProcessor } from './step-processor.ts';
import { steps } from './steps/index.ts';

export type WorkerOptions = { queues: QueueName[]; concurrency: number; prefix: string };

/** One BullMQ Worker per configured queue, sharing the process's dependencies. */
export function startWorkers(redis: Redis, deps: StepDeps, orderQueues: OrderQueues, options: WorkerOptions): Worker[] {
  const id = `${hostname()}:${process.pid}`;
  return options.queues.map((name) => {
    const processor =
      name === DEAD_LETTER_QUEUE
        ? createDeadLetterProcessor(deps)
        : createStepProcessor(steps[name], deps, orderQueues, id);
    const worker = new Worker(name, processor, {
      connection: redis,
      prefix: options.prefix,
      concurrency: options.concurrency,
      name: id,
    });
    worker.on('error', (err) => deps.log.error({ queue: name, err }, 'worker error'));
    return worker;
  });
}
