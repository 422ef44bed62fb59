import { z } from 'zod';
import { type Db, sql } from './database.ts';
import { createGroupCommit, type Fragment, type GroupCommitOptions } from './group-commit.ts';
import type { NewPayment } from './payments.ts';
import type { NewShipment } from './shipments.ts';

// The step runtime's database side: each commit is one PL/pgSQL function of migration
// 003_step_runtime.sql (stage_*, named finish_* there), which locks the order row first and writes the
// step's effect; close_steps (migration 010) then writes its ledger row, the order's status change and
// its history row, in the same statement and transaction. A step's commit goes through the process's
// group commit (sql/group-commit.ts): the commits that wait at one moment share that statement, and
// close_steps writes all their closes at once.

/** One attempt of one step, as the database functions take it. */
export type StepRun = {
  orderId: string;
  generation: number;
  step: string;
  attempt: number;
  worker: string;
  startedAt: number;
  /** The status a success moves the order to, and the statuses that move is legal from. */
  status: string | null;
  from: readonly string[];
  /** A step after fulfilment (queues/order-workflow.ts): a final failure parks it, see step_fail in 006. */
  afterFulfilment: boolean;
};

type Json = Parameters<typeof sql.jsonb>[0];
const json = (value: unknown) => sql.jsonb((value ?? null) as Json);

/**
 * A step's commit: the function call that records its success (and its effect, if it has one).
 * `movesStock`: the call locks the order's inventory rows (sql/group-commit.ts batches those apart).
 */
export type StepCommit = { movesStock: boolean; call(run: StepRun, output: unknown): Fragment };

const commit = (call: StepCommit['call'], movesStock = false): StepCommit => ({ call, movesStock });

export const commits = {
  /** No writes of its own: the ledger row and the status change. */
  plain: commit((run, output) => sql.fragment`stage_step(${json(run)}, ${json(output)})`),
  validate: commit((run) => sql.fragment`stage_validate(${json(run)})`),
  checkInventory: commit((run) => sql.fragment`stage_check_inventory(${json(run)})`),
  reserve: commit((run) => sql.fragment`stage_reserve(${json(run)})`, true),
  payment: (payment: Omit<NewPayment, 'orderId' | 'generation'>) =>
    commit((run, output) => sql.fragment`stage_payment(${json(run)}, ${json(output)}, ${json(payment)})`),
  ship: (shipment: Omit<NewShipment, 'orderId'>) =>
    commit((run, output) => sql.fragment`stage_ship(${json(run)}, ${json(output)}, ${json(shipment)})`, true),
  notify: (notification: { kind: string; channel: string; recipient: string; subject: string; body: string }) =>
    commit((run, output) => sql.fragment`stage_notify(${json(run)}, ${json(output)}, ${json(notification)})`),
};

const answer = z.object({
  result: z.discriminatedUnion('state', [
    z.object({ state: z.literal('done'), output: z.unknown(), moved: z.boolean() }),
    z.object({ state: z.literal('ended'), status: z.string() }),
    z.object({ state: z.literal('missing') }),
    z.object({ state: z.literal('rejected'), code: z.string(), details: z.unknown() }),
  ]),
});
export type CommitAnswer = z.infer<typeof answer>['result'];

/**
 * The calls of a batch stage their steps' closes (each locks its order row, checks the step may
 * record its success, writes the step's effect); close_steps then writes the ledger rows, status
 * changes and history rows of the whole batch at once (migration 010), and answers for every call.
 */
const closeSteps = (calls: Fragment) => sql.fragment`close_steps(${calls})`;

/** Runs the steps' commits of a process, each one statement and one transaction, grouped when many wait. */
export type StepCommitter = {
  commit(run: StepRun, commit: StepCommit, output: unknown, order: OrderLines): Promise<CommitAnswer>;
};
type OrderLines = { region: string; items: ReadonlyArray<{ sku: string }> };

export function createStepCommitter(db: Db, options: GroupCommitOptions = {}): StepCommitter {
  const group = createGroupCommit(db, answer.shape.result, { ...options, combine: closeSteps });
  return {
    commit(run, commit, output, order) {
      const stock = commit.movesStock ? order.items.map((item) => ({ sku: item.sku, region: order.region })) : [];
      return group.run(run.orderId, commit.call(run, output), stock);
    },
  };
}

const failed = z.object({ result: z.object({ endedOrder: z.boolean(), parked: z.boolean() }) });
export type FailAnswer = z.infer<typeof failed>['result'];

/**
 * Records a failed attempt. When `final`, and the order is still in this generation's progress, it also
 * moves the order to FAILED and writes its dead letter, in the same transaction (`endedOrder`: this call
 * ended the order). A step after fulfilment instead moves the order to the step's status (`from` are
 * then the statuses that is legal from) and parks its dead letter (`parked`). `orderUuid` is null for a
 * job whose order id is not a UUID (a poison job).
 */
export async function failStep(
  db: Db,
  run: StepRun & { orderUuid: string | null; payload: unknown },
  error: { code: string; message: string },
  final: boolean,
): Promise<FailAnswer> {
  return db.oneFirst(sql.type(failed)`
    SELECT step_fail(${json(run)}, ${json(error)}, ${final}, ${sql.array([...run.from], 'text')}) AS result`);
}

const outputs = z.object({ step: z.string(), output: z.unknown() });

/** The stored outputs of the steps that succeeded in this generation (a retry picks them up). */
export async function findStepOutputs(
  db: Db,
  run: { orderId: string; generation: number },
  steps: readonly string[],
): Promise<Record<string, unknown>> {
  const rows = await db.any(sql.type(outputs)`
    SELECT step, output FROM step_attempts
    WHERE order_id = ${run.orderId} AND generation = ${run.generation} AND outcome = 'succeeded'
      AND step = ANY(${sql.array([...steps], 'text')})`);
  return Object.fromEntries(rows.map((r) => [r.step, r.output]));
}
