import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { statusesBefore } from '../domain/order-status.ts';
import { databaseUrl } from '../test/support/env.ts';
import { adminQuery } from '../test/support/global-setup.ts';
import { createDatabase, type Db, sql } from './database.ts';
import type { Lane } from './group-commit.ts';
import { commits, createStepCommitter, type StepRun } from './step-runtime.ts';

// The closes of a batch are written together (close_steps, migration 010): what each call answers, and
// what the order's row, ledger and history say after, must be what the calls would have left one at a
// time, in the batch's order. The pipeline tests run the same commits through real workers.

const dbName = `orderflow_test_${randomBytes(4).toString('hex')}`;
let db: Db;
beforeAll(async () => {
  await adminQuery(`CREATE DATABASE "${dbName}" TEMPLATE "${inject('templateDatabase')}"`);
  db = await createDatabase({ url: databaseUrl(dbName), poolSize: 3, statementTimeoutMs: 10_000 });
  await db.query(sql.typeAlias('void')`
    INSERT INTO customers (id, name, email) VALUES ('cus_close_steps', 'Close Steps', 'close@example.com')`);
});
afterAll(async () => {
  await db?.end();
  await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
});

async function orderIn(status: string): Promise<string> {
  const id = randomUUID();
  await db.query(sql.typeAlias('void')`
    INSERT INTO orders (id, customer_id, status, region, currency, total_cents, shipping_address, payment_token)
    VALUES (${id}, 'cus_close_steps', ${status}, 'eu', 'EUR', 100, '{}', 'tok')`);
  return id;
}

const run = (orderId: string, step: string, status: 'INVENTORY_CHECK' | 'PAYMENT_PROCESSING'): StepRun => ({
  orderId,
  generation: 1,
  step,
  attempt: 1,
  worker: 'test',
  startedAt: Date.now(),
  status,
  from: statusesBefore(status),
  afterFulfilment: false,
});

const order = { region: 'eu', items: [] };

async function written(orderId: string) {
  const status = await db.oneFirst(sql.type(z.object({ status: z.string() }))`
    SELECT status FROM orders WHERE id = ${orderId}`);
  const history = await db.any(sql.type(z.object({ from_status: z.string().nullable(), to_status: z.string() }))`
    SELECT from_status, to_status FROM order_history WHERE order_id = ${orderId} ORDER BY id`);
  const ledger = await db.any(sql.type(z.object({ step: z.string(), outcome: z.string() }))`
    SELECT step, outcome FROM step_attempts WHERE order_id = ${orderId} ORDER BY id`);
  return { status, history, ledger };
}

describe('a batch of step commits', () => {
  it('moves an order twice in one batch, in the batch order, as the parallel pair does one after the other', async () => {
    const batches: Array<[Lane, number]> = [];
    const committer = createStepCommitter(db, { onBatch: (lane, size) => batches.push([lane, size]) });
    const id = await orderIn('VALIDATING');
    const other = await orderIn('VALIDATING');
    const answers = await Promise.all([
      committer.commit(run(id, 'check-inventory', 'INVENTORY_CHECK'), commits.plain, { levels: [] }, order),
      committer.commit(run(other, 'check-inventory', 'INVENTORY_CHECK'), commits.plain, { levels: [] }, order),
      committer.commit(run(id, 'authorize-payment', 'PAYMENT_PROCESSING'), commits.plain, { auth: 'a' }, order),
    ]);
    expect(batches).toEqual([['plain', 3]]);
    expect(answers).toEqual([
      { state: 'done', output: { levels: [] }, moved: true },
      { state: 'done', output: { levels: [] }, moved: true },
      { state: 'done', output: { auth: 'a' }, moved: true },
    ]);
    expect(await written(id)).toEqual({
      status: 'PAYMENT_PROCESSING',
      history: [
        { from_status: 'VALIDATING', to_status: 'INVENTORY_CHECK' },
        { from_status: 'INVENTORY_CHECK', to_status: 'PAYMENT_PROCESSING' },
      ],
      ledger: [
        { step: 'check-inventory', outcome: 'succeeded' },
        { step: 'authorize-payment', outcome: 'succeeded' },
      ],
    });
    expect((await written(other)).status).toBe('INVENTORY_CHECK');
  });

  it('records a success without moving the order when its status has passed the step, and once only', async () => {
    const committer = createStepCommitter(db);
    // A late check-inventory (its job stalled and ran again after the order moved on).
    const id = await orderIn('RESERVED');
    const late = run(id, 'check-inventory', 'INVENTORY_CHECK');
    expect(await committer.commit(late, commits.plain, { levels: [1] }, order)).toEqual({
      state: 'done',
      output: { levels: [1] },
      moved: false,
    });
    // The same step in the same batch twice: the first success stands, the second attempt is skipped.
    const twice = await Promise.all([
      committer.commit({ ...late, step: 'notify' }, commits.plain, { sent: 1 }, order),
      committer.commit({ ...late, step: 'notify', attempt: 2 }, commits.plain, { sent: 2 }, order),
    ]);
    expect(twice).toEqual([
      { state: 'done', output: { sent: 1 }, moved: false },
      { state: 'done', output: { sent: 1 }, moved: false },
    ]);
    expect(await written(id)).toEqual({
      status: 'RESERVED',
      history: [],
      ledger: [
        { step: 'check-inventory', outcome: 'succeeded' },
        { step: 'notify', outcome: 'succeeded' },
        { step: 'notify', outcome: 'skipped' },
      ],
    });
  });

  it("still serves the previous version's workers under the old names, each step closed alone", async () => {
    // A rolling upgrade: a worker started before migration 010 calls finish_step, not stage_step.
    const id = await orderIn('VALIDATING');
    const oldRun = sql.jsonb(run(id, 'check-inventory', 'INVENTORY_CHECK') as never);
    const answer = await db.oneFirst(sql.type(z.object({ result: z.unknown() }))`
      SELECT finish_step(${oldRun}, ${sql.jsonb({ levels: [] })}) AS result`);
    expect(answer).toEqual({ state: 'done', output: { levels: [] }, moved: true });
    expect(await written(id)).toEqual({
      status: 'INVENTORY_CHECK',
      history: [{ from_status: 'VALIDATING', to_status: 'INVENTORY_CHECK' }],
      ledger: [{ step: 'check-inventory', outcome: 'succeeded' }],
    });
  });

  it('answers a call for an ended order as ended, and closes the others of its batch', async () => {
    const committer = createStepCommitter(db);
    const ended = await orderIn('CANCELLED');
    const live = await orderIn('VALIDATING');
    const answers = await Promise.all([
      committer.commit(run(ended, 'check-inventory', 'INVENTORY_CHECK'), commits.plain, {}, order),
      committer.commit(run(live, 'check-inventory', 'INVENTORY_CHECK'), commits.plain, {}, order),
    ]);
    expect(answers).toEqual([
      { state: 'ended', status: 'CANCELLED' },
      { state: 'done', output: {}, moved: true },
    ]);
    expect(await written(ended)).toEqual({ status: 'CANCELLED', history: [], ledger: [] });
  });
});
