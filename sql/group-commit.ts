import { z } from 'zod';
import { type Db, sql } from './database.ts';

// Group commit: the calls that a process has waiting at one moment go to PostgreSQL as one statement,
// so they share one round trip and one commit (one WAL flush) instead of paying one each. The step
// runtime sends every step's commit through one (sql/step-runtime.ts).
//
// - Nothing waits for company. A call goes out at once when no batch of its lane is in flight; the
//   calls that arrive while one is in flight go together in the next. An idle system sends batches of
//   one, so a lone order is as fast as without grouping.
// - Each call is a whole unit of work of its own (a step's commit), so a batch is only these calls side
//   by side; they run in order of order id. Every batch therefore locks order rows in the same order,
//   and two batches cannot deadlock on them.
// - A batch of calls that lock inventory rows (a reservation, a shipment) first locks every order row
//   it names, then every inventory row, each in order: the lock order of every writer, order rows first
//   and then inventory rows in SKU order (sql/migrations/003_step_runtime.sql), stretched over the
//   batch. Without it, two batches could each hold a SKU the other waits for.
// - When a batch fails as a whole (one call raised an error), its calls run again one at a time, so
//   the error reaches the one call it belongs to and the others commit as they would have alone.

/** An SQL expression, as the calls of a batch are given. */
export type Fragment = ReturnType<typeof sql.fragment>;
export type StockRow = { sku: string; region: string };
export type Lane = 'plain' | 'stock';

type Waiting<Answer> = {
  orderId: string;
  stock: readonly StockRow[];
  call: Fragment;
  resolve(answer: Answer): void;
  reject(error: unknown): void;
};

export type GroupCommit<Answer> = {
  /**
   * Runs `call` (an SQL expression whose value is the answer) in the next batch of its lane and
   * answers with its own value. `stock`: the inventory rows the call locks, if any.
   */
  run(orderId: string, call: Fragment, stock?: readonly StockRow[]): Promise<Answer>;
};

export type GroupCommitOptions = {
  /** The most calls in one statement. */
  maxBatch?: number;
  /**
   * The answers of a batch (a lone call too), as an expression over `calls`: the calls' values as a
   * `jsonb[]`, evaluated in the batch's order. Its value is the JSON array of their answers, in the
   * same order. By default the calls' values themselves; the step runtime closes the batch's steps
   * together in it (sql/step-runtime.ts).
   */
  combine?(calls: Fragment): Fragment;
  /** Told the size of every batch sent, for the metrics. */
  onBatch?(lane: Lane, size: number): void;
  /** Told of a batch that failed as a whole (its calls then ran one at a time), for the log. */
  onBatchFailed?(lane: Lane, size: number, error: unknown): void;
};

const asArray = (calls: Fragment) => sql.fragment`to_jsonb(${calls})`;

export function createGroupCommit<Answer>(
  db: Db,
  answer: z.ZodType<Answer>,
  { maxBatch = 64, combine = asArray, onBatch, onBatchFailed }: GroupCommitOptions = {},
): GroupCommit<Answer> {
  const row = z.object({ answers: z.array(answer) });
  // An ARRAY[] evaluates its elements in order, so the calls run (and lock) in the batch's order.
  const statement = (calls: Array<Waiting<Answer>>) => {
    const values = sql.fragment`ARRAY[${sql.join(
      calls.map((c) => c.call),
      sql.fragment`, `,
    )}]::jsonb[]`;
    return sql.type(row)`SELECT ${combine(values)} AS answers`;
  };
  const lanes = { plain: lane('plain'), stock: lane('stock') };

  function lane(name: Lane) {
    const waiting: Array<Waiting<Answer>> = [];
    let inFlight = false;
    const flush = () => {
      if (inFlight || waiting.length === 0) return;
      inFlight = true;
      const batch = waiting.splice(0, maxBatch);
      report(() => onBatch?.(name, batch.length));
      send(batch, name).finally(() => {
        inFlight = false;
        flush();
      });
    };
    return { waiting, flush };
  }

  // Never rejects: every call's own promise is settled instead.
  async function send(batch: Array<Waiting<Answer>>, lane: Lane): Promise<void> {
    if (batch.length === 1) return one(batch[0]!);
    batch.sort((a, b) => (a.orderId < b.orderId ? -1 : a.orderId > b.orderId ? 1 : 0));
    let answers: Answer[];
    try {
      answers = await together(batch, lane);
      if (answers.length !== batch.length) throw new Error(`${answers.length} answers for ${batch.length} calls`);
    } catch (error) {
      report(() => onBatchFailed?.(lane, batch.length, error));
      for (const call of batch) await one(call);
      return;
    }
    for (const [i, call] of batch.entries()) call.resolve(answers[i]!);
  }

  // A metric or a log line that fails must never strand or fail the commits it describes.
  function report(observe: () => void): void {
    try {
      observe();
    } catch {}
  }

  async function one(call: Waiting<Answer>): Promise<void> {
    await db.oneFirst(statement([call])).then((answers) => call.resolve(answers[0]!), call.reject);
  }

  async function together(batch: Array<Waiting<Answer>>, lane: Lane): Promise<Answer[]> {
    if (lane === 'plain') return db.oneFirst(statement(batch));
    return db.transaction(async (tx) => {
      const orders = [...new Set(batch.map((call) => call.orderId))];
      const stock = batch.flatMap((call) => call.stock);
      await tx.query(sql.typeAlias('void')`
        SELECT FROM orders WHERE id = ANY(${sql.array(orders, 'uuid')}) ORDER BY id FOR UPDATE`);
      await tx.query(sql.typeAlias('void')`
        SELECT FROM inventory
        WHERE (sku, region) IN (
          SELECT * FROM unnest(${sql.array(
            stock.map((s) => s.sku),
            'text',
          )}, ${sql.array(
            stock.map((s) => s.region),
            'text',
          )}))
        ORDER BY sku, region FOR UPDATE`);
      return tx.oneFirst(statement(batch));
    });
  }

  return {
    run(orderId, call, stock = []) {
      const target = stock.length > 0 ? lanes.stock : lanes.plain;
      return new Promise<Answer>((resolve, reject) => {
        target.waiting.push({ orderId: orderId.toLowerCase(), stock, call, resolve, reject });
        // The calls made in the same tick go out together.
        queueMicrotask(target.flush);
      });
    },
  };
}
