import type { ReturnStepKind } from '../../queues/order-workflow.ts';
import type { ReturnStepRun } from '../../sql/return-steps.ts';
import type { ReturnRecord } from '../../sql/returns.ts';
import type { StepDeps } from '../step.ts';

// A step of the returns saga, in the shape of the order's steps (workers/step.ts) minus the order flow:
// it does its provider call with a key derived from the RMA, then one transaction that records its effect
// with its ledger row (sql/return-steps.ts). The runner (run-return-step.ts) owns the ledger lookups,
// retries and the dead letter.

export type ReturnStep = {
  kind: ReturnStepKind;
  run(deps: StepDeps, record: ReturnRecord, ledger: ReturnStepRun, replay?: string): Promise<unknown>;
};

/** The idempotency key of a return's provider call: the same for every retry of the step. */
export const returnKey = (kind: 'return-label' | 'refund', rma: string) => `${kind}:${rma}`;
