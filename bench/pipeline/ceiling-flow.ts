import type { FlowJob, JobsOptions } from 'bullmq';

// The ceiling's flow: the product's shape, notify ← ship ← reserve ← (check-inventory ∥ authorize-payment),
// five jobs with the product's kind of options (own job ids, retention, a child failing its parent), and
// processors that do nothing. What BullMQ and Redis cost for an order, and nothing else.

export const CEILING_PREFIX = '{ceiling}';
export const CEILING_QUEUES = ['check-inventory', 'authorize-payment', 'reserve', 'ship', 'notify'] as const;
export const CEILING_ROOT_QUEUE = 'notify';
export const JOBS_PER_FLOW = CEILING_QUEUES.length;

const options = (id: string): JobsOptions => ({
  jobId: id,
  attempts: 3,
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
  failParentOnFailure: true,
});

export function ceilingFlow(flow: number): FlowJob {
  const data = { flow };
  const job = (queueName: string, children?: FlowJob[]): FlowJob => ({
    name: queueName,
    queueName,
    data,
    opts: options(`flow-${flow}-${queueName}`),
    children,
  });
  return job('notify', [job('ship', [job('reserve', [job('check-inventory'), job('authorize-payment')])])]);
}

/** host and port of a redis:// URL, as BullMQ's connection options. */
export function connectionOf(redisUrl: string) {
  const url = new URL(redisUrl);
  return { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
}
