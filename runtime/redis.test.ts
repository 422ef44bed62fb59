import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createConnection, createServer, type Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisUrl } from '../test/support/env.ts';
import { createRedis } from './redis.ts';

// A TCP relay in front of the real Redis that counts the chunks each client connection delivers: one
// write of a few hundred bytes on loopback arrives as one chunk, and separate writes as several.
const namespace = `oft-redis-${randomBytes(4).toString('hex')}`;
const relay = createServer();
const clientSockets: Socket[] = [];
let chunks = 0;
let client: Redis;

beforeAll(async () => {
  const target = new URL(redisUrl);
  relay.on('connection', (fromClient) => {
    clientSockets.push(fromClient);
    const toRedis = createConnection(Number(target.port || 6379), target.hostname);
    fromClient.on('data', (chunk) => {
      chunks += 1;
      toRedis.write(chunk);
    });
    toRedis.pipe(fromClient);
    fromClient.on('close', () => toRedis.destroy());
    toRedis.on('close', () => fromClient.destroy());
    fromClient.on('error', () => toRedis.destroy());
    toRedis.on('error', () => fromClient.destroy());
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const { port } = relay.address() as AddressInfo;
  client = createRedis(`redis://127.0.0.1:${port}`) as Redis;
  await client.ping();
});

afterAll(async () => {
  const keys = await client.keys(`${namespace}:*`);
  if (keys.length > 0) await client.del(...keys);
  client.disconnect();
  for (const socket of clientSockets) socket.destroy();
  relay.close();
});

/** Twenty commands issued in one turn of the event loop; the chunks they arrived in; their replies. */
async function burst(round: string) {
  const before = chunks;
  const replies = await Promise.all(
    Array.from({ length: 20 }, (_, i) => client.incrby(`${namespace}:${round}:${i}`, i + 1)),
  );
  return { chunks: chunks - before, replies };
}

describe('createRedis', () => {
  it('sends the commands of one turn of the event loop in one write, each answered in order', async () => {
    const first = await burst('a');
    expect(first.chunks).toBe(1);
    expect(first.replies).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    // A command issued on its own is not held back for company.
    const before = chunks;
    expect(await client.incrby(`${namespace}:alone`, 5)).toBe(5);
    expect(chunks - before).toBe(1);
  });

  it('coalesces the writes of the socket a reconnection opens', async () => {
    const connections = clientSockets.length;
    const ready = once(client, 'ready');
    clientSockets.at(-1)!.destroy();
    await ready;
    expect(clientSockets.length).toBe(connections + 1);
    const again = await burst('b');
    expect(again.chunks).toBe(1);
    expect(again.replies).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});
