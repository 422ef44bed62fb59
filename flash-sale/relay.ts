import type { Redis } from 'ioredis';
import type { Logger } from '../runtime/logger.ts';
import type { Db } from '../sql/database.ts';
import { claimUnpublished, markPublished } from '../sql/inventory-events.ts';
import { type Repeating, repeat } from './repeat.ts';
import { toStreamFields } from './stream-fields.ts';

export type RelaySettings = {
  streamKey: string;
  /** Movements published per transaction. */
  batchSize?: number;
  /** Pause between polls when there was nothing left to publish. */
  intervalMs?: number;
  /** The stream is trimmed to about this many entries (approximate trimming is cheap). */
  maxLength?: number;
  /** A publish that takes longer fails the round (rolled back, published again later). */
  publishTimeoutMs?: number;
};

/**
 * The outbox relay: publishes unpublished stock movements to the inventory stream and marks them, in
 * one PostgreSQL transaction per batch. The XADDs happen before the commit, so a crash or a failed
 * commit after them publishes the batch again later: at least once, never lost. Consumers dedupe by
 * event id. Several relays can run; `claimUnpublished` keeps them apart and each SKU's events in order.
 */
export function startRelay(
  deps: { db: Db; redis: Redis; log: Logger },
  settings: RelaySettings,
  onPublished: (count: number) => void = () => {},
): Repeating {
  const batchSize = settings.batchSize ?? 500;
  const maxLength = settings.maxLength ?? 100_000;
  const publishTimeoutMs = settings.publishTimeoutMs ?? 5_000;

  async function publishBatch(): Promise<'more' | 'done'> {
    // Not while Redis is away: the commands would wait in ioredis's queue with the rows locked.
    if (deps.redis.status !== 'ready') throw new Error(`Redis is ${deps.redis.status}`);
    const published = await deps.db.transaction(async (tx) => {
      const events = await claimUnpublished(tx, batchSize);
      if (events.length === 0) return 0;
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
      return events.length;
    });
    if (published > 0) onPublished(published);
    // A full batch means there may be more waiting: go again without pausing.
    return published === batchSize ? 'more' : 'done';
  }

  return repeat('relay', publishBatch, { intervalMs: settings.intervalMs ?? 100 }, deps.log);
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
