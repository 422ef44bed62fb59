import { z } from 'zod';
import { type Db, sql } from '../../sql/database.ts';
import { type Check, type StockRow, stockRow } from './invariants.ts';

// Oversell 0, per SKU and region, read every two seconds while the load and the faults run and once more
// when the system is quiet: `available` never negative, `on_hand = available + reserved + shipped`, and
// the units held by the orders that still hold goods (reserved or shipped by an order that is not FAILED
// or CANCELLED, less what came back from them restocked by a return) never more than the stock that was
// there: on hand at the start plus what came in since.
// Both sides of the last comparison are read in one statement, so one snapshot: a restock committing
// between two reads cannot make a false alarm.

const EVERY_MS = 2_000;
const EXAMPLES = 8;

const row = stockRow.extend({ held: z.number(), came_in: z.number() });
type Row = z.infer<typeof row>;

export type OversellWatch = { samples: number; unreadable: number; problems: string[] };

async function readHoldings(db: Db, lastMovementBefore: number): Promise<readonly Row[]> {
  return db.any(sql.type(row)`
    WITH held AS (
      SELECT m.sku, m.region,
             sum(CASE m.kind WHEN 'reserve' THEN m.quantity WHEN 'release' THEN -m.quantity
                          WHEN 'return' THEN -m.quantity ELSE 0 END) AS units
      FROM stock_movements m JOIN orders o ON o.id = m.order_id
      WHERE o.status NOT IN ('FAILED', 'CANCELLED')
      GROUP BY m.sku, m.region
    ), came_in AS (
      SELECT sku, region, sum(quantity) AS units FROM stock_movements
      WHERE id > ${lastMovementBefore} AND kind IN ('restock', 'adjust') GROUP BY sku, region
    )
    SELECT i.sku, i.region, i.on_hand, i.available, i.reserved, i.shipped,
           coalesce(h.units, 0)::int AS held, coalesce(c.units, 0)::int AS came_in
    FROM inventory i LEFT JOIN held h USING (sku, region) LEFT JOIN came_in c USING (sku, region)
    ORDER BY i.sku, i.region`);
}

/** What is wrong with each SKU's stock, as `sku/region: ...`, with `when` in front. */
function oversold(rows: readonly Row[], initial: readonly StockRow[], when: string): string[] {
  const before = new Map(initial.map((r) => [`${r.sku}/${r.region}`, r.on_hand]));
  return rows.flatMap((r) => {
    const key = `${r.sku}/${r.region}`;
    const stock = (before.get(key) ?? 0) + r.came_in;
    const wrong: string[] = [];
    if (r.available < 0) wrong.push(`available ${r.available}`);
    if (r.on_hand !== r.available + r.reserved + r.shipped)
      wrong.push(`on_hand ${r.on_hand} != ${r.available} + ${r.reserved} + ${r.shipped}`);
    if (r.held > stock) wrong.push(`orders hold ${r.held} units of a stock of ${stock}`);
    return wrong.length > 0 ? [`${when} ${key}: ${wrong.join('; ')}`] : [];
  });
}

/** Samples every two seconds until stopped; a sample while PostgreSQL is away is unreadable. */
export function watchOversell(
  db: Db,
  initial: readonly StockRow[],
  lastMovementBefore: number,
): { stop(): Promise<OversellWatch> } {
  const watch: OversellWatch = { samples: 0, unreadable: 0, problems: [] };
  const start = Date.now();
  let stopped = false;
  let wake: () => void = () => {};
  const running = (async () => {
    while (!stopped) {
      const when = `${((Date.now() - start) / 1000).toFixed(1)} s into the load:`;
      const rows = await readHoldings(db, lastMovementBefore).catch(() => undefined);
      watch.samples += 1;
      if (rows) watch.problems.push(...oversold(rows, initial, when));
      else watch.unreadable += 1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, EVERY_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake();
      await running;
      return watch;
    },
  };
}

/** The last reading, once quiet, with what the watch found during the run. */
export async function checkOversell(
  db: Db,
  initial: readonly StockRow[],
  lastMovementBefore: number,
  watch: OversellWatch,
): Promise<Check> {
  const problems = [...watch.problems, ...oversold(await readHoldings(db, lastMovementBefore), initial, 'at the end:')];
  return {
    name:
      'oversell 0: per SKU and region, available >= 0, on_hand = available + reserved + shipped, units held ' +
      `by live orders <= stock at the start + restocks (${watch.samples} samples during the run, ` +
      `${watch.unreadable} unreadable, and at the end)`,
    failures: problems.length,
    examples: problems.slice(0, EXAMPLES),
  };
}
