import type { FlowJob, FlowNestedLeafJob, FlowParentJob, JobsOptions } from 'bullmq';
import { type StepJobData, type StepName, stepJobId, stepPolicies } from './pipeline.ts';

// Why a flow after validation, and not one flow for the whole order: BullMQ runs children before their
// parent, so "inventory check and payment in parallel, reserve after both" is a parent (reserve) with two
// children, and ship and notify are its ancestors. Validation must come before both children, which a
// tree cannot express (a job has one parent), so validation is a job of its own that adds this flow when
// it succeeds. Every child fails its parent when it fails for good, so no parent is left waiting for
// children that will never complete.

const retention: Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'> = {
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export function stepJobOptions(orderId: string, step: StepName): JobsOptions {
  return { jobId: stepJobId(orderId, step), ...stepPolicies[step], ...retention };
}

function node(orderId: string, step: StepName, children?: Array<FlowParentJob | FlowNestedLeafJob>): FlowParentJob {
  const data: StepJobData = { orderId };
  const opts = { ...stepJobOptions(orderId, step), failParentOnFailure: true };
  return { name: step, queueName: step, data, opts, children: children ?? [] };
}

/** notify ← ship ← reserve ← (check-inventory ∥ authorize-payment) */
export function buildFulfilmentFlow(orderId: string): FlowJob {
  const reserve = node(orderId, 'reserve', [node(orderId, 'check-inventory'), node(orderId, 'authorize-payment')]);
  const root = node(orderId, 'notify', [node(orderId, 'ship', [reserve])]);
  return { ...root, opts: stepJobOptions(orderId, 'notify') };
}
