import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type CacheMetrics = ReturnType<typeof createCacheMetrics>;

/** Cache effectiveness, measured and exported (GET /metrics), never assumed. */
export function createCacheMetrics(registry: Registry) {
  const requests = new Counter({
    name: 'orderflow_cache_requests_total',
    help: 'Cache reads by cache and result (hit, miss, stale: served past its TTL because the database was slow or down)',
    labelNames: ['cache', 'result'] as const,
    registers: [registry],
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
  const counts = new Map<string, { hit: number; total: number }>();
  new Gauge({
    name: 'orderflow_cache_hit_ratio',
    help: 'Hits over all reads since the process started, by cache',
    labelNames: ['cache'] as const,
    registers: [registry],
    collect() {
      for (const [cache, c] of counts) this.set({ cache }, c.total === 0 ? 0 : c.hit / c.total);
    },
  });
  const count = (cache: string, result: 'hit' | 'miss' | 'stale') => {
    requests.inc({ cache, result });
    const c = counts.get(cache) ?? { hit: 0, total: 0 };
    c.total += 1;
    if (result === 'hit') c.hit += 1;
    counts.set(cache, c);
  };
  return {
    hit: (cache: string) => count(cache, 'hit'),
    miss: (cache: string) => count(cache, 'miss'),
    stale: (cache: string) => count(cache, 'stale'),
    waited: (cache: string) => waits.inc({ cache }),
    fill: (cache: string, seconds: number) => fills.observe({ cache }, seconds),
  };
}
