import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { stepNames } from '../queues/order-workflow.ts';
import { sql } from '../sql/database.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

// Two real worker processes (node workers/main.ts) serving the same queues, as `--scale worker=2` runs
// them. The API here enqueues; only the child processes do the work.
let h: Harness;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  h = await startHarness({ workers: false });
  for (let i = 0; i < 2; i++) {
    const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'workers', 'main.ts')], {
      env: {
        ...process.env,
        ...h.env,
        WORKER_CONCURRENCY: '8',
        DB_POOL_SIZE: '5',
        LOG_LEVEL: process.env.WORKER_TEST_LOG ?? 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    workers.push(child);
  }
  // Both processes serve every queue before any order is placed: on a busy machine one of them can take
  // seconds longer to start, and the other would do all the work alone.
  await waitFor('both worker processes on every queue', async () => {
    const counts = await Promise.all(Object.values(h.deps.queues.queues).map((q) => q.getWorkersCount()));
    return counts.every((n) => n >= 2);
  });
});

afterAll(async () => {
  for (const child of workers) if (child.exitCode === null) child.kill('SIGKILL');
  await h?.close();
});

describe('two worker processes on the same queues', () => {
  it('share the orders without running any step twice', async () => {
    const placed = await Promise.all(
      Array.from({ length: 60 }, () => h.placeOrder(orderBody({ items: [{ sku: 'ONEPIECE-105', quantity: 1 }] }))),
    );
    const orders = [];
    for (const p of placed) orders.push(await h.waitForTerminal(p.body.id));
    expect(orders.map((o) => o.status)).toEqual(orders.map(() => 'COMPLETED'));

    // Each step succeeded once per order, and no two workers ran the same step at once (the loser of such
    // a race is recorded as a 'duplicate'). A retry after a transient error is allowed: under load a
    // connection can time out; that attempt failed, it did not run twice.
    const perStep = await h.deps.db.any(sql.type(
      z.object({ order_id: z.string(), step: z.string(), succeeded: z.number(), duplicates: z.number() }),
    )`
      SELECT order_id::text, step,
             count(*) FILTER (WHERE outcome = 'succeeded')::int AS succeeded,
             count(*) FILTER (WHERE error_code = 'duplicate')::int AS duplicates
      FROM step_attempts GROUP BY order_id, step`);
    expect(perStep).toHaveLength(60 * stepNames.length);
    expect(perStep.filter((r) => r.succeeded !== 1 || r.duplicates !== 0)).toEqual([]);

    const byWorker = await h.deps.db.any(sql.type(z.object({ worker: z.string(), n: z.number() }))`
      SELECT worker, count(*)::int AS n FROM step_attempts GROUP BY worker`);
    expect(byWorker).toHaveLength(2);
    for (const child of workers) {
      expect(byWorker.map((w) => w.worker)).toContainEqual(expect.stringMatching(new RegExp(`:${child.pid}$`)));
    }

    const gateway = h.sandbox.gateway.stats().byReference;
    for (const o of orders) expect(gateway[o.id]).toMatchObject({ captures: 1, captureKeys: 1 });
  });

  it('finish the steps in flight before exiting on SIGTERM', async () => {
    h.sandbox.carrier.settings.latencyMs = 1_500;
    await Promise.all(
      Array.from({ length: 4 }, () => h.placeOrder(orderBody({ items: [{ sku: 'ONEPIECE-105', quantity: 1 }] }))),
    );
    // A step in flight is an active job of its queue (its ledger row is written when it finishes).
    const running = async () => (await h.deps.queues.queues.ship.getActive()).map((job) => job.id!);
    const inFlight = await waitFor('a shipment step in flight', running, (ids) => ids.length > 0);

    const exits = workers.map((child) => once(child, 'exit'));
    for (const child of workers) child.kill('SIGTERM');
    const codes = (await Promise.all(exits)).map(([code]) => code);
    expect(codes).toEqual([0, 0]);
    expect(await running()).toEqual([]);
    // The steps that were running when the signal came finished, and succeeded.
    const states = await Promise.all(inFlight.map((id) => h.deps.queues.queues.ship.getJobState(id)));
    expect(states).toEqual(inFlight.map(() => 'completed'));
    const orderIds = await Promise.all(
      inFlight.map(async (id) => (await Job.fromId(h.deps.queues.queues.ship, id))!.data.orderId),
    );
    const outcomes = await h.deps.db.any(sql.type(z.object({ outcome: z.string() }))`
      SELECT outcome FROM step_attempts WHERE step = 'ship' AND order_id = ANY(${sql.array(orderIds, 'uuid')})`);
    expect(outcomes.map((o) => o.outcome)).toEqual(inFlight.map(() => 'succeeded'));
  });
});
