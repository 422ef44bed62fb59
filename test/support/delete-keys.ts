import { onEveryMaster, type RedisClient } from '../../runtime/redis.ts';

/**
 * Deletes the keys matching `pattern`: SCAN on every master of a cluster (a SCAN sees one node's keys),
 * and one DEL per key (keys of different slots cannot share a DEL on a cluster).
 */
export async function deleteKeys(redis: RedisClient, pattern: string): Promise<void> {
  await onEveryMaster(redis, async (node) => {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      if (keys.length > 0) await Promise.all(keys.map((key) => node.del(key)));
      cursor = next;
    } while (cursor !== '0');
  });
}
