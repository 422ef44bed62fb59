import { Counter, Gauge, type Registry } from 'prom-client';
import type { HeatReason } from '../domain/heat.ts';
import type { StockMovementKind } from '../domain/stock-movements.ts';
import { collectProcessMetrics } from '../runtime/metrics.ts';

export type FlashSaleMetrics = ReturnType<typeof createFlashSaleMetrics>;

/** What the controller did and decided, with the Node process metrics, exported on GET /metrics. */
export function createFlashSaleMetrics(registry: Registry, hotCount: () => number) {
  collectProcessMetrics(registry);
  const events = new Counter({
    name: 'orderflow_flash_sale_events_total',
    help: 'Inventory events handled, by kind and outcome (ignored: a repeat, or superseded by a later event)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
  });
  const decisions = new Counter({
    name: 'orderflow_flash_sale_decisions_total',
    help: 'SKUs turning hot or cooling down, by direction and reason (a SKU with two reasons counts in both)',
    labelNames: ['direction', 'reason'] as const,
    registers: [registry],
  });
  const invalidations = new Counter({
    name: 'orderflow_flash_sale_stock_invalidations_total',
    help: 'Stock cache entries dropped because their SKU is hot',
    registers: [registry],
  });
  const published = new Counter({
    name: 'orderflow_flash_sale_relay_published_total',
    help: 'Stock movements the outbox relay published to the inventory stream',
    registers: [registry],
  });
  new Gauge({
    name: 'orderflow_flash_sale_hot_skus',
    help: 'SKU and region pairs currently hot',
    registers: [registry],
    collect() {
      this.set(hotCount());
    },
  });
  const gateRate = new Gauge({
    name: 'orderflow_flash_sale_gate_rate',
    help: 'Orders per second the admission gate lets through for hot SKUs (0: the gate is open)',
    registers: [registry],
  });
  const completionRate = new Gauge({
    name: 'orderflow_flash_sale_completion_rate',
    help: 'Orders per second the pipeline finished (shipped, or released after a failure) over the last 5 s',
    registers: [registry],
  });
  const backlog = new Gauge({
    name: 'orderflow_flash_sale_admitted_backlog',
    help: 'Units of hot SKUs admitted at the door and not reserved yet',
    registers: [registry],
  });
  return {
    gate: (rate: number, completions: number, admittedBacklog: number) => {
      gateRate.set(rate);
      completionRate.set(completions);
      backlog.set(admittedBacklog);
    },
    event: (kind: StockMovementKind, outcome: 'applied' | 'ignored') => events.inc({ kind, outcome }),
    decision: (direction: 'hot' | 'cool', reasons: readonly HeatReason[]) => {
      for (const reason of reasons) decisions.inc({ direction, reason });
    },
    invalidated: (count: number) => invalidations.inc(count),
    published: (count: number) => published.inc(count),
  };
}
