import { Job } from 'bullmq';
import { z } from 'zod';
import type { OrderQueues } from '../../queues/order-queues.ts';
import { DEAD_LETTER_QUEUE, stepJobId, stepNames } from '../../queues/order-workflow.ts';
import { listCompensations } from '../../sql/compensations.ts';
import { type Db, sql } from '../../sql/database.ts';
import { listHistory } from '../../sql/orders.ts';
import { listPayments } from '../../sql/payments.ts';
import { listOrderReturns } from '../../sql/returns.ts';
import { listAttempts } from '../../sql/step-attempts.ts';
import type { Check } from './invariants.ts';

// When a check fails, everything known about the orders it names, taken before the servers are
// stopped: the order row, its history, the step ledger, payments, compensations, returns, dead letters, stock
// movements, what the gateway and carrier hold, and the state of every BullMQ job of the order.

const MAX_ORDERS = 10;
const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The order ids named in the failing checks' examples. */
export function failingOrderIds(checks: Check[]): string[] {
  const ids = checks.filter((c) => c.failures > 0).flatMap((c) => c.examples.flatMap((e) => e.match(uuid) ?? []));
  return [...new Set(ids)].slice(0, MAX_ORDERS);
}

export async function gatherEvidence(options: {
  db: Db;
  queues: OrderQueues;
  gatewayUrl: string;
  carrierUrl: string;
  orderIds: string[];
}): Promise<Record<string, unknown>> {
  const evidence: Record<string, unknown> = {};
  for (const id of options.orderIds) {
    evidence[id] = await orderEvidence(options, id).catch((error: unknown) => ({ error: (error as Error).message }));
  }
  return evidence;
}

async function orderEvidence(options: Parameters<typeof gatherEvidence>[0], id: string) {
  const { db } = options;
  const order = await db.one(sql.type(
    z.object({
      status: z.string(),
      generation: z.number(),
      enqueue_round: z.number(),
      failure_reason: z.string().nullable(),
      failed_step: z.string().nullable(),
      created_at: z.string(),
      updated_at: z.string(),
    }),
  )`
    SELECT status, generation, enqueue_round, failure_reason, failed_step, created_at::text, updated_at::text
    FROM orders WHERE id = ${id}`);
  const deadLetters = await db.any(sql.type(z.object({}).passthrough())`
    SELECT id::int, generation, step, error_code, status, attempts, retries, note, created_at::text, updated_at::text
    FROM dead_letters WHERE order_id = ${id} ORDER BY id`);
  const movements = await db.any(sql.type(z.object({}).passthrough())`
    SELECT generation, sku, region, kind, quantity, created_at::text FROM stock_movements
    WHERE order_id = ${id} ORDER BY id`);
  const authorizations = await fetch(`${options.gatewayUrl}/v1/authorizations?reference=${id}`).then((r) => r.json());
  const carrier = (await fetch(`${options.carrierUrl}/_sandbox/stats`).then((r) => r.json())) as {
    byReference: Record<string, unknown>;
  };
  return {
    order,
    history: (await listHistory(db, id)).map((h) => ({ ...h, at: iso(h.at) })),
    attempts: (await listAttempts(db, id)).map((a) => ({
      ...a,
      started_at: iso(a.started_at),
      finished_at: iso(a.finished_at),
    })),
    payments: (await listPayments(db, id)).map((p) => ({ ...p, created_at: iso(p.created_at) })),
    compensations: await listCompensations(db, id),
    returns: await listOrderReturns(db, id),
    deadLetters,
    movements,
    gateway: authorizations,
    carrier: carrier.byReference[id] ?? null,
    jobs: await jobStates(options.queues, id, order.generation, order.enqueue_round),
  };
}

/** Every job the order can have had: each step of each generation and round, and its dead letters. */
async function jobStates(queues: OrderQueues, orderId: string, generations: number, rounds: number) {
  const states: Record<string, unknown> = {};
  for (let generation = 1; generation <= generations; generation++) {
    // A reopened order starts its rounds again at 0, so earlier generations may have had more.
    for (let round = 0; round <= Math.max(rounds, 10); round++) {
      for (const step of stepNames) {
        const jobId = stepJobId({ orderId, generation, round }, step);
        const job = await Job.fromId(queues.queues[step], jobId);
        if (job) states[jobId] = await describeJob(job);
      }
    }
    for (const step of stepNames) {
      const jobId = `${orderId}-g${generation}-${step}`;
      const job = await Job.fromId(queues.queues[DEAD_LETTER_QUEUE], jobId);
      if (job) states[`dead-letter ${jobId}`] = await describeJob(job);
    }
  }
  return states;
}

async function describeJob(job: Job) {
  return {
    state: await job.getState(),
    attemptsMade: job.attemptsMade,
    stalledCounter: job.stalledCounter,
    failedReason: job.failedReason || undefined,
    returnvalue: job.returnvalue ?? undefined,
    processedOn: job.processedOn ? iso(job.processedOn) : undefined,
    finishedOn: job.finishedOn ? iso(job.finishedOn) : undefined,
  };
}
