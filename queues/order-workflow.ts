import type { BackoffOptions, FlowJob, FlowParentJob, JobsOptions } from 'bullmq';
import type { OrderStatus } from '../domain/order-status.ts';
import type { NewDeadLetter } from '../sql/dead-letters.ts';

// The order workflow, declared once: its steps in order (a pair in parallel), the status each success
// moves the order to, each step's retry policy, and which steps have effects to compensate. Everything
// else is derived from it: the queue names (one queue per step, named after it), the BullMQ flow, the
// compensation order, the worker's processors (workers/steps/<step>.ts). The step code knows nothing of
// BullMQ; workers/run-step.ts is the runner that holds a step to its contract.

export type StepPolicy = { attempts: number; backoff: BackoffOptions; timeoutMs: number };

// Business failures never retry, whatever the attempts say (the runner ends them at once); these numbers
// bound how long a transient outage (provider down, database restarting) is ridden out before the order
// goes to the dead letters: about 10 s for the database steps, a minute or more for the providers.
// timeoutMs bounds one attempt; it is above the provider timeouts so that they fire first.
const database: StepPolicy = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 500, jitter: 0.5 },
  timeoutMs: 30_000,
};
const gateway: StepPolicy = {
  attempts: 6,
  backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
  timeoutMs: 45_000,
};
const carrier: StepPolicy = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
  timeoutMs: 30_000,
};

type StepDeclaration = {
  /** The status a success moves the order to (the last stage it passed), if any. */
  status?: OrderStatus;
  policy: StepPolicy;
  /** The step leaves effects (money, stock, a label) that an ended order must have undone. */
  compensates?: boolean;
  /**
   * The step runs after the goods have shipped: the order is fulfilled whatever it does. A failure for
   * good does not fail the order and undo its capture and label; the order moves to `status` anyway and
   * the step is parked as a dead letter of kind 'step', which an operator replays (the step alone).
   */
  afterFulfilment?: boolean;
};

const stages = [
  { validate: { status: 'VALIDATING', policy: database } },
  {
    'check-inventory': { status: 'INVENTORY_CHECK', policy: database },
    'authorize-payment': { status: 'PAYMENT_PROCESSING', policy: gateway, compensates: true },
  },
  { reserve: { status: 'RESERVED', policy: database, compensates: true } },
  { capture: { policy: gateway, compensates: true } },
  { ship: { status: 'FULFILLMENT', policy: carrier, compensates: true } },
  { notify: { status: 'COMPLETED', policy: carrier, afterFulfilment: true } },
] as const satisfies ReadonlyArray<Record<string, StepDeclaration>>;

type Stage = (typeof stages)[number];
export type StepName = Stage extends infer S ? (S extends unknown ? keyof S : never) : never;
export const stepNames = stages.flatMap((stage) => Object.keys(stage)) as StepName[];
export const steps = Object.assign({}, ...stages) as Record<StepName, StepDeclaration>;
/** Undone in the reverse of the workflow's order: label, capture, reservation, authorization. */
export const compensationOrder = stepNames.filter((name) => steps[name].compensates).reverse();

export const DEAD_LETTER_QUEUE = 'dead-letter';
/** Periodic and scheduled work: the reconciler, order retries, compensation of ended orders. */
export const MAINTENANCE_QUEUE = 'maintenance';
/**
 * The returns saga (SPEC §5, workers/returns/): one queue for its steps (label, refund, restock), which
 * are per return, not per order, and so are no part of the order flow above.
 */
export const RETURNS_QUEUE = 'returns';
export const queueNames = [...stepNames, DEAD_LETTER_QUEUE, MAINTENANCE_QUEUE, RETURNS_QUEUE] as const;
export type QueueName = (typeof queueNames)[number];

/**
 * Which run of which order a job is for. `generation` changes when a failed order is retried (its steps
 * run again from scratch); `round` changes when the reconciler re-enqueues a stuck order (its steps
 * continue where they stopped: done steps return their stored output).
 */
export type OrderRef = { orderId: string; generation: number; round: number };

/** What a step job carries: the run, and (after validation) the order as the steps see it. */
export type StepJobData = OrderRef & { order?: unknown };

export type DeadLetterJobData = NewDeadLetter;

export type MaintenanceJobData =
  | { kind: 'reconcile' }
  | { kind: 'retry-order'; deadLetterId: number }
  | { kind: 'compensate-order'; orderId: string; generation: number }
  | { kind: 'track-shipments'; batchSize: number }
  | { kind: 'sweep-returns'; receiptDays: number };

/** A step of one return's saga (workers/returns/); the RMA names the return. */
export type ReturnStepKind = 'label' | 'refund' | 'restock';
export type ReturnJobData = {
  step: ReturnStepKind;
  rma: string;
  /** Set on an operator's replay of the step's parked dead letter (see the label step). */
  replay?: string;
};

// Return steps are mostly provider calls (carrier, gateway): the providers' patience, as for the order's.
export const returnStepPolicy: StepPolicy = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
  timeoutMs: 45_000,
};

/**
 * One job per step and return (RMAs have no ':'), so adding the same step twice does nothing. A replay
 * (an operator running a parked step again) names itself, since the failed job is kept for a week.
 */
export function returnJobOptions(data: ReturnJobData, replay?: string): JobsOptions {
  const { attempts, backoff } = returnStepPolicy;
  const jobId = `return-${data.step}-${data.rma}${replay ? `-${replay}` : ''}`;
  return { jobId, attempts, backoff, ...retention };
}

/** The return step a ledger row or dead letter names (`return-<step>:<rma>`), or null for an order's step. */
export function parseReturnStep(step: string): ReturnJobData | null {
  const match = /^return-(label|refund|restock):(RMA-[0-9A-F]{12})$/.exec(step);
  return match ? { step: match[1] as ReturnStepKind, rma: match[2]! } : null;
}

/** BullMQ job ids may not contain ':'; order ids are UUIDs, so these are safe and unique. */
export function stepJobId(ref: OrderRef, step: StepName): string {
  return `${ref.orderId}-g${ref.generation}-r${ref.round}-${step}`;
}

export const retention: Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'> = {
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

export function stepJobOptions(ref: OrderRef, step: StepName): JobsOptions {
  const { attempts, backoff } = steps[step].policy;
  return { jobId: stepJobId(ref, step), attempts, backoff, ...retention };
}

/** The job that runs one step of an order again, alone (an operator's replay of a parked step). */
export function stepReplayJob(ref: OrderRef, step: StepName) {
  return { name: step, queueName: step, data: ref satisfies StepJobData, opts: stepJobOptions(ref, step) };
}

// How the stages become BullMQ jobs. BullMQ runs a job's children before it, so a stage after a
// parallel pair is a parent with the pair as its children, and each later stage is the parent of the
// one before: notify ← ship ← capture ← reserve ← (check-inventory ∥ authorize-payment). A job has one
// parent, so nothing can come before the pair in the same tree: the stages before the first parallel
// one (validation) run as jobs of their own, and the last of them adds the flow when it succeeds. Every
// child fails its parent when it fails for good, so no parent is left waiting for children that will
// never complete.

const firstParallel = stages.findIndex((stage) => Object.keys(stage).length > 1);
const head = stages.slice(0, firstParallel).map((stage) => Object.keys(stage)[0] as StepName);
const tail = stages.slice(firstParallel).map((stage) => Object.keys(stage) as StepName[]);
if (head.length !== 1 || tail.slice(1).some((stage) => stage.length > 1)) {
  throw new Error('The order workflow must be one step, then a parallel stage, then single steps');
}

/** The first step: what the API enqueues for a new order (or the reconciler for a stuck one). */
export const firstStep = head[0]!;

/** Whether a step's job has children in the flow, whose results it reads (the stages after the pair). */
export function hasChildren(step: StepName): boolean {
  return !head.includes(step) && !tail[0]!.includes(step);
}

/** After `step` succeeded: the flow of the remaining steps to add, if this step is the one that adds it. */
export function flowAfter(step: StepName, data: StepJobData): FlowJob | undefined {
  if (step !== firstStep) return undefined;
  const job = (name: StepName, children: FlowParentJob[] = []): FlowParentJob => ({
    name,
    queueName: name,
    data,
    opts: { ...stepJobOptions(data, name), failParentOnFailure: true },
    children,
  });
  let children = tail[0]!.map((name) => job(name));
  let root: FlowParentJob | undefined;
  for (const [name] of tail.slice(1)) {
    root = job(name!, children);
    children = [root];
  }
  if (!root) throw new Error('The order workflow has no step after its parallel stage');
  return { ...root, opts: stepJobOptions(data, root.name as StepName) };
}
