import type { FlowJob, JobsOptions } from 'bullmq';

// The bare BullMQ flows the product is measured against, with the product's kind of options (own job
// ids, retention, a child failing its parent) and processors that do nothing: what BullMQ and Redis cost
// for an order, and nothing else.
//
// - ceiling: the yardstick, five jobs of the product's shape,
//   notify ← ship ← reserve ← (check-inventory ∥ authorize-payment).
// - floor: the product's own seven, added as the product adds them: a `validate` job (the API's), whose
//   processor adds notify ← ship ← capture ← reserve ← (check-inventory ∥ authorize-payment) (the
//   validate step's). No order can cost less than this in the workers and Redis while it runs as these
//   jobs.

export const CEILING_PREFIX = '{ceiling}';
export const CEILING_ROOT_QUEUE = 'notify';
export const flowShapes = {
  ceiling: ['check-inventory', 'authorize-payment', 'reserve', 'ship', 'notify'],
  floor: ['validate', 'check-inventory', 'authorize-payment', 'reserve', 'capture', 'ship', 'notify'],
} as const;
export type FlowShape = keyof typeof flowShapes;

export const jobOptions = (id: string): JobsOptions => ({
  jobId: id,
  attempts: 3,
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
  failParentOnFailure: true,
});

/** The ceiling's whole flow, or what the floor's `validate` job adds. */
export function ceilingFlow(flow: number, shape: FlowShape): FlowJob {
  const data = { flow };
  const job = (queueName: string, children?: FlowJob[]): FlowJob => ({
    name: queueName,
    queueName,
    data,
    opts: jobOptions(`flow-${flow}-${queueName}`),
    children,
  });
  const reserve = job('reserve', [job('check-inventory'), job('authorize-payment')]);
  return job('notify', [job('ship', [shape === 'ceiling' ? reserve : job('capture', [reserve])])]);
}

/** host and port of a redis:// URL, as BullMQ's connection options. */
export function connectionOf(redisUrl: string) {
  const url = new URL(redisUrl);
  return { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
}
