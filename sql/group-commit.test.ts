import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { databaseUrl } from '../test/support/env.ts';
import { adminQuery } from '../test/support/global-setup.ts';
import { waitFor } from '../test/support/wait-for.ts';
import { createDatabase, type Db, sql } from './database.ts';
import { createGroupCommit, type Lane } from './group-commit.ts';

// The group commit's own contract, with plain expressions for calls: what goes out together, and what
// one failing call does to the others. The step runtime's use of it (real step commits from two worker
// pools at once, without a deadlock) is test/deadlocks.test.ts.

// A migrated database of the file's own: the stock lane locks rows of orders and inventory.
const dbName = `orderflow_test_${randomBytes(4).toString('hex')}`;
let db: Db;
beforeAll(async () => {
  await adminQuery(`CREATE DATABASE "${dbName}" TEMPLATE "${inject('templateDatabase')}"`);
  db = await createDatabase({ url: databaseUrl(dbName), poolSize: 3, statementTimeoutMs: 10_000 });
});
afterAll(async () => {
  await db?.end();
  await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
});

const answer = z.object({ n: z.number() });
const numbered = (n: number) => sql.fragment`jsonb_build_object('n', ${n}::int)`;
const orderId = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function recorder() {
  const batches: Array<[Lane, number]> = [];
  return { batches, onBatch: (lane: Lane, size: number) => batches.push([lane, size]) };
}

describe('createGroupCommit', () => {
  it('sends the calls made in one tick as one statement, each answered with its own value', async () => {
    const seen = recorder();
    const group = createGroupCommit(db, answer, seen);
    const answers = await Promise.all([5, 3, 9, 1].map((n) => group.run(orderId(10 - n), numbered(n))));
    expect(answers).toEqual([{ n: 5 }, { n: 3 }, { n: 9 }, { n: 1 }]);
    expect(seen.batches).toEqual([['plain', 4]]);
  });

  it('sends a lone call at once, and the calls that come while it runs together after it', async () => {
    const seen = recorder();
    const group = createGroupCommit(db, answer, seen);
    const holder = new pg.Client({ connectionString: databaseUrl(dbName) });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(4242)');
      const first = group.run(
        orderId(1),
        sql.fragment`(SELECT jsonb_build_object('n', 1) FROM pg_advisory_xact_lock(4242))`,
      );
      await waitFor(
        'the first batch to wait on the lock',
        () => holder.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"),
        (r) => r.rows[0].n === 1,
      );
      const later = [2, 3, 4].map((n) => group.run(orderId(n), numbered(n)));
      expect(seen.batches).toEqual([['plain', 1]]);
      await holder.query('SELECT pg_advisory_unlock(4242)');
      expect(await Promise.all([first, ...later])).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
      expect(seen.batches).toEqual([
        ['plain', 1],
        ['plain', 3],
      ]);
    } finally {
      await holder.end();
    }
  });

  it('gives a failing call its own error and commits the others as if alone', async () => {
    const seen = recorder();
    const group = createGroupCommit(db, answer, seen);
    await db.query(sql.typeAlias('void')`CREATE TABLE group_commit_test (n integer PRIMARY KEY)`);
    await db.query(sql.typeAlias('void')`
      CREATE FUNCTION group_commit_test_insert(p_n integer, p_divisor integer) RETURNS jsonb LANGUAGE sql AS $$
        INSERT INTO group_commit_test VALUES (p_n / p_divisor) RETURNING jsonb_build_object('n', n)
      $$`);
    const insert = (n: number, divisor: number) => sql.fragment`group_commit_test_insert(${n}::int, ${divisor}::int)`;
    const results = await Promise.allSettled([
      group.run(orderId(1), insert(1, 1)),
      group.run(orderId(2), insert(2, 0)),
      group.run(orderId(3), insert(3, 1)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toMatch(/division by zero/);
    const written = await db.any(sql.type(z.object({ n: z.number() }))`SELECT n FROM group_commit_test ORDER BY n`);
    expect(written.map((r) => r.n)).toEqual([1, 3]);
    // The batch of three failed as a whole; its calls went again one at a time.
    expect(seen.batches).toEqual([['plain', 3]]);
  });

  it('answers its calls even when the metric it reports to throws', async () => {
    const group = createGroupCommit(db, answer, {
      onBatch: () => {
        throw new Error('registry gone');
      },
    });
    expect(await Promise.all([group.run(orderId(1), numbered(1)), group.run(orderId(2), numbered(2))])).toEqual([
      { n: 1 },
      { n: 2 },
    ]);
    expect(await group.run(orderId(3), numbered(3))).toEqual({ n: 3 });
  });

  it('runs the calls that lock stock in a lane of their own, which locks their rows first', async () => {
    const seen = recorder();
    const group = createGroupCommit(db, answer, seen);
    // Inside the stock batch, a call finds the transaction it runs in holding row locks (FOR UPDATE) on
    // both tables already: the batch locked the order rows and the inventory rows before any call ran.
    const locked = (n: number) => sql.fragment`(
      SELECT jsonb_build_object('n', ${n}::int) WHERE (
        SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
        WHERE l.pid = pg_backend_pid() AND c.relname IN ('orders', 'inventory') AND l.mode = 'RowShareLock') = 2)`;
    const answers = await Promise.all([
      group.run(orderId(1), locked(1), [{ sku: 'BERSERK-41', region: 'eu' }]),
      group.run(orderId(2), numbered(2)),
      group.run(orderId(3), locked(3), [{ sku: 'ONEPIECE-105', region: 'eu' }]),
    ]);
    expect(answers).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(seen.batches.sort()).toEqual([
      ['plain', 1],
      ['stock', 2],
    ]);
  });

  it('never deadlocks between two processes whose stock batches cross SKUs', async () => {
    // Two group commits stand for two worker processes. Batch A's first call locks SKU X and its second
    // then wants Y; batch B's first locks Y and its second wants X. Advisory locks the test holds keep
    // each batch between its two calls until both have started. Without the stock lane's locking of
    // every row first, in order, the two would deadlock (PostgreSQL would break it after
    // deadlock_timeout, failing one batch as a whole; slonik would then run its statement again). Each
    // call takes a number from a sequence, which a rollback does not give back: four calls that ran
    // once take four numbers.
    await db.query(sql.typeAlias('void')`CREATE SEQUENCE group_commit_test_calls`);
    await db.query(sql.typeAlias('void')`
      INSERT INTO catalog (sku, name, price_cents, currency) VALUES ('GC-X', 'X', 100, 'EUR'), ('GC-Y', 'Y', 100, 'EUR')`);
    await db.query(sql.typeAlias('void')`
      INSERT INTO inventory (sku, region, on_hand, available) VALUES ('GC-X', 'eu', 5, 5), ('GC-Y', 'eu', 5, 5)`);
    await db.query(sql.typeAlias('void')`
      CREATE FUNCTION group_commit_test_lock(p_wait bigint, p_sku text) RETURNS jsonb LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM nextval('group_commit_test_calls');
        IF p_wait IS NOT NULL THEN
          PERFORM pg_advisory_xact_lock(p_wait);
        END IF;
        PERFORM 1 FROM inventory WHERE sku = p_sku AND region = 'eu' FOR UPDATE;
        RETURN jsonb_build_object('n', 1);
      END $$`);
    const lock = (wait: number | null, sku: string) => sql.fragment`group_commit_test_lock(${wait}::bigint, ${sku})`;
    const failed: unknown[] = [];
    const processes = [1, 2].map(() =>
      createGroupCommit(db, answer, { onBatchFailed: (_lane, _size, error) => failed.push(error) }),
    );
    const holder = new pg.Client({ connectionString: databaseUrl(dbName) });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(1), pg_advisory_lock(2)');
      const stock = (sku: string) => [{ sku, region: 'eu' }];
      const batches = [
        [
          processes[0]!.run(orderId(1), lock(null, 'GC-X'), stock('GC-X')),
          processes[0]!.run(orderId(2), lock(1, 'GC-Y'), stock('GC-Y')),
        ],
        [
          processes[1]!.run(orderId(3), lock(null, 'GC-Y'), stock('GC-Y')),
          processes[1]!.run(orderId(4), lock(2, 'GC-X'), stock('GC-X')),
        ],
      ];
      await waitFor(
        'both batches to have started and to wait',
        () => holder.query('SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted'),
        (r) => r.rows[0].n === 2,
      );
      await holder.query('SELECT pg_advisory_unlock(1), pg_advisory_unlock(2)');
      expect(await Promise.all(batches.flat())).toEqual([{ n: 1 }, { n: 1 }, { n: 1 }, { n: 1 }]);
      expect(failed).toEqual([]);
      const calls = await holder.query('SELECT last_value::int AS n FROM group_commit_test_calls');
      expect(calls.rows[0].n).toBe(4);
    } finally {
      await holder.end();
    }
  });
});
