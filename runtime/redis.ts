import type { Socket } from 'node:net';
import { Cluster, Redis } from 'ioredis';
import type { RedisTarget } from '../config/index.ts';

/** A connection to one Redis server or to a Redis Cluster: what every module that talks to Redis takes. */
export type RedisClient = Redis | Cluster;

/**
 * maxRetriesPerRequest: null makes commands wait for Redis to come back instead of failing after a
 * few tries: BullMQ requires it for workers, and it keeps a worker consuming after a Redis restart.
 * The API passes `failFast` so that a request does not hang while Redis is down.
 *
 * On a cluster (config REDIS_CLUSTER_NODES) the same options go to the connection of every node. A node
 * that restarts answers "connection closed", then CLUSTERDOWN until the cluster sees it again: ioredis
 * retries both after a delay and refreshes the slots, and a script the restarted node no longer has is
 * sent again in full (ioredis's defineCommand answers NOSCRIPT with EVAL).
 *
 * No ready check on a cluster: when ioredis's check (CLUSTER INFO) finds the cluster still failing,
 * which it does for a moment after a master restarts, it reconnects without ever settling the promise
 * of connect(). BullMQ reconnects a worker's blocking connection with connect() and awaits it, so that
 * worker would stop taking jobs for good. Without the check the client is ready once it knows the
 * slots, and a command that meets the cluster still down gets CLUSTERDOWN, retried below.
 *
 * `autoPipelining` (ioredis's enableAutoPipelining) sends the commands of one turn of the event loop in
 * one write (one pipeline per node on a cluster). The API turns it on: at the flash-sale door a request
 * is a few small commands, and a write per command (a system call each) was the largest cost left in
 * its profile. Not for BullMQ's connections (see runtime/deps.ts).
 *
 * Every connection, BullMQ's included, coalesces its writes (see `coalesceWrites`).
 */
export function createRedis(
  target: RedisTarget | string,
  options: { failFast?: boolean; autoPipelining?: boolean } = {},
): RedisClient {
  const nodeOptions = {
    maxRetriesPerRequest: options.failFast ? 1 : null,
    enableOfflineQueue: !options.failFast,
    connectionName: 'orderflow',
  };
  const enableAutoPipelining = options.autoPipelining ?? false;
  if (typeof target === 'string') return coalesceWrites(new Redis(target, { ...nodeOptions, enableAutoPipelining }));
  if ('url' in target) return coalesceWrites(new Redis(target.url, { ...nodeOptions, enableAutoPipelining }));
  const { enableOfflineQueue, ...redisOptions } = nodeOptions;
  const cluster = new Cluster(target.clusterNodes, {
    redisOptions,
    enableOfflineQueue,
    enableAutoPipelining,
    enableReadyCheck: false,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 300,
    retryDelayOnTryAgain: 200,
    // A command waits out a node's restart (about 16 × 300 ms) before it fails; workers retry after that.
    maxRedirections: options.failFast ? 4 : 16,
    clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
  });
  // A node's connection is created before it connects, so its first socket is coalesced too.
  return cluster.on('+node', (node: Redis) => coalesceWrites(node));
}

/**
 * Makes the commands written to `redis` in one turn of the event loop leave in one system call, on
 * every socket the client opens (a reconnection opens a new one). This is Node's own idiom for a burst
 * of writes (`socket.cork()`, then `uncork()` on `process.nextTick`): the bytes, their order and the
 * replies are exactly what they were; only the number of writes changes. A worker finishes many jobs
 * at once (a group commit answers a batch of steps together), and BullMQ sends each job's commands on
 * their own: one write each, which wakes Redis for each. Unlike auto-pipelining, ioredis and BullMQ
 * see no difference. In `npm run bench` Redis handled half the reads per order (7.3 → 3.8, from its
 * INFO stats) and the workers were switched out about 40% less often.
 */
function coalesceWrites(redis: Redis): Redis {
  return redis.on('connect', () => {
    const socket = redis.stream as Socket;
    const write = socket.write;
    let corked = false;
    socket.write = ((...args: Parameters<Socket['write']>) => {
      if (!corked) {
        corked = true;
        socket.cork();
        process.nextTick(() => {
          corked = false;
          socket.uncork();
        });
      }
      return write.apply(socket, args);
    }) as Socket['write'];
  });
}

/** Runs `command` on every master of a cluster (SCAN, SCRIPT FLUSH, FLUSHDB …), or on the one server. */
export async function onEveryMaster<T>(redis: RedisClient, command: (node: Redis) => Promise<T>): Promise<T[]> {
  return Promise.all((redis instanceof Cluster ? redis.nodes('master') : [redis]).map(command));
}

/**
 * The keys in groups that one pipeline may carry: all of them on one server; on a cluster, the keys of
 * one hash tag (`{…}`, or the whole key without one) together, since a pipeline goes to a single node.
 */
export function groupsForPipelines(redis: RedisClient, keys: readonly string[]): string[][] {
  if (!(redis instanceof Cluster)) return [[...keys]];
  const groups = new Map<string, string[]>();
  for (const key of keys) {
    const tag = /\{([^{}]+)\}/.exec(key)?.[1] ?? key;
    groups.set(tag, [...(groups.get(tag) ?? []), key]);
  }
  return [...groups.values()];
}

/**
 * Loads every script defined on the client (ioredis defineCommand: BullMQ's and ours) into every master.
 * ioredis answers a NOSCRIPT with EVAL only for a script sent on its own: inside MULTI (BullMQ adds a
 * flow's jobs in one MULTI) the error comes back in EXEC's reply, ioredis keeps sending EVALSHA on that
 * connection, and every later flow fails the same way until the node has the script again.
 */
export async function loadScripts(redis: RedisClient): Promise<void> {
  const scripts = Object.values((redis as unknown as { scriptsSet: Record<string, { lua: string }> }).scriptsSet);
  await onEveryMaster(redis, (node) => Promise.all(scripts.map(({ lua }) => node.script('LOAD', lua))));
}
