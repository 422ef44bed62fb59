import { parseHotSku, type RedisKeys } from '../cache/keys.ts';
import { backlogCap, decideGate, type GateSettings } from '../domain/admission-gate.ts';
import { type DeclaredSale, decideHeat, type HeatThresholds, type HotSku, isSaleActive } from '../domain/heat.ts';
import type { InventoryEvent } from '../domain/stock-movements.ts';
import type { Logger } from '../runtime/logger.ts';
import type { RedisClient } from '../runtime/redis.ts';
import { readAdmissionSeed } from '../sql/admission.ts';
import type { Db } from '../sql/database.ts';
import { listOpenFlashSales } from '../sql/flash-sales.ts';
import { getStockLevels } from '../sql/inventory.ts';
import type { Admission } from './admission.ts';
import type { FlashSaleMetrics } from './metrics.ts';
import { forgetOldSales, heatInput, isForgettable, newSkuState, recordEvent, type SkuState } from './sku-state.ts';

/** How stock cache entries are dropped; the read path's own invalidation when given (see start file). */
export type StockInvalidation = { invalidate(keys: readonly string[]): Promise<void> };

export type ControllerDeps = {
  db: Db;
  redis: RedisClient;
  log: Logger;
  keys: RedisKeys;
  cache: StockInvalidation;
  admission: Admission;
};
export type AdmissionSettings = {
  /** How often each hot SKU's admission counter is re-seeded from PostgreSQL (and the gate re-decided). */
  reseedEveryMs: number;
  /** The admission gate (domain/admission-gate.ts). */
  gate: GateSettings;
};
export type ControllerSettings = HeatThresholds & {
  purchaseLimit: number;
  admission: AdmissionSettings;
  /** How often the controller renews the hot hash's expiry (see `heartbeat`). */
  heartbeatMs: number;
  /** The clock its sales windows and cool-downs are measured with (ms since the epoch); Date.now by default. */
  clock?: () => number;
};

/**
 * The hot hash expires this many heartbeats after the last one: a controller that stays down (or stalls)
 * takes its hot SKUs, their purchase limits and their door with it, instead of leaving them forever. With
 * the default heartbeat that is 30 s: a controller restarted on a busy machine (with Redis or PostgreSQL
 * restarting too) takes several seconds, and a sale must not lose its limits meanwhile.
 */
export const HOT_LIST_HEARTBEATS = 6;

/** Orders that finished (shipped, or released after a failure) are counted over this window. */
const COMPLETION_WINDOW_MS = 5_000;
/** A ticket whose order was never stored (the API died, or refused it after admitting) is dropped after this. */
const ORPHAN_TICKET_SECONDS = 30;

type OpenSale = DeclaredSale & { region: string; skus: readonly string[] };

/**
 * The flash-sale decisions: per SKU and region, the state built from inventory events, the heat decided
 * from it (domain/heat.ts) and its publication, the hot hash (read by the stock read path and the
 * admin API) and the stock cache invalidations. Event handling, periodic evaluation and sale refreshes
 * run one at a time, so the hash is written in the order decisions are made.
 */
export function createController(deps: ControllerDeps, settings: ControllerSettings, metrics: FlashSaleMetrics) {
  const { redis, keys, log } = deps;
  const clock = settings.clock ?? Date.now;
  const states = new Map<string, SkuState>();
  const hotListTtlMs = settings.heartbeatMs * HOT_LIST_HEARTBEATS;
  let sales: OpenSale[] = [];
  let salesKnown = false;
  /** The hot hash fields of the SKUs that have an admission counter. */
  const counted = new Map<string, { region: string; sku: string }>();
  /** Order id → when an event showed it finishing: the pipeline's completion rate, for the gate. */
  const finished = new Map<string, number>();
  let queue: Promise<unknown> = Promise.resolve();

  function exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = queue.then(work);
    queue = run.catch(() => {});
    return run;
  }

  function stateOf(region: string, sku: string): SkuState {
    const field = keys.hotSkuField(region, sku);
    let state = states.get(field);
    if (!state) {
      state = newSkuState(region, sku);
      states.set(field, state);
    }
    return state;
  }

  /** The declared sale that applies now: an active one (the strictest limit if several), else none. */
  function saleFor(state: SkuState, now: number): OpenSale | undefined {
    const limit = (s: OpenSale) => s.purchaseLimit ?? settings.purchaseLimit;
    return sales
      .filter((s) => s.region === state.region && s.skus.includes(state.sku) && isSaleActive(s, now))
      .sort((a, b) => limit(a) - limit(b))[0];
  }

  function evaluate(state: SkuState, now: number): 'hot' | 'cool' | null {
    // Until the declared sales are known, no decision: a SKU a previous controller held hot for its sale
    // alone would cool at once (and lose its admission counter and purchase limits) only to turn hot again.
    if (!salesKnown) return null;
    const before = state.heat;
    const decision = decideHeat(heatInput(state), now, settings, saleFor(state, now));
    state.heat = decision.heat;
    state.ratePerMinute = decision.ratePerMinute;
    if (decision.change) {
      const reasons = decision.change === 'hot' ? decision.heat.reasons : before.reasons;
      metrics.decision(decision.change, reasons);
      const detail = { sku: state.sku, region: state.region, reasons, ratePerMinute: decision.ratePerMinute };
      log.info({ ...detail, available: state.available }, decision.change === 'hot' ? 'SKU is hot' : 'SKU cooled down');
    }
    return decision.change;
  }

  function hotEntry(state: SkuState, now: number): HotSku {
    const sale = saleFor(state, now);
    return {
      sku: state.sku,
      region: state.region,
      reasons: state.heat.reasons,
      since: new Date(state.heat.since ?? now).toISOString(),
      ratePerMinute: Math.round(state.ratePerMinute * 10) / 10,
      available: state.available,
      purchaseLimit: sale?.purchaseLimit ?? settings.purchaseLimit,
      flashSaleId: sale?.id ?? null,
    };
  }

  /** Writes the hot hash entries that changed (HSET while hot, HDEL once cool), in one round trip. */
  async function publish(changed: Iterable<SkuState>, now: number): Promise<void> {
    const writes: Array<[SkuState, string | null]> = [];
    const pipeline = redis.pipeline();
    for (const state of changed) {
      const json = state.heat.hot ? JSON.stringify(hotEntry(state, now)) : null;
      if (json === state.published) continue;
      const field = keys.hotSkuField(state.region, state.sku);
      if (json === null) pipeline.hdel(keys.hotSkus, field);
      else pipeline.hset(keys.hotSkus, field, json);
      writes.push([state, json]);
    }
    if (writes.length === 0) return;
    // A hash created by this HSET has no expiry yet: it gets the heartbeat's at once.
    pipeline.pexpire(keys.hotSkus, hotListTtlMs);
    const failed = (await pipeline.exec())?.find(([error]) => error)?.[0];
    if (failed) throw new Error('Writing the hot SKU hash failed', { cause: failed });
    // Only now: a failed write is tried again at the next evaluation.
    for (const [state, json] of writes) state.published = json;
  }

  /** Drops the stock cache entries of hot SKUs; after `publish`, so a refill already sees the short TTL. */
  async function invalidate(hot: readonly SkuState[]): Promise<void> {
    if (hot.length === 0) return;
    const stockKeys = hot.map((s) => keys.stock(s.region, s.sku));
    await deps.cache.invalidate(stockKeys);
    metrics.invalidated(stockKeys.length);
  }

  let onTurnedHot: () => void = () => {};

  /** Completions per second over the window ending now. */
  function completionRate(now: number): number {
    for (const [orderId, at] of finished) if (at <= now - COMPLETION_WINDOW_MS) finished.delete(orderId);
    return finished.size / (COMPLETION_WINDOW_MS / 1000);
  }

  return {
    states: states as ReadonlyMap<string, Readonly<SkuState>>,
    hotCount: () => [...states.values()].filter((s) => s.heat.hot).length,
    /** Called when a SKU turns hot, so its admission counter is seeded at once (see the start file). */
    onTurnedHot(wake: () => void) {
      onTurnedHot = wake;
    },

    /**
     * Seeds or re-seeds the admission counter of every hot SKU from PostgreSQL (with the backlog it may
     * hold), drops those of SKUs that cooled down, and tunes the gate to the measured completion rate (or
     * closes it when nothing is hot).
     * Outside the exclusive section: it reads PostgreSQL, and each seed is one snapshot on its own.
     */
    async syncAdmission(): Promise<void> {
      const expiryMs = settings.admission.reseedEveryMs * 5;
      const completionsPerSecond = completionRate(clock());
      const maxHeld = backlogCap(completionsPerSecond, settings.admission.gate);
      for (const [field, { region, sku }] of counted) {
        // A state forgotten since it cooled: its counter goes too.
        if (!states.has(field)) {
          counted.delete(field);
          await deps.admission.drop(region, sku);
        }
      }
      let backlog = 0;
      for (const [field, state] of states) {
        if (!state.heat.hot) {
          if (counted.delete(field)) await deps.admission.drop(state.region, state.sku);
          continue;
        }
        const holders = await deps.admission.ticketHolders(state.region, state.sku);
        const seed = await readAdmissionSeed(deps.db, state.region, state.sku, holders);
        if (!seed) continue;
        const held = await deps.admission.seed(state.region, state.sku, seed, {
          expiryMs,
          orphanAfterSeconds: ORPHAN_TICKET_SECONDS,
          maxHeld,
        });
        backlog += held;
        if (!counted.has(field)) {
          counted.set(field, { region: state.region, sku: state.sku });
          const left = seed.available - held - seed.untracked;
          log.info(
            { sku: state.sku, region: state.region, available: seed.available, untracked: seed.untracked, left },
            'admission counter seeded',
          );
        }
      }
      const gate = counted.size === 0 ? null : decideGate({ backlog, completionsPerSecond }, settings.admission.gate);
      metrics.gate(gate?.ratePerSecond ?? 0, completionsPerSecond, backlog);
      if (gate) await deps.admission.publishGate({ ...gate, expiryMs });
      else await deps.admission.closeGate();
    },

    /**
     * Renews the hot hash's expiry. Readers need no clock of their own: a hash whose controller stopped
     * renewing it is gone within HOT_LIST_HEARTBEATS heartbeats. A hash that is gone while SKUs are hot
     * here (Redis restarted empty, or this process stalled past the expiry) is written again in full.
     */
    heartbeat(): Promise<void> {
      return exclusive(async () => {
        if ((await redis.pexpire(keys.hotSkus, hotListTtlMs)) === 1) return;
        const lost = [...states.values()].filter((s) => s.heat.hot && s.published !== null);
        if (lost.length === 0) return;
        log.warn({ hotSkus: lost.length }, 'the hot SKU hash was gone; writing it again');
        for (const state of lost) state.published = null;
        await publish(lost, clock());
      });
    },

    /** Picks up where a previous controller left: its hot SKUs stay hot until they cool down here. */
    async loadHotSkus(): Promise<void> {
      for (const [field, json] of Object.entries(await redis.hgetall(keys.hotSkus))) {
        const entry = parseHotSku(json);
        if (!entry) {
          await redis.hdel(keys.hotSkus, field);
          continue;
        }
        const state = stateOf(entry.region, entry.sku);
        state.heat = { hot: true, since: Date.parse(entry.since), reasons: entry.reasons, calmSince: null };
        state.available = entry.available;
        state.published = json;
      }
    },

    /** Applies stream events (possibly repeated: see sku-state.ts), then publishes and invalidates. */
    handleEvents: (events: readonly InventoryEvent[]) =>
      exclusive(async () => {
        const now = clock();
        const touched = new Set<SkuState>();
        for (const event of events) {
          const state = stateOf(event.region, event.sku);
          metrics.event(event.kind, recordEvent(state, event, now, settings.rateWindowMs));
          if (evaluate(state, now) === 'hot') onTurnedHot();
          touched.add(state);
          if ((event.kind === 'ship' || event.kind === 'release') && event.orderId) finished.set(event.orderId, now);
        }
        await publish(touched, now);
        // Counters that exist follow every movement of their SKU (a SKU still being seeded has none yet:
        // the seed reads PostgreSQL after these events).
        await deps.admission.applyEvents(events.filter((e) => counted.has(keys.hotSkuField(e.region, e.sku))));
        // Once per SKU per batch: the entry is dropped after every change the batch carried.
        await invalidate([...touched].filter((s) => s.heat.hot));
      }),

    /** Every second or so: sales leave the window, cool-downs run out, declared sales start and end. */
    evaluateAll: () =>
      exclusive(async () => {
        const now = clock();
        const turnedHot: SkuState[] = [];
        for (const state of states.values()) {
          forgetOldSales(state, now, settings.rateWindowMs);
          if (evaluate(state, now) === 'hot') turnedHot.push(state);
        }
        if (turnedHot.length > 0) onTurnedHot();
        await publish(states.values(), now);
        await invalidate(turnedHot);
        // A SKU of a declared sale keeps its state: refreshSales would only load it again.
        for (const [field, state] of states) {
          if (isForgettable(state) && !sales.some((s) => s.region === state.region && s.skus.includes(state.sku))) {
            states.delete(field);
          }
        }
      }),

    /**
     * Re-reads the open declared sales; their SKUs get a state, with the stock from PostgreSQL. The
     * queries run outside the exclusive section, so a slow database does not hold up event handling.
     */
    async refreshSales(): Promise<void> {
      const open: OpenSale[] = (await listOpenFlashSales(deps.db)).map((s) => ({
        id: s.id,
        region: s.region,
        skus: s.skus,
        startsAt: s.starts_at,
        endsAt: s.ends_at,
        purchaseLimit: s.purchase_limit,
      }));
      const stock = new Map<string, number>();
      for (const sale of open) {
        const missing = sale.skus.filter((sku) => !states.has(keys.hotSkuField(sale.region, sku)));
        if (missing.length === 0) continue;
        for (const level of await getStockLevels(deps.db, sale.region, missing)) {
          stock.set(keys.hotSkuField(level.region, level.sku), level.available);
        }
      }
      await exclusive(async () => {
        sales = open;
        salesKnown = true;
        for (const sale of open) {
          for (const sku of sale.skus) {
            const field = keys.hotSkuField(sale.region, sku);
            if (!states.has(field)) stateOf(sale.region, sku).available = stock.get(field) ?? null;
          }
        }
      });
    },
  };
}
export type Controller = ReturnType<typeof createController>;
