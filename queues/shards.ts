import { crc32 } from 'node:zlib';
import { MAINTENANCE_QUEUE, type QueueName, RETURNS_QUEUE } from './order-workflow.ts';

// Sharded queues (config QUEUE_SHARDS): the pipeline runs on N queue prefixes, each its own {hash tag},
// so that on a Redis Cluster the shards spread over the masters while each order's flow (whose parent
// and children BullMQ updates in one script) stays in one slot. An order's shard is a stable hash of
// its id: every process, today and after a restart, looks for its jobs in the same place. Work that is
// not an order's (maintenance, the returns saga) runs on shard 0.

/** The shard an order's jobs run on: CRC-32 of its id, modulo the number of shards. */
export function shardOf(orderId: string, shards: number): number {
  return shards === 1 ? 0 : crc32(orderId) % shards;
}

/**
 * The queue prefix of shard `shard` out of `shards`. One shard: the prefix itself, so an unsharded
 * pipeline keeps the names it has always had. Several: the shard's number goes inside the hash tag
 * (`{orderflow}` → `{orderflow-1}`), or the prefix becomes one (`orderflow` → `{orderflow-1}`).
 */
export function shardPrefix(prefix: string, shard: number, shards: number): string {
  if (shards === 1) return prefix;
  const tagged = prefix.replace(/\{([^{}]+)\}/, (_, tag: string) => `{${tag}-${shard}}`);
  return tagged === prefix ? `{${prefix}-${shard}}` : tagged;
}

/** Queues whose jobs are no order's (maintenance, the returns saga): served on shard 0 only. */
export const controlQueues: readonly QueueName[] = [MAINTENANCE_QUEUE, RETURNS_QUEUE];

/** Whether shard `shard` has a queue `name` that workers serve. */
export const servedOnShard = (name: QueueName, shard: number): boolean => shard === 0 || !controlQueues.includes(name);
