import { z } from 'zod';
import { parseHotSku, type RedisKeys } from '../../cache/keys.ts';
import type { HotSku as HotEntry } from '../../domain/heat.ts';
import { isTerminal, type OrderStatus, orderStatuses } from '../../domain/order-status.ts';
import type { RedisClient } from '../../runtime/redis.ts';
import { type Db, sql } from '../../sql/database.ts';
import type { Check } from './invariants.ts';
import { type HotSku, isFor, type LoadResult, type PlannedOrder, type RefusalCode, refusalCodes } from './load.ts';

// The flash sale of the run: one SKU with little stock, declared on sale through the admin API before the
// load, so that the controller makes it hot; a share of the orders asks for it, more units than there
// are. While the load runs, the hot SKU hash is read every half second: the SKU must stay hot through the
// controller's kills and restarts, Redis's restart and PostgreSQL's.

export const HOT_SKU: HotSku = { sku: 'CHAINSAW-05', region: 'eu' };
/** The sale outlasts the run: the SKU is hot for a declared reason from start to finish. */
const SALE_LENGTH_MS = 60 * 60_000;
const HOT_POLL_MS = 100;
const HOT_TIMEOUT_MS = 15_000;
const WATCH_EVERY_MS = 500;
const EXAMPLES = 8;

export type Heat = { hot: boolean; afterMs: number; entry: HotEntry | null };
export type HeatWatch = { samples: number; hot: number; unreadable: number; notHot: string[] };
export type HotSkuOutcome = {
  sku: string;
  region: string;
  stock: number;
  flashSaleId: number;
  becameHot: Heat;
  watch: HeatWatch;
  planned: { orders: number; units: number };
  accepted: number;
  refused: Record<RefusalCode, number>;
  byStatus: Partial<Record<OrderStatus, number>>;
  unitsSold: number;
  soldOut: boolean;
};

/**
 * Declares the sale, waits until the controller has made the SKU hot (or gives up after 15 s: the check
 * fails then), and reads the hot hash every half second from then on until `stopWatching`.
 */
export async function startFlashSale(options: {
  apiUrl: string;
  adminKey: string;
  redis: RedisClient;
  keys: RedisKeys;
  hot: HotSku;
  log: (message: string) => void;
}): Promise<{ id: number; becameHot: Heat; stopWatching(): Promise<HeatWatch> }> {
  const { redis, keys, hot } = options;
  const id = await declareFlashSale(options.apiUrl, options.adminKey, hot);
  const becameHot = await waitUntilHot(redis, keys, hot, HOT_TIMEOUT_MS);
  options.log(
    `flash sale ${id} declared for ${hot.sku}/${hot.region}: ` +
      `${becameHot.hot ? 'hot' : 'NOT hot'} after ${becameHot.afterMs} ms`,
  );
  const watch = watchHeat(redis, keys, hot);
  return { id, becameHot, stopWatching: watch.stop };
}

/** POST /admin/flash-sales for the hot SKU, from now on; retried while the API answers 503 or not at all. */
async function declareFlashSale(apiUrl: string, adminKey: string, hot: HotSku): Promise<number> {
  const now = Date.now();
  const body = {
    name: `fault suite: ${hot.sku}`,
    region: hot.region,
    skus: [hot.sku],
    startsAt: new Date(now - 1_000).toISOString(),
    endsAt: new Date(now + SALE_LENGTH_MS).toISOString(),
  };
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${apiUrl}/admin/flash-sales`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
    if (response?.status === 201) return ((await response.json()) as { id: number }).id;
    const answer = response ? `${response.status} ${await response.text()}` : 'no answer';
    if ((response && response.status !== 503) || attempt >= 10)
      throw new Error(`POST /admin/flash-sales answered ${answer}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function readHeat(redis: RedisClient, keys: RedisKeys, hot: HotSku): Promise<HotEntry | null> {
  const raw = await redis.hget(keys.hotSkus, keys.hotSkuField(hot.region, hot.sku));
  return raw === null ? null : parseHotSku(raw);
}

/** Polls the hot hash until the controller has written the SKU's entry, or the time is up. */
async function waitUntilHot(redis: RedisClient, keys: RedisKeys, hot: HotSku, timeoutMs: number): Promise<Heat> {
  const start = Date.now();
  for (;;) {
    const entry = await readHeat(redis, keys, hot).catch(() => null);
    if (entry || Date.now() - start > timeoutMs) return { hot: entry !== null, afterMs: Date.now() - start, entry };
    await new Promise((resolve) => setTimeout(resolve, HOT_POLL_MS));
  }
}

/** Reads the SKU's entry every half second until stopped; a sample while Redis is down is unreadable. */
function watchHeat(redis: RedisClient, keys: RedisKeys, hot: HotSku): { stop(): Promise<HeatWatch> } {
  const watch: HeatWatch = { samples: 0, hot: 0, unreadable: 0, notHot: [] };
  const start = Date.now();
  let stopped = false;
  const running = (async () => {
    while (!stopped) {
      const sampled = Date.now();
      const entry = await readHeat(redis, keys, hot).then(
        (e) => e ?? ('absent' as const),
        () => undefined,
      );
      watch.samples += 1;
      if (entry === undefined) watch.unreadable += 1;
      else if (entry === 'absent') watch.notHot.push(`${((sampled - start) / 1000).toFixed(1)} s`);
      else watch.hot += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, sampled + WATCH_EVERY_MS - Date.now())));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await running;
      return watch;
    },
  };
}

const statusCount = z.object({ status: z.enum(orderStatuses), n: z.number(), units: z.number() });

/** What became of the orders for the hot SKU: the plan, the door's answers, the database's outcome. */
export async function readHotSkuOutcome(options: {
  db: Db;
  hot: HotSku;
  stock: number;
  flashSaleId: number;
  becameHot: Heat;
  watch: HeatWatch;
  orders: PlannedOrder[];
  load: LoadResult;
}): Promise<HotSkuOutcome> {
  const { db, hot } = options;
  const forHot = options.orders.filter((o) => isFor(o.body, hot));
  const hotKeys = new Set(forHot.map((o) => o.key));
  const refused = Object.fromEntries(refusalCodes.map((code) => [code, 0])) as Record<RefusalCode, number>;
  for (const r of options.load.refused) if (hotKeys.has(r.key)) refused[r.code] += 1;
  const rows = await db.any(sql.type(statusCount)`
    SELECT o.status, count(*)::int AS n, sum(i.quantity)::int AS units
    FROM orders o JOIN order_items i ON i.order_id = o.id
    WHERE i.sku = ${hot.sku} AND o.region = ${hot.region} GROUP BY o.status`);
  const soldOut = await db.exists(sql.type(z.object({ exists: z.boolean() }))`
    SELECT 1 FROM stock_movements WHERE sku = ${hot.sku} AND region = ${hot.region} AND available_after = 0`);
  return {
    ...hot,
    stock: options.stock,
    flashSaleId: options.flashSaleId,
    becameHot: options.becameHot,
    watch: options.watch,
    planned: {
      orders: forHot.length,
      units: forHot.reduce((n, o) => n + o.body.items.find((i) => i.sku === hot.sku)!.quantity, 0),
    },
    accepted: rows.reduce((n, r) => n + r.n, 0),
    refused,
    byStatus: Object.fromEntries(rows.map((r) => [r.status, r.n])),
    unitsSold: rows.find((r) => r.status === 'COMPLETED')?.units ?? 0,
    soldOut,
  };
}

/** The flash sale's own checks; oversell is checked for every SKU (oversell.ts). */
export function flashSaleChecks(o: HotSkuOutcome): Check[] {
  const name = `${o.sku}/${o.region}`;
  const check = (what: string, problems: string[]): Check => ({
    name: what,
    failures: problems.length,
    examples: problems.slice(0, EXAMPLES),
  });
  return [
    check(
      `the controller made ${name} hot once its sale was declared (before the load)`,
      o.becameHot.hot ? [] : [`not in the hot SKU hash after ${(o.becameHot.afterMs / 1000).toFixed(1)} s`],
    ),
    check(
      `${name} stayed hot through the kills and restarts (hot hash read every ${WATCH_EVERY_MS} ms)`,
      o.watch.notHot.map((at) => `not hot at ${at} into the load`),
    ),
    check(
      `the load asked for more of ${name} than its stock, and it sold out`,
      o.planned.units > o.stock && o.soldOut
        ? []
        : [`${o.planned.units} units planned for a stock of ${o.stock}; sold out: ${o.soldOut}`],
    ),
    check(
      `every order for ${name} is terminal`,
      Object.entries(o.byStatus).flatMap(([status, n]) =>
        isTerminal(status as OrderStatus) ? [] : [`${n} orders ${status}`],
      ),
    ),
    check(
      `${name}: units sold (COMPLETED) <= its stock`,
      o.unitsSold <= o.stock ? [] : [`${o.unitsSold} units sold of ${o.stock}`],
    ),
  ];
}

/** The run's summary of the flash sale, for the report's table. */
export function describeHotSku(o: HotSkuOutcome): Array<[string, string]> {
  const statuses =
    Object.entries(o.byStatus)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  return [
    [
      'hot SKU (declared flash sale)',
      `${o.sku}/${o.region}, stock ${o.stock}: hot ${(o.becameHot.afterMs / 1000).toFixed(1)} s after the sale ` +
        `was declared (${o.becameHot.entry?.reasons.join(', ') ?? 'never'}); hot in ${o.watch.hot} of ` +
        `${o.watch.samples} samples (${o.watch.unreadable} unreadable)`,
    ],
    [
      'orders for the hot SKU',
      `${o.planned.orders} planned (${o.planned.units} units); accepted ${o.accepted} (${statuses}); ` +
        `refused ${refusalCodes.map((c) => `${c} ${o.refused[c]}`).join(', ')}`,
    ],
    ['hot SKU units sold / stock', `${o.unitsSold} / ${o.stock}${o.soldOut ? ' (sold out during the run)' : ''}`],
  ];
}
