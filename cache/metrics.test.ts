import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createCacheMetrics } from './metrics.ts';

describe('the cache metrics', () => {
  it('export every read by cache and result, and the hit ratio, the same at every scrape', async () => {
    const registry = new Registry();
    const metrics = createCacheMetrics(registry);
    for (let i = 0; i < 3; i++) metrics.hit('stock');
    metrics.miss('stock');
    metrics.stale('order-status');
    metrics.hit('order-status');
    const expected = [
      'orderflow_cache_requests_total{cache="stock",result="hit"} 3',
      'orderflow_cache_requests_total{cache="stock",result="miss"} 1',
      'orderflow_cache_requests_total{cache="order-status",result="hit"} 1',
      'orderflow_cache_requests_total{cache="order-status",result="stale"} 1',
      'orderflow_cache_hit_ratio{cache="stock"} 0.75',
      'orderflow_cache_hit_ratio{cache="order-status"} 0.5',
    ];
    for (let scrape = 0; scrape < 2; scrape++) {
      const text = await registry.metrics();
      for (const line of expected) expect(text).toContain(line);
      expect(text).not.toContain('result="stale"} 0');
    }
    metrics.hit('stock');
    expect(await registry.metrics()).toContain('orderflow_cache_requests_total{cache="stock",result="hit"} 4');
  });
});
