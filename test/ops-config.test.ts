import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type FlashSaleController, startFlashSaleController } from '../flash-sale/start-flash-sale-controller.ts';
import { type Harness, startHarness } from './support/harness.ts';

// The monitoring files of the compose topology (ops/), checked against the code: every metric that
// a dashboard panel asks for is exported by a real API, worker or controller registry built here, and
// Prometheus scrapes every process kind of docker-compose.yml where it serves its metrics.

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

type Panel = { type: string; title: string; targets?: Array<{ expr: string }>; datasource?: { uid?: string } };
const dashboard = JSON.parse(read('ops/grafana/dashboards/orderflow.json')) as { uid: string; panels: Panel[] };
const prometheus = parse(read('ops/prometheus/prometheus.yml')) as {
  scrape_configs: Array<{
    job_name: string;
    metrics_path?: string;
    static_configs?: Array<{ targets: string[] }>;
    dns_sd_configs?: Array<{ names: string[]; type: string; port: number }>;
  }>;
};
type Service = { command?: string[]; environment?: Record<string, unknown>; ports?: string[]; volumes?: string[] };
const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
]);

/** The metric names in a PromQL expression: identifiers that are not functions, keywords or labels. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // label values
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // grouping labels
    .replace(/\[[^\]]*\]/g, ''); // range selectors
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .filter(
      (m) =>
        !bare
          .slice(m.index + m[0].length)
          .trimStart()
          .startsWith('('),
    ) // a function
    .map((m) => m[0])
    .filter((word) => !PROMQL_WORDS.has(word));
}

let h: Harness;
let controller: FlashSaleController;
const exported = new Set<string>();

beforeAll(async () => {
  h = await startHarness();
  controller = await startFlashSaleController(h.deps, {
    ...h.config.flashSale,
    namespace: h.config.namespace,
    port: 0,
  });
  // The API's registry (h.apiDeps, behind h.app), a worker's (h.deps, with the workers started on it)
  // and the controller's: the names each exports, a histogram's as Prometheus stores its series.
  for (const registry of [h.apiDeps.registry, h.deps.registry, controller.registry]) {
    for (const metric of await registry.getMetricsAsJSON()) {
      exported.add(metric.name);
      if (String(metric.type) === 'histogram')
        for (const suffix of ['_bucket', '_sum', '_count']) exported.add(metric.name + suffix);
    }
  }
});
afterAll(async () => {
  await controller?.stop();
  await h?.close();
});

describe('the Grafana dashboard', () => {
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  it('has the panels an on-call engineer opens first, each with a query', () => {
    const titles = panels.map((p) => p.title.toLowerCase());
    for (const wanted of [
      'orders/s',
      'p50',
      'p99',
      'queue depth',
      'dead letters',
      'cache hit ratio',
      'hot skus',
      '429',
    ]) {
      expect(
        titles.some((t) => t.includes(wanted)),
        wanted,
      ).toBe(true);
    }
    for (const panel of panels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      expect(panel.datasource?.uid, panel.title).toBe('prometheus');
    }
  });

  it('asks only for metrics that the API, the workers or the controller export', () => {
    // `up` is Prometheus's own series about each target, not something a process exports.
    const known = (name: string) => exported.has(name) || name === 'up';
    const used = panels.flatMap((p) =>
      (p.targets ?? []).flatMap((t) => metricNames(t.expr).map((name) => ({ panel: p.title, name }))),
    );
    expect(used.length).toBeGreaterThan(panels.length);
    expect(used.filter((u) => !known(u.name))).toEqual([]);
    // The SPEC §7 metrics are all on the dashboard.
    const names = new Set(used.map((u) => u.name));
    for (const name of [
      'orderflow_orders_total',
      'orderflow_step_duration_seconds_bucket',
      'orderflow_queue_jobs',
      'orderflow_dead_letters',
      'orderflow_cache_requests_total',
      'orderflow_flash_sale_hot_skus',
      'orderflow_order_refusals_total',
      'orderflow_http_request_duration_seconds_bucket',
      'orderflow_http_requests_total',
    ]) {
      expect(names.has(name), name).toBe(true);
    }
  });

  it('reads its metric names from expressions, not from labels or functions', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, step) (rate(orderflow_step_duration_seconds_bucket{outcome="done"}[5m])))',
      ),
    ).toEqual(['orderflow_step_duration_seconds_bucket']);
    expect(metricNames('sum(rate(a_total{x="y"}[1m])) / sum without (z) (b_total)')).toEqual(['a_total', 'b_total']);
  });
});

describe('the Prometheus configuration', () => {
  const job = (name: string) => prometheus.scrape_configs.find((c) => c.job_name === name);
  const env = (service: string, name: string) => String(compose.services[service]?.environment?.[name]);

  it('scrapes /metrics of the API, of every worker and of the flash-sale controller', () => {
    expect(prometheus.scrape_configs.map((c) => c.job_name).sort()).toEqual(['api', 'flash-sale', 'worker']);
    for (const c of prometheus.scrape_configs) expect(c.metrics_path ?? '/metrics').toBe('/metrics');
    expect(job('api')?.dns_sd_configs).toEqual([
      expect.objectContaining({ names: ['api'], type: 'A', port: Number(env('api', 'PORT')) }),
    ]);
    expect(job('flash-sale')?.static_configs).toEqual([
      { targets: [`flash-sale:${env('flash-sale', 'FLASH_SALE_PORT')}`] },
    ]);
  });

  it('finds the workers through DNS, so each scaled worker is scraped on its health port', () => {
    expect(job('worker')?.static_configs).toBeUndefined();
    expect(job('worker')?.dns_sd_configs).toEqual([
      expect.objectContaining({ names: ['worker'], type: 'A', port: Number(env('worker', 'WORKER_HEALTH_PORT')) }),
    ]);
    expect(compose.services.worker?.ports).toBeUndefined(); // published ports would stop --scale
  });

  it('runs in the compose topology beside Grafana, with the dashboard provisioned', () => {
    const { prometheus: server, grafana } = compose.services;
    expect(server?.volumes).toContain('./ops/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    const datasource = parse(read('ops/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: Array<{ uid: string; type: string; url: string }>;
    };
    expect(datasource.datasources).toEqual([
      expect.objectContaining({ uid: 'prometheus', type: 'prometheus', url: 'http://prometheus:9090' }),
    ]);
    const provider = parse(read('ops/grafana/provisioning/dashboards/orderflow.yml')) as {
      providers: Array<{ type: string; options: { path: string } }>;
    };
    const dashboards = provider.providers[0]!.options.path;
    expect(grafana?.volumes).toContain(`./ops/grafana/dashboards:${dashboards}:ro`);
    expect(grafana?.volumes).toContain('./ops/grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(grafana?.environment?.GF_AUTH_ANONYMOUS_ENABLED).toBe('true');
    expect(grafana?.environment?.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer');
    // Grafana's host port is not one another service publishes.
    const hostPort = (published: string) => {
      const match = /^(?:\$\{\w+:-(\d+)\}|(\d+)):/.exec(published);
      return match?.[1] ?? match?.[2];
    };
    const hostPorts = Object.values(compose.services).flatMap((s) => (s.ports ?? []).map(hostPort));
    expect(hostPorts).toContain('3001');
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });
});
