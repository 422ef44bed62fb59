import { once } from 'node:events';
import net from 'node:net';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { adminDatabaseUrl } from '../test/support/env.ts';
import { createDatabase, type DatabaseLog, sql } from './database.ts';

// PostgreSQL ending a connection the pool no longer waits on (a fast shutdown, pg_terminate_backend)
// used to crash the process: pg throws an 'error' event nobody listens for. To end it at exactly that
// moment, the pool reaches the real server through a relay that can hold a client's goodbye (its
// Terminate message): the client waits for PostgreSQL to close, the test terminates the backend, and
// PostgreSQL's FATAL reaches a client that has finished its work.

const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

type Relay = {
  url: string;
  /** Holds the next Terminate a client sends; resolves with its connection's pg_stat_activity.client_port. */
  holdNextGoodbye(): Promise<number>;
  close(): Promise<void>;
};

async function startRelay(targetUrl: string): Promise<Relay> {
  const target = new URL(targetUrl);
  const sockets = new Set<net.Socket>();
  let hold: ((port: number) => void) | undefined;
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ host: target.hostname, port: Number(target.port || 5432), allowHalfOpen: true });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    let held = false;
    client.on('data', (chunk: Buffer) => {
      if (held) return;
      if (hold && chunk.subarray(-TERMINATE.length).equals(TERMINATE)) {
        held = true;
        upstream.write(chunk.subarray(0, -TERMINATE.length));
        hold(upstream.localPort ?? 0);
        hold = undefined;
        return;
      }
      upstream.write(chunk);
    });
    client.on('end', () => held || upstream.end());
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    upstream.on('end', () => client.end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = new URL(targetUrl);
  url.host = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return {
    url: url.toString(),
    holdNextGoodbye: () => new Promise((resolve) => (hold = resolve)),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

async function terminateBackend(clientPort: number): Promise<void> {
  const admin = new pg.Client({ connectionString: adminDatabaseUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ terminated: boolean }>(
      'SELECT pg_terminate_backend(pid) AS terminated FROM pg_stat_activity WHERE client_port = $1',
      [clientPort],
    );
    expect(rows).toEqual([{ terminated: true }]);
  } finally {
    await admin.end();
  }
}

function recordingLog() {
  const warnings: Array<{ details: Record<string, unknown>; message: string }> = [];
  const { promise: warned, resolve } = Promise.withResolvers<void>();
  const log: DatabaseLog = {
    warn: (details, message) => {
      warnings.push({ details, message });
      resolve();
    },
  };
  return { log, warnings, warned };
}

const terminated = {
  details: { err: 'terminating connection due to administrator command', code: '57P01' },
  message: 'database connection lost',
};

describe('createDatabase', () => {
  let relay: Relay;
  beforeEach(async () => {
    relay = await startRelay(adminDatabaseUrl);
  });
  afterEach(async () => {
    await relay.close();
  });

  it('logs PostgreSQL ending the type look-up connection as it closes, and serves queries', async () => {
    const { log, warnings } = recordingLog();
    // The pool's first connection is the one slonik's driver opens in createPool to look up types.
    const terminating = relay.holdNextGoodbye().then(terminateBackend);
    const db = await createDatabase({ url: relay.url, poolSize: 2, statementTimeoutMs: 5_000 }, log);
    try {
      await terminating;
      expect(warnings).toEqual([terminated]);
      expect(await db.oneFirst(sql.type(z.object({ ok: z.number() }))`SELECT 1 AS ok`)).toBe(1);
    } finally {
      await db.end();
    }
  });

  it('logs PostgreSQL ending a pooled connection after the pool stopped waiting for it to close', async () => {
    const { log, warnings, warned } = recordingLog();
    const db = await createDatabase({ url: relay.url, poolSize: 1, statementTimeoutMs: 5_000 }, log);
    expect(await db.oneFirst(sql.type(z.object({ ok: z.number() }))`SELECT 1 AS ok`)).toBe(1);
    const goodbye = relay.holdNextGoodbye();
    // slonik waits gracefulTerminationTimeout (5 s) for pg's end(), then stops listening to the client.
    await db.end();
    await terminateBackend(await goodbye);
    await warned;
    expect(warnings).toEqual([terminated]);
  });
});
