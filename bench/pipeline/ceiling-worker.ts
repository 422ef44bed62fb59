import { parseArgs } from 'node:util';
import { FlowProducer, type Job, Worker } from 'bullmq';
import {
  CEILING_PREFIX,
  CEILING_ROOT_QUEUE,
  ceilingFlow,
  connectionOf,
  type FlowShape,
  flowShapes,
} from './ceiling-flow.ts';

// A worker process of the ceiling or the floor (ceiling-flow.ts): one BullMQ Worker per queue of the
// flow, at the product's concurrency, with processors that return at once (the floor's `validate` adds
// the rest of its flow first). It tells its parent (over IPC) when it is ready and, every 10 ms, how many
// flows it has finished; 'stop' closes it.

const { values } = parseArgs({
  options: { redis: { type: 'string' }, concurrency: { type: 'string' }, shape: { type: 'string' } },
});
if (!values.redis || !process.send) throw new Error('usage: started by bench/pipeline/ceiling.ts with --redis URL');
const send = (message: unknown) => process.send?.(message);
const connection = connectionOf(values.redis);
const concurrency = Number(values.concurrency ?? 10);
const shape = (values.shape ?? 'ceiling') as FlowShape;
if (!(shape in flowShapes)) throw new Error(`--shape must be one of ${Object.keys(flowShapes).join(', ')}`);
// Only the floor has a `validate` job, which adds the rest of its flow.
const producer = shape === 'floor' ? new FlowProducer({ connection, prefix: CEILING_PREFIX }) : undefined;
const addRest = async (job: Job<{ flow: number }>) => {
  await producer?.add(ceilingFlow(job.data.flow, shape));
};

let completed = 0;
let reported = 0;
const workers = flowShapes[shape].map((queue) => {
  const processor = queue === 'validate' ? addRest : async () => undefined;
  const worker = new Worker(queue, processor, { connection, prefix: CEILING_PREFIX, concurrency });
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
  Promise.all([...workers.map((worker) => worker.close()), producer?.close()]).then(
    () => process.disconnect(),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
