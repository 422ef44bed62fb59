import { z } from 'zod';
import type { createApp } from '../api/app.ts';
import { type Db, sql } from '../sql/database.ts';
import { epochNow, roundTo, sleep } from './support.ts';

// How fresh GET /inventory/{sku} is: a poller records every answer, and each committed reservation (a
// stock_movements row) is matched with the first answer that shows it.

export type StockPoll = { at: number; available: number; hot: boolean; source: string; ttlMs: number };
export type StockChange = { id: string; createdAtMs: number; availableAfter: number; publishedAtMs: number | null };
type App = ReturnType<typeof createApp>;

/** Asks for the SKU's stock every `intervalMs` (plus the request's own time) until stopped. */
export function startStockPoller(app: App, apiKey: string, sku: string, region: string, intervalMs: number) {
  const polls: StockPoll[] = [];
  let running = true;
  let failure: unknown;
  const loop = (async () => {
    while (running) {
      const response = await app.request(`/inventory/${sku}?region=${region}`, {
        headers: { authorization: `Bearer ${apiKey}` },
      });
      const body = (await response.json()) as StockPoll;
      const at = epochNow();
      if (response.status !== 200)
        throw new Error(`GET /inventory answered ${response.status}: ${JSON.stringify(body)}`);
      polls.push({ at, available: body.available, hot: body.hot, source: body.source, ttlMs: body.ttlMs });
      await sleep(intervalMs);
    }
  })().catch((error: unknown) => {
    failure = error;
  });
  return {
    polls,
    /** The poller's error, if it stopped on one. */
    failure: () => failure,
    async stop(): Promise<void> {
      running = false;
      await loop;
      if (failure) throw new Error('the stock poller failed', { cause: failure });
    },
  };
}

/**
 * The reservations of these orders on one SKU, in commit order. created_at is clock_timestamp() at the
 * INSERT, inside the reserving transaction; its COMMIT is the next statement. published_at is now() in
 * the outbox relay's transaction: when the relay picked the row up.
 */
export async function readReservations(db: Db, sku: string, region: string, orderIds: readonly string[]) {
  const row = z.object({
    id: z.coerce.string(),
    createdAtMs: z.number(),
    availableAfter: z.number(),
    publishedAtMs: z.number().nullable(),
  });
  const rows = await db.any(sql.type(row)`
    SELECT id, (extract(epoch FROM created_at) * 1000)::float8 AS "createdAtMs", available_after AS "availableAfter",
      (extract(epoch FROM published_at) * 1000)::float8 AS "publishedAtMs"
    FROM stock_movements
    WHERE sku = ${sku} AND region = ${region} AND kind = 'reserve' AND order_id = ANY(${sql.array([...orderIds], 'uuid')})
    ORDER BY id`);
  return [...rows] as StockChange[];
}

/** PostgreSQL's clock minus ours, from the quickest of a few round trips: lags compare the two clocks. */
export async function clockOffset(db: Db) {
  let best = { offsetMs: Number.NaN, uncertaintyMs: Number.POSITIVE_INFINITY };
  for (let i = 0; i < 10; i++) {
    const before = epochNow();
    const pgNow = await db.oneFirst(sql.type(z.object({ now: z.number() }))`
      SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now`);
    const after = epochNow();
    if ((after - before) / 2 < best.uncertaintyMs) {
      best = { offsetMs: roundTo(pgNow - (before + after) / 2, 2), uncertaintyMs: roundTo((after - before) / 2, 2) };
    }
  }
  return best;
}

/**
 * For each change, how long until an answer showed it: the first answer at or after the change whose
 * `available` is at or below the change's `available_after` (during a burst of reservations `available`
 * only goes down, so a later, lower value shows this change too). Changes never shown are counted apart.
 */
export function reflectionLags(polls: readonly StockPoll[], changes: readonly StockChange[]) {
  const lags: number[] = [];
  let unreflected = 0;
  for (const change of changes) {
    let i = firstAtOrAfter(polls, change.createdAtMs);
    while (i < polls.length && polls[i]!.available > change.availableAfter) i += 1;
    if (i === polls.length) unreflected += 1;
    else lags.push(polls[i]!.at - change.createdAtMs);
  }
  return { lags, unreflected };
}

function firstAtOrAfter(polls: readonly StockPoll[], at: number): number {
  let low = 0;
  let high = polls.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (polls[mid]!.at < at) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Gaps between consecutive answers: the resolution of the measurement. */
export function pollGaps(polls: readonly StockPoll[]): number[] {
  return polls.slice(1).map((p, i) => p.at - polls[i]!.at);
}
