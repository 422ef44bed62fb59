import { Cluster } from 'ioredis';
import type { InventoryEvent } from '../domain/stock-movements.ts';
import type { Logger } from '../runtime/logger.ts';
import type { RedisClient } from '../runtime/redis.ts';
import { type Repeating, repeat } from './repeat.ts';
import { fromStreamFields } from './stream-fields.ts';

export type ConsumerSettings = {
  streamKey: string;
  group: string;
  /** Unique per process (hostname:pid by default): entries are pending per consumer name. */
  consumer: string;
  blockMs?: number;
  count?: number;
  /** Entries pending this long on any consumer (one that died, or a failed handling) are taken over. */
  claimIdleMs?: number;
  claimEveryMs?: number;
  /** Other consumers with nothing pending and idle this long are removed from the group. */
  forgetConsumersAfterMs?: number;
};

type Entries = Array<[id: string, fields: string[] | null]>;

/**
 * Reads the inventory stream in a consumer group and hands each batch of events to `handle`; an entry
 * is acknowledged only after `handle` resolved, so a crash leaves it pending, and a consumer (this one
 * after a restart under the same name, or any other after `claimIdleMs`) handles it again. Delivery is
 * therefore at least once: `handle` must be idempotent per event id.
 */
export function startConsumer(
  redis: RedisClient,
  settings: ConsumerSettings,
  handle: (events: InventoryEvent[]) => Promise<void>,
  log: Logger,
): Repeating {
  const { streamKey, group, consumer } = settings;
  const count = settings.count ?? 100;
  const claimIdleMs = settings.claimIdleMs ?? 30_000;
  // XREADGROUP BLOCK holds its connection: it gets one of its own, so the caller's commands never wait.
  const reader: RedisClient = redis instanceof Cluster ? redis.duplicate() : redis.duplicate();
  reader.on('error', (err) => log.warn({ err: err.message }, 'stream reader connection error'));
  let started = false;
  let nextClaimAt = 0;

  async function ensureGroup(): Promise<void> {
    try {
      await redis.xgroup('CREATE', streamKey, group, '0', 'MKSTREAM');
      log.info({ streamKey, group }, 'consumer group created');
    } catch (error) {
      if (!String((error as Error).message).startsWith('BUSYGROUP')) throw error;
    }
  }

  async function consume(entries: Entries): Promise<void> {
    if (entries.length === 0) return;
    const events: InventoryEvent[] = [];
    for (const [id, fields] of entries) {
      const event = fields ? fromStreamFields(fields) : null;
      // An entry trimmed from the stream while pending has no fields; a malformed one would fail forever.
      if (event) events.push(event);
      else if (fields) log.error({ streamId: id, fields }, 'skipping a stream entry that is not an inventory event');
    }
    if (events.length > 0) await handle(events);
    await redis.xack(streamKey, group, ...entries.map(([id]) => id));
  }

  /** After a restart under the same name (same host and pid, as in a container), our own pending entries. */
  async function consumeOwnPending(): Promise<void> {
    for (let from = '0'; ; ) {
      const entries = await readGroup(redis, [group, consumer, 'COUNT', count, 'STREAMS', streamKey, from]);
      if (entries.length === 0) return;
      await consume(entries);
      from = entries.at(-1)![0];
    }
  }

  async function reclaim(): Promise<void> {
    for (let cursor = '0-0'; ; ) {
      const [next, entries] = (await redis.xautoclaim(
        streamKey,
        group,
        consumer,
        claimIdleMs,
        cursor,
        'COUNT',
        count,
      )) as [string, Entries];
      if (entries.length > 0) log.info({ count: entries.length }, 'took over pending inventory events');
      await consume(entries);
      if (next === '0-0') break;
      cursor = next;
    }
    await forgetIdleConsumers();
  }

  // Every restart brings a new name; without this the group would list every process that ever ran.
  async function forgetIdleConsumers(): Promise<void> {
    const forgetAfterMs = settings.forgetConsumersAfterMs ?? 3_600_000;
    const consumers = (await redis.xinfo('CONSUMERS', streamKey, group)) as Array<Array<string | number>>;
    for (const info of consumers) {
      const field = (name: string) => info[info.indexOf(name) + 1];
      const name = String(field('name'));
      if (name !== consumer && Number(field('pending')) === 0 && Number(field('idle')) > forgetAfterMs) {
        await redis.xgroup('DELCONSUMER', streamKey, group, name);
      }
    }
  }

  async function readOnce(): Promise<void> {
    try {
      if (!started) {
        await ensureGroup();
        await consumeOwnPending();
        started = true;
      }
      if (Date.now() >= nextClaimAt) {
        await reclaim();
        nextClaimAt = Date.now() + (settings.claimEveryMs ?? 10_000);
      }
      const entries = await readGroup(reader, [
        ...[group, consumer, 'COUNT', count, 'BLOCK', settings.blockMs ?? 1_000],
        ...['STREAMS', streamKey, '>'],
      ]);
      await consume(entries);
    } catch (error) {
      // The stream or the group is gone (Redis lost its data, or a key was deleted): create it again.
      if (String((error as Error).message).startsWith('NOGROUP')) started = false;
      throw error;
    }
  }

  const loop = repeat('consumer', readOnce, { intervalMs: 0 }, log);
  return {
    async stop() {
      await loop.stop();
      await reader.quit().catch(() => reader.disconnect());
    },
    ok: loop.ok,
  };
}

/** The entries of our one stream. RESP3 (ioredis 6) answers `[key, entries]`; RESP2, `[[key, entries]]`. */
async function readGroup(redis: RedisClient, args: Array<string | number>): Promise<Entries> {
  const reply = (await redis.call('XREADGROUP', 'GROUP', ...args)) as unknown[] | null;
  if (!reply || reply.length === 0) return [];
  return (Array.isArray(reply[0]) ? (reply[0] as [string, Entries])[1] : reply[1]) as Entries;
}

/**
 * The events published since `sinceMs` (stream ids start with the time of their XADD), at most
 * `maxEntries` of the newest ones. A controller that starts mid-sale rebuilds its sales rates from them
 * instead of starting from zero; the group then delivers some of them again, which changes nothing.
 */
export async function readRecentEvents(
  redis: RedisClient,
  streamKey: string,
  sinceMs: number,
  maxEntries = 100_000,
): Promise<InventoryEvent[]> {
  const entries = (await redis.xrevrange(streamKey, '+', String(sinceMs), 'COUNT', maxEntries)) as Entries;
  return entries
    .reverse()
    .map(([, fields]) => (fields ? fromStreamFields(fields) : null))
    .filter((e) => e !== null);
}
