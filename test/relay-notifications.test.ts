import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Relay, startRelay } from '../flash-sale/relay.ts';
import { getStockLevels, restockStock } from '../sql/inventory.ts';
import { deleteNamespace, privateNamespace, streamEvents, waitFor } from './flash-sale-support.ts';
import { type Harness, startHarness } from './support/harness.ts';

// The relay woken by PostgreSQL's NOTIFY (migration 004), and its fallback poll for what a lost
// notification would otherwise leave behind.

const namespace = privateNamespace();
const hour = 3_600_000;
let h: Harness;
const relays: Relay[] = [];
const proxies: CuttableProxy[] = [];
let streams = 0;

beforeAll(async () => {
  h = await startHarness({ workers: false, env: { REDIS_NAMESPACE: namespace } });
});
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.stop()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  if (h) await deleteNamespace(h.deps.redis, namespace);
  await h?.close();
});

function relayTo(
  databaseUrl: string,
  intervalMs: number,
  streamKey = `${namespace}:inventory-events:${++streams}`,
  batchSize?: number,
): { relay: Relay; streamKey: string } {
  const relay = startRelay(h.deps, {
    streamKey,
    intervalMs,
    batchSize,
    databaseUrl,
    listener: { minBackoffMs: 10, maxBackoffMs: 50 },
  });
  relays.push(relay);
  return { relay, streamKey };
}

const available = async (sku: string) => (await getStockLevels(h.deps.db, 'eu', [sku]))[0]!.available;
const restock = (sku: string) => h.deps.db.transaction((tx) => restockStock(tx, { sku, region: 'eu', quantity: 1 }));

/** Waits until the stream holds, for each SKU, one restock event per unit from `start` up to `until`. */
async function waitForRestocks(streamKey: string, start: Record<string, number>, until: Record<string, number>) {
  return waitFor(
    async () => {
      const events = await streamEvents(h.deps.redis, streamKey);
      const done = Object.keys(start).every((sku) =>
        events.some((e) => e.sku === sku && e.kind === 'restock' && e.availableAfter === until[sku]),
      );
      return done && events;
    },
    `restocks up to ${JSON.stringify(until)} on ${streamKey}`,
  );
}

/** Each SKU's first deliveries: in commit order, the stock after each restock counts up by one. */
function expectInOrder(events: Awaited<ReturnType<typeof streamEvents>>, start: Record<string, number>, count: number) {
  for (const [sku, from] of Object.entries(start)) {
    const seen = new Set<string>();
    const first = events.filter((e) => e.sku === sku && e.kind === 'restock' && !seen.has(e.id) && seen.add(e.id));
    expect(first.map((e) => e.availableAfter)).toEqual(Array.from({ length: count }, (_, i) => from + i + 1));
  }
}

describe('the relay woken by notifications', () => {
  it('publishes a stock change as soon as it commits, with the next poll an hour away', async () => {
    const { relay, streamKey } = relayTo(h.config.db.url, hour);
    await waitFor(async () => relay.listening(), 'the relay to listen');

    // Each round commits after the previous one was published, so each is published by a pass that
    // began after its commit. Without a notification the relay makes two such passes at most: its
    // first, and the one after LISTEN succeeded. So the third round at the latest was woken by NOTIFY.
    const sku = 'BERSERK-41';
    const start = await available(sku);
    for (let round = 1; round <= 3; round++) {
      await restock(sku);
      await waitForRestocks(streamKey, { [sku]: start }, { [sku]: start + round });
    }
    expectInOrder(await streamEvents(h.deps.redis, streamKey), { [sku]: start }, 3);
  });

  it('publishes by its fallback poll, in order per SKU, while its LISTEN connection cannot connect', async () => {
    const proxy = await startCuttableProxy(h.config.db.url);
    proxy.cut();
    const { relay, streamKey } = relayTo(proxy.url, 20);
    const skus = ['CHAINSAW-05', 'ONEPIECE-105'];
    const start = Object.fromEntries(await Promise.all(skus.map(async (s) => [s, await available(s)] as const)));

    // Two rounds: the first pass might have found the first; the second can only be found by a poll.
    for (let round = 1; round <= 2; round++) {
      for (let i = 0; i < 5; i++) await Promise.all(skus.map(restock));
      const until = Object.fromEntries(skus.map((s) => [s, start[s]! + 5 * round]));
      await waitForRestocks(streamKey, start, until);
    }
    expect(relay.listening()).toBe(false);
    expectInOrder(await streamEvents(h.deps.redis, streamKey), start, 10);
  });

  it('stops while its LISTEN connection is still connecting', async () => {
    // A server that accepts and never answers the startup message, and closes when the client hangs
    // up, as PostgreSQL does. pg never settles a connect that its own `end()` cut short: stop() must
    // not wait for it.
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('end', () => socket.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    // The startup message has arrived: the client waits for the server's answer.
    const accepted = new Promise<void>((resolve) =>
      server.once('connection', (socket) => socket.once('data', () => resolve())),
    );
    const url = new URL(h.config.db.url);
    url.hostname = '127.0.0.1';
    url.port = String((server.address() as { port: number }).port);
    const relay = startRelay(h.deps, {
      streamKey: `${namespace}:inventory-events:${++streams}`,
      intervalMs: hour,
      databaseUrl: url.toString(),
    });
    try {
      await accepted;
      expect(relay.listening()).toBe(false);
      await relay.stop();
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('listens again after its connection drops, and at once publishes what committed meanwhile, in order per SKU', async () => {
    const proxy = await startCuttableProxy(h.config.db.url);
    const { relay, streamKey } = relayTo(proxy.url, hour);
    await waitFor(async () => relay.listening(), 'the relay to listen');
    const skus = ['FRIEREN-01-LTD', 'BERSERK-42'];
    const start = Object.fromEntries(await Promise.all(skus.map(async (s) => [s, await available(s)] as const)));

    // As when PostgreSQL restarts: the connection drops and reconnecting fails for a while. The
    // notifications of what commits meanwhile reach nobody.
    proxy.cut();
    await waitFor(async () => !relay.listening(), 'the relay to notice its connection is gone');
    for (let i = 0; i < 5; i++) await Promise.all(skus.map(restock));
    proxy.restore();

    const until = Object.fromEntries(skus.map((s) => [s, start[s]! + 5]));
    const events = await waitForRestocks(streamKey, start, until);
    expectInOrder(events, start, 5);
    expect(relay.listening()).toBe(true);
  });

  it('publishes at least once and in order per SKU when two listening relays run side by side, with the next poll an hour away', async () => {
    const streamKey = `${namespace}:inventory-events:${++streams}`;
    const skus = ['ONEPIECE-105', 'CHAINSAW-05'];
    const start = Object.fromEntries(await Promise.all(skus.map(async (s) => [s, await available(s)] as const)));
    const restockAll = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) await Promise.all(skus.flatMap((sku) => [restock(sku), restock(sku)]));
    };
    // A backlog first (as after an outage), so both start by claiming side by side, then changes that
    // commit while they run: only notifications (and the passes they chain) publish any of it.
    await restockAll(10);
    const pair = [1, 2].map(() => relayTo(h.config.db.url, hour, streamKey, 3).relay);
    await waitFor(async () => pair.every((r) => r.listening()), 'both relays to listen');
    await restockAll(10);

    const until = Object.fromEntries(skus.map((s) => [s, start[s]! + 40]));
    expectInOrder(await waitForRestocks(streamKey, start, until), start, 40);
  });
});

type CuttableProxy = { url: string; cut(): void; restore(): void; close(): Promise<void> };

/**
 * A TCP pass-through to the database that the test can cut, as a PostgreSQL restart or a network cut
 * would: `cut()` drops every connection through it and refuses new ones until `restore()`.
 */
async function startCuttableProxy(databaseUrl: string): Promise<CuttableProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<Socket>();
  let up = true;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const server: Server = createServer((client) => {
    track(client);
    if (!up) return client.destroy();
    const upstream = connect(Number(target.port || 5432), target.hostname);
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('The proxy has no port');
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  const dropAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: url.toString(),
    cut() {
      up = false;
      dropAll();
    },
    restore() {
      up = true;
    },
    async close() {
      up = false;
      dropAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
