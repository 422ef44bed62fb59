import type { Admission } from '../flash-sale/admission.ts';
import type { Carrier } from '../providers/carrier.ts';
import type { Mailer } from '../providers/mailer.ts';
import type { PaymentGateway } from '../providers/payment-gateway.ts';
import type { StepName } from '../queues/order-workflow.ts';
import type { Logger } from '../runtime/logger.ts';
import type { OrderMetrics } from '../runtime/metrics.ts';
import type { Db } from '../sql/database.ts';
import type { Order, OrderSnapshot } from '../sql/orders.ts';
import { commits, type StepCommit, type StepCommitter } from '../sql/step-runtime.ts';

// The step contract. A step knows nothing of BullMQ, of the ledger or of statuses: it does its outside
// work (a provider call with an idempotency key derived from the order) and answers with a
// StepResponse: its output, and its commit, the one database call that records its effect. The runner
// (run-step.ts) adds the ledger row and the status change to that call, so they commit together, and
// gives each step the outputs of the steps it needs.
//
// A step that failed throws: a BusinessError ends the order at once; anything else is retried by the
// step's policy. A commit can refuse too (out of stock at reservation time): that is a business failure.

export type StepDeps = {
  db: Db;
  /** Runs the steps' commits, grouped across orders (sql/step-runtime.ts, sql/group-commit.ts). */
  stepCommits: StepCommitter;
  gateway: PaymentGateway;
  carrier: Carrier;
  mailer: Mailer;
  log: Logger;
  /** Orders ended, step durations and retries, compensations (runtime/metrics.ts). */
  metrics: OrderMetrics;
  /** Hot SKUs' admission counters: an ended order gives its tickets back (flash-sale/admission.ts). */
  admission: Pick<Admission, 'giveBack'>;
  /** Called after a committed change to an order's status (see runtime/deps.ts). */
  invalidateOrder(orderId: string, customerId?: string): Promise<void>;
};

export type StepContext<Needs> = StepDeps & {
  order: OrderSnapshot;
  generation: number;
  /** The outputs of the steps this one declared in `needs`. */
  inputs: Needs;
  /** Aborted when the attempt timed out: the runner will not commit it. */
  signal: AbortSignal;
};

/** What a step answers: its output and its commit. The output that counts is the one committed. */
export class StepResponse<Output> {
  readonly output: Output | undefined;
  readonly commit: StepCommit;
  constructor(output: Output, commit: StepCommit = commits.plain) {
    this.output = output;
    this.commit = commit;
  }

  /** A step whose work is all in its commit (a check or a reservation): the commit computes the output. */
  static committedBy<Output>(commit: StepCommit): StepResponse<Output> {
    return new StepResponse<Output>(undefined as Output, commit);
  }
}

export type Step<Name extends StepName = StepName, Output = unknown, Needs = unknown> = {
  name: Name;
  needs: ReadonlyArray<StepName>;
  invoke(context: StepContext<Needs>): Promise<StepResponse<Output>>;
  /**
   * Undoes the step's effects, judged from what the database and the provider say exists (not from the
   * ledger, so an effect whose success was never recorded is undone too). Idempotent; returns what it
   * undid, or undefined when there was nothing to undo.
   */
  compensate?(deps: StepDeps, order: Order): Promise<string | undefined>;
};

/** Declares a step; `needs` names the steps whose outputs it reads (typed by `Needs`). */
export function createStep<Name extends StepName, Output, Needs = Record<never, never>>(
  step: Omit<Step<Name, Output, Needs>, 'needs'> & { needs?: ReadonlyArray<keyof Needs & StepName> },
): Step<Name, Output, Needs> {
  return { ...step, needs: step.needs ?? [] };
}

/** The output type of a declared step, for the steps that need it. */
export type OutputOf<S> = S extends { invoke(...args: never[]): Promise<StepResponse<infer Output>> } ? Output : never;

/** Idempotency key for a provider call that an order makes once per generation (authorize, ship…). */
export function providerKey(order: { id: string; generation: number }, operation: string): string {
  return `order-${order.id}-g${order.generation}-${operation}`;
}
