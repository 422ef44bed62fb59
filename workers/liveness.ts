import { createServer, type Server } from 'node:http';
import type { Worker } from 'bullmq';
import type { Registry } from 'prom-client';
import type { RedisClient } from '../runtime/redis.ts';

export type Liveness = { check(): { alive: boolean; detail: Record<string, unknown> }; server?: Server };

/**
 * "Alive" means making progress: every worker is running, Redis is connected, and each worker has
 * either started or finished a job within `staleAfterMs`, or has drained its queue (nothing to do).
 * A worker that stopped consuming (the failure mode after a bad Redis reconnect) turns this false, so
 * the orchestrator restarts the process. Served on `port` when it is not 0 (GET /healthz), beside the
 * process's metrics when a registry is given (GET /metrics, for Prometheus).
 */
export function watchLiveness(
  workers: Worker[],
  redis: RedisClient,
  options: { staleAfterMs: number; port: number; registry?: Registry },
): Liveness {
  const state = new Map(workers.map((w) => [w, { lastProgress: Date.now(), idle: false }]));
  for (const worker of workers) {
    const mark = (idle: boolean) => () => {
      const s = state.get(worker)!;
      s.lastProgress = Date.now();
      s.idle = idle;
    };
    worker.on('active', mark(false));
    worker.on('completed', mark(false));
    worker.on('failed', mark(false));
    worker.on('drained', mark(true));
  }

  function check() {
    const now = Date.now();
    const queues = workers.map((w) => {
      const s = state.get(w)!;
      const sinceProgressMs = now - s.lastProgress;
      return {
        queue: w.name,
        running: w.isRunning(),
        idle: s.idle,
        sinceProgressMs,
        ok: w.isRunning() && (s.idle || sinceProgressMs < options.staleAfterMs),
      };
    });
    const redisOk = redis.status === 'ready';
    return { alive: redisOk && queues.every((q) => q.ok), detail: { redis: redis.status, queues } };
  }

  if (options.port === 0) return { check };
  const { registry } = options;
  const server = createServer((req, res) => {
    if (registry && req.method === 'GET' && req.url === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(error.message),
      );
      return;
    }
    const { alive, detail } = check();
    res.writeHead(req.url === '/healthz' ? (alive ? 200 : 503) : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: alive ? 'alive' : 'stalled', ...detail }));
  });
  server.listen(options.port);
  return { check, server };
}
