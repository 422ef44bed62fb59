import type { Logger } from '../runtime/logger.ts';
import type { RedisClient } from '../runtime/redis.ts';
import type { Db } from '../sql/database.ts';
import { claimUnpublished, markPublished } from '../sql/inventory-events.ts';
import { type InventoryListenerSettings, startInventoryListener } from './inventory-listener.ts';
import { type Repeating, repeat } from './repeat.ts';
import { toStreamFields } from './stream-fields.ts';

export type RelaySettings = {
  streamKey: string;
  /** Movements published per transaction. */
  batchSize?: number;
  /**
   * The fallback poll: how long the relay waits for a notification before looking anyway, so that a
   * notification lost (the LISTEN connection down) delays events by this much at most. Without
   * `databaseUrl`, the relay's only way of finding new movements.
   */
  intervalMs?: number;
  /** The relay LISTENs here (its own connection) for new movements, and publishes them at once. */
  databaseUrl?: string;
  listener?: InventoryListenerSettings;
  /** The stream is trimmed to about this many entries (approximate trimming is cheap). */
  maxLength?: number;
  /** A publish that takes longer fails the round (rolled back, published again later). */
  publishTimeoutMs?: number;
};

export type Relay = Repeating & {
  /** True while new movements wake the relay at once; false when it only polls. */
  listening(): boolean;
};

/**
 * The outbox relay: publishes unpublished stock movements to the inventory stream and marks them, in
 * one PostgreSQL transaction per batch. The XADDs happen before the commit, so a crash or a failed
 * commit after them publishes the batch again later: at least once, never lost. Consumers dedupe by
 * event id. Several relays can run; `claimUnpublished` keeps them apart and each SKU's events in order.
 *
 * A pass starts when a commit that wrote movements notifies (migration 004), when the LISTEN connection
 * comes back (notifications sent meanwhile are lost), and every `intervalMs` whatever happens: the
 * outbox, not the notification, is what guarantees every event is published.
 */
export function startRelay(
  deps: { db: Db; redis: RedisClient; log: Logger },
  settings: RelaySettings,
  onPublished: (count: number) => void = () => {},
): Relay {
  const batchSize = settings.batchSize ?? 500;
  const maxLength = settings.maxLength ?? 100_000;
  const publishTimeoutMs = settings.publishTimeoutMs ?? 5_000;

  async function publishBatch(): Promise<'more' | 'soon' | 'done'> {
    // Not while Redis is away: the commands would wait in ioredis's queue with the rows locked.
    if (deps.redis.status !== 'ready') throw new Error(`Redis is ${deps.redis.status}`);
    const { published, withheld } = await deps.db.transaction(async (tx) => {
      const { events, withheld } = await claimUnpublished(tx, batchSize);
      if (events.length === 0) return { published: 0, withheld };
      // MULTI: the batch lands on the stream whole or not at all.
      const multi = deps.redis.multi();
      for (const event of events) {
        multi.xadd(settings.streamKey, 'MAXLEN', '~', maxLength, '*', ...toStreamFields(event));
      }
      const results = await withTimeout(multi.exec(), publishTimeoutMs);
      const failed = results?.find(([error]) => error !== null)?.[0];
      if (!results || failed) throw new Error('Publishing inventory events failed', { cause: failed });
      await markPublished(
        tx,
        events.map((e) => e.id),
      );
      return { published: events.length, withheld };
    });
    if (published > 0) onPublished(published);
    // A full batch means there may be more waiting: go again without pausing. Rows withheld wait for
    // another relay's commit, which notifies nobody: look again shortly rather than at the next poll.
    if (published === batchSize) return 'more';
    return withheld > 0 ? 'soon' : 'done';
  }

  const loop = repeat('relay', publishBatch, { intervalMs: settings.intervalMs ?? 1_000 }, deps.log);
  const listener =
    settings.databaseUrl === undefined
      ? undefined
      : startInventoryListener(settings.databaseUrl, loop.wake, deps.log, settings.listener);
  return {
    async stop() {
      await Promise.all([listener?.stop(), loop.stop()]);
    },
    ok: loop.ok,
    listening: () => listener?.listening() ?? false,
  };
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
