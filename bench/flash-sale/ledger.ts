import pg from 'pg';
import { terminalStatuses } from '../../domain/order-status.ts';
import { epochNow, sleep } from '../support.ts';

// What PostgreSQL, the source of truth, says about the race: the SKU's stock polled while it runs, the
// accepted orders until each is terminal, and at the end the facts the results are judged on (who got
// the units, whether more were sold than there were, when the last one went).

export type StockLevel = { available: number; reserved: number; shipped: number; onHand: number };
/** [epoch ms, units available] */
export type StockSample = [number, number];
export type StatusCount = { status: string; failureReason: string | null; orders: number };

export class Ledger {
  readonly #client: pg.Client;
  readonly #sku: string;
  readonly #region: string;

  constructor(databaseUrl: string, sku: string, region: string) {
    this.#client = new pg.Client({ connectionString: databaseUrl });
    [this.#sku, this.#region] = [sku, region];
  }

  async connect(): Promise<void> {
    await this.#client.connect();
  }

  close(): Promise<void> {
    return this.#client.end();
  }

  async stock(): Promise<StockLevel> {
    const { rows } = await this.#client.query<StockLevel>({
      name: 'flash-bench-stock',
      text: `SELECT available, reserved, shipped, on_hand AS "onHand" FROM inventory WHERE sku = $1 AND region = $2`,
      values: [this.#sku, this.#region],
    });
    if (!rows[0]) throw new Error(`${this.#sku} has no stock row in region ${this.#region}`);
    return rows[0];
  }

  async statusCounts(orderIds: readonly string[]): Promise<StatusCount[]> {
    const { rows } = await this.#client.query<StatusCount>({
      name: 'flash-bench-status-counts',
      text: `SELECT status, failure_reason AS "failureReason", count(*)::int AS orders
        FROM orders WHERE id = ANY($1::uuid[]) GROUP BY 1, 2 ORDER BY 3 DESC`,
      values: [orderIds],
    });
    return rows;
  }

  /** The facts at the end, for orders placed since `since` (epoch ms) and the accepted ones. */
  async facts(since: number, acceptedIds: readonly string[]) {
    const movements = await this.#client.query<{ kind: string; quantity: number; availableAfter: number; at: number }>(
      `SELECT kind, quantity, available_after AS "availableAfter", (extract(epoch FROM created_at) * 1000)::float8 AS at
      FROM stock_movements WHERE sku = $1 AND region = $2 AND created_at >= to_timestamp($3::float8 / 1000) ORDER BY id`,
      [this.#sku, this.#region, since],
    );
    // Units of this SKU in orders that did not fail or get cancelled: what the shop owes its buyers.
    const owed = await this.#client.query<{ units: number; orders: number }>(
      `SELECT coalesce(sum(i.quantity), 0)::int AS units, count(DISTINCT o.id)::int AS orders
      FROM orders o JOIN order_items i ON i.order_id = o.id
      WHERE i.sku = $1 AND o.region = $2 AND o.created_at >= to_timestamp($3::float8 / 1000)
        AND o.status NOT IN ('FAILED', 'CANCELLED')`,
      [this.#sku, this.#region, since],
    );
    const lastTerminal = await this.#client.query<{ at: number | null }>(
      `SELECT (extract(epoch FROM max(at)) * 1000)::float8 AS at FROM order_history
      WHERE order_id = ANY($1::uuid[]) AND to_status = ANY($2::text[])`,
      [acceptedIds, terminalStatuses],
    );
    const deadLetters = await this.#client.query<{ status: string; errorCode: string; letters: number }>(
      `SELECT status, error_code AS "errorCode", count(*)::int AS letters FROM dead_letters
      WHERE order_id = ANY($1::text[]) GROUP BY 1, 2 ORDER BY 3 DESC`,
      [acceptedIds],
    );
    const rows = movements.rows;
    const sum = (kind: string) => rows.filter((m) => m.kind === kind).reduce((total, m) => total + m.quantity, 0);
    return {
      stock: await this.stock(),
      owedUnits: owed.rows[0]!.units,
      owingOrders: owed.rows[0]!.orders,
      reservedUnits: sum('reserve'),
      releasedUnits: sum('release'),
      lowestAvailable: rows.reduce((low, m) => Math.min(low, m.availableAfter ?? low), Number.POSITIVE_INFINITY),
      soldOutAt: soldOutAt(rows),
      lastTerminalAt: lastTerminal.rows[0]?.at ?? null,
      deadLetters: deadLetters.rows,
    };
  }
}
export type LedgerFacts = Awaited<ReturnType<Ledger['facts']>>;

/** The reservation that took the last unit for good: available reached 0 and never rose again. */
export function soldOutAt(movements: ReadonlyArray<{ kind: string; availableAfter: number; at: number }>) {
  let at: number | null = null;
  for (const m of movements) {
    if (m.availableAfter > 0) at = null;
    else if (m.kind === 'reserve' && at === null) at = m.at;
  }
  return at;
}

/** Polls the SKU's available units every `intervalMs` on a connection of its own, until stopped. */
export async function startStockPoller(databaseUrl: string, sku: string, region: string, intervalMs: number) {
  const ledger = new Ledger(databaseUrl, sku, region);
  await ledger.connect();
  const samples: StockSample[] = [];
  let running = true;
  let failure: unknown;
  const loop = (async () => {
    while (running) {
      const { available } = await ledger.stock();
      samples.push([epochNow(), available]);
      await sleep(intervalMs);
    }
  })().catch((error: unknown) => {
    failure = error;
  });
  let stopped: Promise<void> | undefined;
  return {
    samples,
    stop(): Promise<void> {
      running = false;
      stopped ??= (async () => {
        await loop;
        await ledger.close();
        if (failure) throw new Error('the stock poller failed', { cause: failure });
      })();
      return stopped;
    },
  };
}

const terminal = new Set<string>(terminalStatuses);

/**
 * Waits until every accepted order is terminal. Gives up, without failing, after `stallMs` without one
 * more finishing: the results then count the orders still open. Fails on `failure()` (a process died).
 */
export async function waitForTerminal(
  ledger: Ledger,
  orderIds: readonly string[],
  options: {
    signal: AbortSignal;
    stallMs: number;
    failure: () => string | undefined;
    onProgress: (terminal: number) => void;
  },
): Promise<{ counts: StatusCount[]; open: number }> {
  let [last, since] = [-1, performance.now()];
  for (;;) {
    options.signal.throwIfAborted();
    const failed = options.failure();
    if (failed) throw new Error(`while the accepted orders were finishing, ${failed}`);
    const counts = await ledger.statusCounts(orderIds);
    const done = counts.reduce((sum, c) => sum + (terminal.has(c.status) ? c.orders : 0), 0);
    options.onProgress(done);
    if (done >= orderIds.length) return { counts, open: 0 };
    if (done !== last) [last, since] = [done, performance.now()];
    else if (performance.now() - since > options.stallMs) return { counts, open: orderIds.length - done };
    await sleep(200);
  }
}
