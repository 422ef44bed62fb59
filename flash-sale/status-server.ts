import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * GET /metrics (Prometheus) and GET /healthz (200 while the relay and the consumer work and Redis is
 * connected, 503 otherwise, with the detail), on a plain node:http server: two routes need no framework.
 */
export function serveStatus(
  port: number,
  registry: Registry,
  health: () => { ok: boolean; detail: Record<string, unknown> },
  onError: (error: Error) => void,
): Server {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(error.message),
      );
      return;
    }
    if (req.method === 'GET' && req.url === '/healthz') {
      const { ok, detail } = health();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: ok ? 'ok' : 'failing', ...detail }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
  });
  server.on('error', onError);
  server.listen(port);
  return server;
}
