import type { FlowJob, FlowNestedLeafJob, FlowParentJob, JobsOptions } from 'bullmq';
import { type OrderRef, type StepName, stepJobId, stepPolicies } from './pipeline.ts';

// Why a flow after validation, and not one flow for the whole order: BullMQ runs children before their
// parent, so "inventory check and payment in parallel, reserve after both" is a parent (reserve) with two
// children, and ship and notify are its ancestors. Validation must come before both children, which a
// tree cannot express (a job has one parent), so validation is a job of its own that adds this flow when
// it succeeds. Every child fails its parent when it fails for good, so no parent is left waiting for
// children that will never complete.

export const retention: Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'> = {
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export function stepJobOptions(ref: OrderRef, step: StepName): JobsOptions {
  const { attempts, backoff } = stepPolicies[step];
  return { jobId: stepJobId(ref, step), attempts, backoff, ...retention };
}

function node(ref: OrderRef, step: StepName, children?: Array<FlowParentJob | FlowNestedLeafJob>): FlowParentJob {
  const opts = { ...stepJobOptions(ref, step), failParentOnFailure: true };
  return { name: step, queueName: step, data: ref, opts, children: children ?? [] };
}

/** notify ← ship ← reserve ← (check-inventory ∥ authorize-payment) */
export function buildFulfilmentFlow(ref: OrderRef): FlowJob {
  const reserve = node(ref, 'reserve', [node(ref, 'check-inventory'), node(ref, 'authorize-payment')]);
  const root = node(ref, 'notify', [node(ref, 'ship', [reserve])]);
  return { ...root, opts: stepJobOptions(ref, 'notify') };
}
