import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../runtime/logger.ts';
import { listenForInventoryEvents } from '../sql/inventory-events.ts';

export type InventoryListener = {
  /** Closes the connection and stops reconnecting; resolves once it is closed. */
  stop(): Promise<void>;
  /** True while the LISTEN connection is up: notifications arrive. */
  listening(): boolean;
};

export type InventoryListenerSettings = {
  /** The first pause before reconnecting; doubled after each failed attempt, up to `maxBackoffMs`. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
};

/**
 * Holds one PostgreSQL connection that LISTENs for new stock movements and calls `onChange` on each
 * notification. When the connection drops (PostgreSQL restarting, a network cut) it reconnects with
 * backoff, and calls `onChange` once it listens again: notifications sent while it was away are lost,
 * so whoever relies on them must look for what happened meanwhile.
 */
export function startInventoryListener(
  databaseUrl: string,
  onChange: () => void,
  log: Logger,
  settings: InventoryListenerSettings = {},
): InventoryListener {
  const minBackoffMs = settings.minBackoffMs ?? 200;
  const maxBackoffMs = settings.maxBackoffMs ?? 5_000;
  const abort = new AbortController();
  let client: pg.Client | undefined;
  let up = false;
  const stopped = new Promise<void>((resolve) =>
    abort.signal.addEventListener('abort', () => resolve(), { once: true }),
  );

  /** Connects and listens until the connection ends; throws why it ended (unless stopped). */
  async function listenUntilDisconnected(onListening: () => void): Promise<void> {
    const connection = new pg.Client({
      connectionString: databaseUrl,
      keepAlive: true,
      connectionTimeoutMillis: 5_000,
    });
    client = connection;
    let lost: Error | undefined;
    // Without a listener, an error on an idle client would be thrown at the process.
    connection.on('error', (error) => {
      lost ??= error;
    });
    const ended = new Promise<void>((resolve) => connection.once('end', resolve));
    try {
      // pg never settles a connect that `end()` interrupted (stop() during a connect): stop waiting
      // for it once stopped, or stop() would wait forever.
      const connecting = connection.connect();
      connecting.catch(() => {});
      await Promise.race([connecting, stopped]);
      if (abort.signal.aborted) return;
      await listenForInventoryEvents(connection);
      connection.on('notification', () => onChange());
      up = true;
      onListening();
      onChange();
      await ended;
      if (!abort.signal.aborted) throw lost ?? new Error('The LISTEN connection ended');
    } finally {
      up = false;
      await connection.end().catch(() => {});
    }
  }

  async function run(): Promise<void> {
    let failures = 0;
    const onListening = () => {
      if (failures > 0) log.info({ loop: 'inventory listener' }, 'listening again');
      failures = 0;
    };
    while (!abort.signal.aborted) {
      try {
        await listenUntilDisconnected(onListening);
      } catch (error) {
        if (abort.signal.aborted) break;
        // An outage fails every attempt: warn once, then once more when the connection is back.
        if (failures === 0) log.warn({ loop: 'inventory listener', err: (error as Error).message }, 'disconnected');
        failures++;
        const delay = Math.min(minBackoffMs * 2 ** (failures - 1), maxBackoffMs);
        await sleep(delay, undefined, { signal: abort.signal }).catch(() => {});
      }
    }
  }

  const running = run();
  return {
    async stop() {
      abort.abort();
      await client?.end().catch(() => {});
      await running;
    },
    listening: () => up,
  };
}
