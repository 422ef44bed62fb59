import { parseArgs } from 'node:util';
import { Worker } from 'bullmq';
import { CEILING_PREFIX, CEILING_QUEUES, CEILING_ROOT_QUEUE, connectionOf } from './ceiling-flow.ts';

// A worker process of the ceiling: one BullMQ Worker per queue of the flow, at the product's concurrency,
// with processors that return at once. It tells its parent (over IPC) when it is ready and, every 10 ms,
// how many flows it has finished; 'stop' closes it.

const { values } = parseArgs({ options: { redis: { type: 'string' }, concurrency: { type: 'string' } } });
if (!values.redis || !process.send) throw new Error('usage: started by bench/pipeline/ceiling.ts with --redis URL');
const send = (message: unknown) => process.send?.(message);
const connection = connectionOf(values.redis);
const concurrency = Number(values.concurrency ?? 10);

let completed = 0;
let reported = 0;
const workers = CEILING_QUEUES.map((queue) => {
  const worker = new Worker(queue, async () => undefined, { connection, prefix: CEILING_PREFIX, concurrency });
  worker.on('failed', (job, error) => send({ type: 'failed', queue, job: job?.id, error: error.message }));
  if (queue === CEILING_ROOT_QUEUE) {
    worker.on('completed', () => {
      completed += 1;
    });
  }
  return worker;
});
await Promise.all(workers.map((worker) => worker.waitUntilReady()));
send({ type: 'ready' });

const timer = setInterval(() => {
  if (completed === reported) return;
  reported = completed;
  send({ type: 'completed', count: completed });
}, 10);

process.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  Promise.all(workers.map((worker) => worker.close())).then(
    () => process.disconnect(),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
