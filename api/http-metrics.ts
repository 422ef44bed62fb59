import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { Counter, Histogram, type Registry } from 'prom-client';
import { AppError, type ErrorCode } from '../domain/errors.ts';

// HTTP metrics for the API: requests by route pattern (never the raw path, which holds ids), method and
// status, a latency histogram, and the orders refused at the door by reason (SPEC §7: oversell
// attempts refused). The labelled children are kept per route, method and status, so a request costs
// three map reads, an increment and an observation: no label object or key string per request, which
// the read path's cache hits would pay for.

export type HttpMetricsOptions = {
  registry: Registry;
  /** Error codes counted as refused orders (default: the flash-sale and stock refusals). */
  refusals?: readonly ErrorCode[];
};

const defaultRefusals: readonly ErrorCode[] = ['purchase_limit_exceeded', 'sold_out', 'checkout_busy', 'out_of_stock'];
const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** The route of a request that matched none (the app's 404): any path could come, so they share one. */
const UNMATCHED = 'unmatched';
const shared = new WeakMap<object, MiddlewareHandler>();

type Child = { inc(): void; observe(seconds: number): void };

export function httpMetrics(options: HttpMetricsOptions): MiddlewareHandler {
  const { registry } = options;
  // A second app on the same registry (tests build one beside the harness's) shares these metrics.
  const existing = registry.getSingleMetric('orderflow_http_requests_total');
  if (existing) return shared.get(existing)!;
  const requests = new Counter({
    name: 'orderflow_http_requests_total',
    help: 'HTTP requests by route pattern, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'orderflow_http_request_duration_seconds',
    help: 'HTTP request latency by route pattern and method, until the response is ready',
    labelNames: ['route', 'method'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const refused = new Counter({
    name: 'orderflow_order_refusals_total',
    help: 'Requests refused for stock or flash-sale reasons, by error code (sold_out, purchase_limit_exceeded, checkout_busy, out_of_stock)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const refusals = new Set<string>(options.refusals ?? defaultRefusals);
  for (const reason of refusals) refused.labels({ reason }).inc(0);

  const children = new Map<string, Map<string, Map<number, Child>>>();
  const childFor = (route: string, method: string, status: number): Child => {
    let byMethod = children.get(route);
    if (!byMethod) {
      byMethod = new Map();
      children.set(route, byMethod);
    }
    let byStatus = byMethod.get(method);
    if (!byStatus) {
      byStatus = new Map();
      byMethod.set(method, byStatus);
    }
    let child = byStatus.get(status);
    if (!child) {
      const counter = requests.labels({ route, method, status: String(status) });
      const histogram = duration.labels({ route, method });
      child = { inc: () => counter.inc(), observe: (seconds) => histogram.observe(seconds) };
      byStatus.set(status, child);
    }
    return child;
  };

  const middleware: MiddlewareHandler = async function recordHttpMetrics(c: Context, next) {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const status = c.res.status;
    // After next(), routePath(c) is the route of the handler that answered. A 404 with no error is the
    // app's notFound: the route is then a middleware's pattern that happened to match, not a resource.
    const route = status === 404 && c.error === undefined ? UNMATCHED : routePath(c);
    const method = knownMethods.has(c.req.method) ? c.req.method : 'OTHER';
    const child = childFor(route, method, status);
    child.inc();
    child.observe(seconds);
    if (c.error instanceof AppError && refusals.has(c.error.code)) refused.labels({ reason: c.error.code }).inc();
  };
  shared.set(requests, middleware);
  return middleware;
}
