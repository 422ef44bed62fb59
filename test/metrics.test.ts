import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlashSaleController, startFlashSaleController } from '../flash-sale/start-flash-sale-controller.ts';
import { stepNames } from '../queues/order-workflow.ts';
import { listDeadLetters } from '../sql/dead-letters.ts';
import { watchLiveness } from '../workers/liveness.ts';
import { declareSale, fastControllerSettings, freePort, hotEntry } from './flash-sale-support.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

// The SPEC §7 metrics on the real servers, read the way Prometheus reads them: scrape, act, scrape.
// The API's registry is read over GET /metrics (the exposition text, parsed line by line); the
// workers' from their registry, and once over their health port.

type Sample = { name: string; labels: Record<string, string>; value: number };

/** The samples of a Prometheus text exposition (comments skipped; label values unescaped). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) throw new Error(`Not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** A registry's samples, from prom-client's JSON (histograms as their _bucket, _sum and _count). */
async function samplesOf(registry: Registry): Promise<Sample[]> {
  return (await registry.getMetricsAsJSON()).flatMap((metric) =>
    metric.values.map((v) => ({
      name: (v as { metricName?: string }).metricName ?? metric.name,
      labels: Object.fromEntries(Object.entries(v.labels).map(([k, l]) => [k, String(l)])),
      value: v.value,
    })),
  );
}

/** The sum of the samples named `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

let h: Harness;
const scrapeApi = async () => {
  const response = await h.app.request('/metrics');
  expect(response.status).toBe(200);
  return parseExposition(await response.text());
};
const scrapeWorkers = () => samplesOf(h.deps.registry);

describe('with the workers running', () => {
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('counts an accepted order, its completion, and a duration sample for every step', async () => {
    const [api, workers] = [await scrapeApi(), await scrapeWorkers()];
    const placed = await h.placeOrder(orderBody());
    expect(placed.status).toBe(201);
    expect((await h.waitForTerminal(placed.body.id)).status).toBe('COMPLETED');

    const completed = { outcome: 'completed' };
    const after = await waitFor(
      'the completion to be counted',
      scrapeWorkers,
      (s) => total(s, 'orderflow_orders_total', completed) > total(workers, 'orderflow_orders_total', completed),
    );
    expect(
      total(after, 'orderflow_orders_total', completed) - total(workers, 'orderflow_orders_total', completed),
    ).toBe(1);
    for (const step of stepNames) {
      const done = { step, outcome: 'done' };
      expect(
        total(after, 'orderflow_step_duration_seconds_count', done) -
          total(workers, 'orderflow_step_duration_seconds_count', done),
        step,
      ).toBe(1);
      expect(total(after, 'orderflow_step_duration_seconds_bucket', { ...done, le: '+Inf' })).toBe(
        total(after, 'orderflow_step_duration_seconds_count', done),
      );
    }
    const apiAfter = await scrapeApi();
    expect(total(apiAfter, 'orderflow_orders_accepted_total') - total(api, 'orderflow_orders_accepted_total')).toBe(1);
  });

  it('counts a declined payment as failed with its code, its compensations and its dead letter', async () => {
    const [api, workers] = [await scrapeApi(), await scrapeWorkers()];
    const placed = await h.placeOrder(orderBody({ token: '4000000000000002' }));
    const failed = await h.waitForTerminal(placed.body.id);
    expect(failed).toMatchObject({ status: 'FAILED', failure_reason: 'payment_declined' });

    const declined = { outcome: 'failed', reason: 'payment_declined' };
    const after = await waitFor('the failure and its compensations to be counted', scrapeWorkers, (s) => {
      return (
        total(s, 'orderflow_orders_total', declined) > total(workers, 'orderflow_orders_total', declined) &&
        total(s, 'orderflow_compensations_total') > total(workers, 'orderflow_compensations_total')
      );
    });
    expect(total(after, 'orderflow_orders_total', declined) - total(workers, 'orderflow_orders_total', declined)).toBe(
      1,
    );
    expect(
      total(after, 'orderflow_step_duration_seconds_count', { step: 'authorize-payment', outcome: 'ended' }) -
        total(workers, 'orderflow_step_duration_seconds_count', { step: 'authorize-payment', outcome: 'ended' }),
    ).toBe(1);

    // The dead letter is counted under the status it has in PostgreSQL, read at scrape time.
    const letter = await waitFor(
      'the dead letter to be handled',
      async () => (await listDeadLetters(h.deps.db, { limit: 200 })).find((d) => d.order_id === placed.body.id),
      (d) => d !== undefined && d.status !== 'received',
    );
    const apiAfter = await scrapeApi();
    const status = { status: letter!.status };
    expect(total(apiAfter, 'orderflow_dead_letters', status)).toBeGreaterThan(
      total(api, 'orderflow_dead_letters', status),
    );
  });

  it('counts the retries of a transient provider failure by step and code', async () => {
    const workers = await scrapeWorkers();
    const retried = { step: 'authorize-payment', code: 'provider_unavailable' };
    h.sandbox.gateway.settings.failureRate = 1;
    try {
      const placed = await h.placeOrder(orderBody());
      await waitFor(
        'an authorization to be retried',
        scrapeWorkers,
        (s) =>
          total(s, 'orderflow_step_retries_total', retried) > total(workers, 'orderflow_step_retries_total', retried),
      );
      h.sandbox.gateway.settings.failureRate = 0;
      expect((await h.waitForTerminal(placed.body.id)).status).toBe('COMPLETED');
    } finally {
      h.sandbox.gateway.settings.failureRate = 0;
    }
    const after = await scrapeWorkers();
    expect(
      total(after, 'orderflow_step_duration_seconds_count', { step: 'authorize-payment', outcome: 'retry' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('counts requests by route pattern, method and status, never by raw path', async () => {
    const placed = await h.placeOrder(orderBody());
    const before = await scrapeApi();
    const route = { route: '/orders/:id', method: 'GET', status: '200' };
    expect((await h.request('GET', `/orders/${placed.body.id}`, { key: h.customerKey })).status).toBe(200);
    expect((await h.request('GET', '/no-such-route')).status).toBe(404);
    const after = await scrapeApi();

    expect(
      total(after, 'orderflow_http_requests_total', route) - total(before, 'orderflow_http_requests_total', route),
    ).toBe(1);
    const unmatched = { route: 'unmatched', status: '404' };
    expect(
      total(after, 'orderflow_http_requests_total', unmatched) -
        total(before, 'orderflow_http_requests_total', unmatched),
    ).toBe(1);
    expect(
      total(after, 'orderflow_http_request_duration_seconds_count', { route: '/orders/:id', method: 'GET' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      total(after, 'orderflow_http_requests_total', { route: '/orders', method: 'POST', status: '201' }),
    ).toBeGreaterThanOrEqual(1);
    const routes = new Set(after.filter((s) => s.name === 'orderflow_http_requests_total').map((s) => s.labels.route));
    expect([...routes].filter((r) => r?.includes(placed.body.id) || r?.includes('no-such-route'))).toEqual([]);
  });

  it('counts orders refused at the door by reason', async () => {
    const sku = 'ONEPIECE-105';
    let controller: FlashSaleController | undefined;
    try {
      controller = await startFlashSaleController(h.deps, {
        ...h.config.flashSale,
        ...fastControllerSettings,
        namespace: h.config.namespace,
        consumerName: 'metrics',
      });
      await declareSale(h.deps.db, { name: 'metrics', region: 'eu', skus: [sku], purchaseLimit: 1 });
      await waitFor('the SKU to turn hot', () => hotEntry(h.deps.redis, h.apiDeps.keys.hotSkus, 'eu', sku));
      const before = await scrapeApi();
      const refused = await h.placeOrder(orderBody({ items: [{ sku, quantity: 2 }] }));
      expect(refused.body.error?.code).toBe('purchase_limit_exceeded');
      const after = await scrapeApi();
      const reason = { reason: 'purchase_limit_exceeded' };
      expect(
        total(after, 'orderflow_order_refusals_total', reason) -
          total(before, 'orderflow_order_refusals_total', reason),
      ).toBe(1);
      expect(total(after, 'orderflow_order_refusals_total', { reason: 'sold_out' })).toBe(0);
      expect(
        total(after, 'orderflow_http_requests_total', { route: '/orders', status: String(refused.status) }) -
          total(before, 'orderflow_http_requests_total', { route: '/orders', status: String(refused.status) }),
      ).toBe(1);
      // The controller exports the SKU as hot, beside the Node process metrics.
      const controllerSamples = await samplesOf(controller.registry);
      expect(total(controllerSamples, 'orderflow_flash_sale_hot_skus')).toBeGreaterThanOrEqual(1);
      expect(controllerSamples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    } finally {
      await controller?.stop();
    }
  });

  it("serves a worker's metrics on its health port", async () => {
    const port = await freePort();
    const liveness = watchLiveness(h.workers, h.deps.redis, { staleAfterMs: 60_000, port, registry: h.deps.registry });
    const server = liveness.server as Server;
    try {
      await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', resolve)));
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/plain');
      const samples = parseExposition(await response.text());
      expect(total(samples, 'orderflow_step_duration_seconds_count', { step: 'validate' })).toBeGreaterThanOrEqual(1);
      expect(samples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
      // The workers report the depth of the queues they serve.
      expect(samples.some((s) => s.name === 'orderflow_queue_jobs' && s.labels.queue === 'validate')).toBe(true);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('with no worker running', () => {
  beforeAll(async () => {
    h = await startHarness({ workers: false });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('reports the jobs waiting in each queue when scraped', async () => {
    const waiting = { queue: 'validate', state: 'waiting' };
    expect(total(await scrapeApi(), 'orderflow_queue_jobs', waiting)).toBe(0);
    for (let i = 0; i < 3; i++) expect((await h.placeOrder(orderBody())).status).toBe(201);
    const samples = await scrapeApi();
    expect(total(samples, 'orderflow_queue_jobs', waiting)).toBe(3);
    expect(total(samples, 'orderflow_queue_jobs', { queue: 'notify', state: 'waiting' })).toBe(0);
    const queues = new Set(samples.filter((s) => s.name === 'orderflow_queue_jobs').map((s) => s.labels.queue));
    expect([...queues].sort()).toEqual(Object.keys(h.deps.queues.queues).sort());
    // Nothing failed yet: every known dead-letter status is reported, at zero.
    expect(total(samples, 'orderflow_dead_letters')).toBe(0);
    expect(samples.some((s) => s.name === 'orderflow_dead_letters' && s.labels.status === 'parked')).toBe(true);
  });
});
