import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type CacheMetrics = ReturnType<typeof createCacheMetrics>;
type Result = 'hit' | 'miss' | 'stale';
type Counts = Record<Result, number>;

/** Cache effectiveness, measured and exported (GET /metrics), never assumed. */
export function createCacheMetrics(registry: Registry) {
  // A read only adds to a number here: the exported metrics are derived from these counts when scraped,
  // so a cache hit does not pay for prom-client's label hashing (three times per GET /orders/{id}).
  const counts = new Map<string, Counts>();
  new Counter({
    name: 'orderflow_cache_requests_total',
    help: 'Cache reads by cache and result (hit, miss, stale: served past its TTL because the database was slow or down)',
    labelNames: ['cache', 'result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [cache, c] of counts) {
        for (const result of results) if (c[result] > 0) this.inc({ cache, result }, c[result]);
      }
    },
  });
  const fills = new Histogram({
    name: 'orderflow_cache_fill_seconds',
    help: 'Time to load a cache entry from PostgreSQL',
    labelNames: ['cache'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const waits = new Counter({
    name: 'orderflow_cache_waits_total',
    help: 'Misses with no stale copy whose fill outlasted DB_READ_BUDGET_MS: they waited for PostgreSQL',
    labelNames: ['cache'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'orderflow_cache_hit_ratio',
    help: 'Hits over all reads since the process started, by cache',
    labelNames: ['cache'] as const,
    registers: [registry],
    collect() {
      for (const [cache, c] of counts) {
        const total = c.hit + c.miss + c.stale;
        this.set({ cache }, total === 0 ? 0 : c.hit / total);
      }
    },
  });
  const countsOf = (cache: string): Counts => {
    const known = counts.get(cache);
    if (known) return known;
    const created = { hit: 0, miss: 0, stale: 0 };
    counts.set(cache, created);
    return created;
  };
  return {
    hit: (cache: string) => void countsOf(cache).hit++,
    miss: (cache: string) => void countsOf(cache).miss++,
    stale: (cache: string) => void countsOf(cache).stale++,
    waited: (cache: string) => waits.inc({ cache }),
    fill: (cache: string, seconds: number) => fills.observe({ cache }, seconds),
  };
}
const results = ['hit', 'miss', 'stale'] as const satisfies readonly Result[];
