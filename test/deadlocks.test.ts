import type { Worker } from 'bullmq';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeps, type Deps } from '../runtime/deps.ts';
import { createLogger } from '../runtime/logger.ts';
import { startWorkers } from '../workers/start-workers.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

// check-inventory and authorize-payment run in parallel for the same order, and many orders share
// inventory rows. Every writer takes the order's row first, then inventory rows in SKU order, so none
// waits on another in a cycle. Two worker pools, each with its own group commit (sql/group-commit.ts),
// stand for two worker processes: their batches of reservations and shipments lock many orders' rows
// at once (sql/group-commit.test.ts forces the crossing case between two such batches). PostgreSQL
// counts every deadlock it breaks in pg_stat_database.

let h: Harness;
let second: { workers: Worker[]; deps: Deps } | undefined;
beforeAll(async () => {
  h = await startHarness({ concurrency: 20 });
  const deps = await createDeps(h.config, createLogger('silent', 'test'));
  const workers = await startWorkers(deps, deps.queues, {
    queues: h.config.worker.queues,
    concurrency: 20,
    reconcileEveryMs: h.config.reconciler.everyMs,
    stuckAfterMs: h.config.reconciler.stuckAfterMs,
    retryPolicy: h.config.orderRetry,
  });
  second = { workers, deps };
});
afterAll(async () => {
  await stopSecond();
  await h?.close();
});

async function stopSecond() {
  const pool = second;
  second = undefined;
  if (!pool) return;
  await Promise.all(pool.workers.map((w) => w.close()));
  await pool.deps.close();
}

async function databaseStats(): Promise<{ deadlocks: number; backends: number }> {
  const client = new pg.Client({ connectionString: h.env.DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query(
      'SELECT deadlocks, numbackends FROM pg_stat_database WHERE datname = current_database()',
    );
    return { deadlocks: Number(rows[0].deadlocks), backends: Number(rows[0].numbackends) - 1 };
  } finally {
    await client.end();
  }
}

describe('many orders through the parallel pair at once', () => {
  it('complete without PostgreSQL breaking a single deadlock', async () => {
    for (const sku of ['BERSERK-41', 'ONEPIECE-105', 'FRIEREN-01-LTD']) await h.setStock(sku, 'eu', 1_000);
    const before = await databaseStats();
    const lines = [
      [{ sku: 'BERSERK-41', quantity: 1 }],
      [
        { sku: 'ONEPIECE-105', quantity: 1 },
        { sku: 'BERSERK-41', quantity: 1 },
      ],
      [
        { sku: 'FRIEREN-01-LTD', quantity: 1 },
        { sku: 'ONEPIECE-105', quantity: 2 },
      ],
    ];
    const placed = await Promise.all(
      Array.from({ length: 90 }, (_, i) => h.placeOrder(orderBody({ items: lines[i % lines.length] }))),
    );
    expect(placed.map((p) => p.status)).toEqual(placed.map(() => 201));
    const statuses = [];
    for (const p of placed) statuses.push((await h.waitForTerminal(p.body.id)).status);
    expect(statuses).toEqual(placed.map(() => 'COMPLETED'));

    // A backend reports its statistics when it exits: stop every client of the database, then read them.
    await stopSecond();
    await h.stop();
    const after = await waitFor('every connection of the run to close', databaseStats, (s) => s.backends === 0);
    expect(after.deadlocks - before.deadlocks).toBe(0);
  });
});
