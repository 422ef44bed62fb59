import type { AddressInfo } from 'node:net';
import { type ServerType, serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { orExit } from '../config/index.ts';
import { loadSandboxConfig } from '../config/sandbox.ts';
import { createFakeBedrock, type FakeBedrock } from './bedrock.ts';
import { type CarrierSettings, type CarrierStats, createCarrier } from './carrier.ts';
import { randomSeed } from './faults.ts';
import { createPaymentGateway, type PaymentGatewaySettings, type PaymentGatewayStats } from './payment-gateway.ts';

// Serves the fake payment gateway, carrier and Bedrock runtime over real HTTP, for local runs, e2e tests
// and benches.

export type SandboxOptions = {
  host?: string;
  /** 0 picks a free port; the real one is in the returned URL. */
  gatewayPort?: number;
  carrierPort?: number;
  /** A free port when not given, so the many callers that choose only the others never collide on it;
   * the sandbox process passes SANDBOX_BEDROCK_PORT (4003 by default). */
  bedrockPort?: number;
  latencyMs?: number;
  declineRate?: number;
  failureRate?: number;
  /** The carrier's pace from one tracking stage to the next (0 = only when advanced) and its exception rate. */
  deliveryStageMs?: number;
  exceptionRate?: number;
  /** Same seed, same sequence of injected declines and failures. Random when not given. */
  seed?: number;
};

export type RunningProvider<Settings, Stats> = {
  url: string;
  settings: Settings;
  stats: () => Stats;
  reset: () => void;
};

export type Sandbox = {
  seed: number;
  gateway: RunningProvider<PaymentGatewaySettings, PaymentGatewayStats>;
  carrier: RunningProvider<CarrierSettings, CarrierStats>;
  /** The fake Converse API: script its next replies, read the requests it saw (sandbox/bedrock.ts). */
  bedrock: { url: string } & Omit<FakeBedrock, 'app'>;
  close: () => Promise<void>;
};

function listen(app: Hono, hostname: string, port: number): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname, port }, () => {
      server.off('error', reject);
      resolve(server);
    });
    server.once('error', reject);
  });
}

function urlOf(server: ServerType, host: string): string {
  const { port } = server.address() as AddressInfo;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function closeServer(server: ServerType): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // Keep-alive sockets and answers held back by injected latency would otherwise delay the close.
    if ('closeAllConnections' in server) server.closeAllConnections();
  });
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const host = options.host ?? '127.0.0.1';
  const seed = options.seed ?? randomSeed();
  const { latencyMs, declineRate, failureRate, deliveryStageMs, exceptionRate } = options;
  const gateway = createPaymentGateway({ latencyMs, declineRate, failureRate, seed });
  const carrier = createCarrier({ latencyMs, failureRate, deliveryStageMs, exceptionRate, seed });

  const bedrock = createFakeBedrock({ seed });

  const servers: ServerType[] = [];
  const closeAll = async () => void (await Promise.all(servers.map(closeServer)));
  try {
    servers.push(await listen(gateway.app, host, options.gatewayPort ?? 4001));
    servers.push(await listen(carrier.app, host, options.carrierPort ?? 4002));
    servers.push(await listen(bedrock.app, host, options.bedrockPort ?? 0));
  } catch (error) {
    await closeAll();
    throw error;
  }
  const [gatewayServer, carrierServer, bedrockServer] = servers as [ServerType, ServerType, ServerType];

  return {
    seed,
    gateway: {
      url: urlOf(gatewayServer, host),
      settings: gateway.settings,
      stats: gateway.stats,
      reset: gateway.reset,
    },
    carrier: {
      url: urlOf(carrierServer, host),
      settings: carrier.settings,
      stats: carrier.stats,
      reset: carrier.reset,
    },
    bedrock: {
      url: urlOf(bedrockServer, host),
      script: bedrock.script,
      requests: bedrock.requests,
      reset: bedrock.reset,
    },
    close: async () => {
      // Answers held back by a scripted delay end now, not when their timers would.
      bedrock.reset();
      await closeAll();
    },
  };
}

if (import.meta.main) {
  const config = orExit(() => loadSandboxConfig());
  const sandbox = await startSandbox(config);
  console.log(
    JSON.stringify({
      level: 'info',
      msg: 'sandbox listening',
      gatewayUrl: sandbox.gateway.url,
      carrierUrl: sandbox.carrier.url,
      bedrockUrl: sandbox.bedrock.url,
      seed: sandbox.seed,
      settings: {
        latencyMs: config.latencyMs,
        declineRate: config.declineRate,
        failureRate: config.failureRate,
        deliveryStageMs: config.deliveryStageMs,
        exceptionRate: config.exceptionRate,
      },
    }),
  );
  function stop(signal: NodeJS.Signals): void {
    console.log(JSON.stringify({ level: 'info', msg: 'sandbox stopping', signal }));
    sandbox.close().catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
  }
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
