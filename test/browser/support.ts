import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { type Browser, chromium } from 'playwright-core';

// What every browser check needs: the app on a free local port, and Debian's Chromium driven by
// playwright-core (bash scripts/ensure-chromium.sh installs it).

export type ServedApp = { base: string; close(): Promise<void> };

/** Serves `fetch` on 127.0.0.1 and a free port; `close` ends keep-alive connections too. */
export async function serveApp(
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>,
): Promise<ServedApp> {
  const server = serve({ hostname: '127.0.0.1', port: 0, fetch }) as Server;
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Playwright adds --headless, --no-sandbox and a fresh temporary --user-data-dir. Without the
 * background-networking flags, Chromium's own connections are refused by a closed network.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
