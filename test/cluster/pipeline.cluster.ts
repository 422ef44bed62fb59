import { randomBytes } from 'node:crypto';
import { Job } from 'bullmq';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RedisKeys, redisKeys } from '../../cache/keys.ts';
import { isTerminal } from '../../domain/order-status.ts';
import { type FlashSaleController, startFlashSaleController } from '../../flash-sale/start-flash-sale-controller.ts';
import { DEAD_LETTER_QUEUE, firstStep, stepJobId } from '../../queues/order-workflow.ts';
import { shardOf, shardPrefix } from '../../queues/shards.ts';
import { onEveryMaster } from '../../runtime/redis.ts';
import { killNode, startNode } from '../../scripts/redis-cluster.ts';
import { listDeadLetters } from '../../sql/dead-letters.ts';
import { restockStock } from '../../sql/inventory.ts';
import { findOrder } from '../../sql/orders.ts';
import { declareSale, fastControllerSettings } from '../flash-sale-support.ts';
import { deleteKeys } from '../support/delete-keys.ts';
import { type Harness, orderBody, startHarness } from '../support/harness.ts';
import { waitFor } from '../support/wait-for.ts';
import { clusterOk } from './cluster-ok.ts';

// The pipeline on a real 3-master Redis Cluster (test/cluster/global-setup.ts) with QUEUE_SHARDS=3:
// the shards on three masters, orders through the whole pipeline, a failing order's dead letter, the
// read path, a flash sale's door, and a master killed with SIGKILL and restarted, with orders in flight
// and while its shard is idle.

const SHARDS = 3;
const layout = inject('cluster');
const nodes = layout.ports.map((port) => `127.0.0.1:${port}`).join(',');
let inspect: Cluster;
let h: Harness;
let keys: RedisKeys;

/** The port of the master that holds a key's slot. */
async function masterOf(key: string): Promise<number> {
  const slot = (await inspect.cluster('KEYSLOT', key)) as number;
  const ranges = (await inspect.cluster('SLOTS')) as unknown as Array<[number, number, [string, number]]>;
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  if (!range) throw new Error(`no master holds slot ${slot}`);
  return range[2][1];
}

/** A private queue prefix whose shards' hash tags land on three different masters. */
async function spreadPrefix(): Promise<string> {
  for (;;) {
    const prefix = `{ofc-${randomBytes(3).toString('hex')}}`;
    const masters = await Promise.all(
      Array.from({ length: SHARDS }, (_, i) => masterOf(`${shardPrefix(prefix, i, SHARDS)}:validate:wait`)),
    );
    if (new Set(masters).size === SHARDS) return prefix;
  }
}

beforeAll(async () => {
  inspect = new Cluster(layout.ports.map((port) => ({ host: '127.0.0.1', port })));
  const prefix = await spreadPrefix();
  h = await startHarness({
    env: {
      REDIS_CLUSTER_NODES: nodes,
      QUEUE_SHARDS: String(SHARDS),
      QUEUE_PREFIX: prefix,
      RECONCILE_INTERVAL_MS: '500',
      RECONCILE_STUCK_AFTER_MS: '5000',
    },
  });
  keys = redisKeys(h.config.namespace);
  // The API's connection is fail-fast (no offline queue): it must be up before the first request.
  await waitFor(
    'the API connection to the cluster',
    async () => h.apiDeps.redis.status,
    (s) => s === 'ready',
  );
});
afterAll(async () => {
  await h?.close();
  inspect?.disconnect();
});

const gatewayOf = (orderId: string) => h.sandbox.gateway.stats().byReference[orderId];
const customerKey = (i: number) => h.keys.customers[i % h.keys.customers.length]!.apiKey;

/** Places orders until each shard has `perShard` of them; returns their ids. */
async function placeOnEveryShard(perShard: number, body = orderBody()): Promise<string[]> {
  const ids: string[] = [];
  const count = (shard: number) => ids.filter((id) => shardOf(id, SHARDS) === shard).length;
  for (let i = 0; [0, 1, 2].some((shard) => count(shard) < perShard); i++) {
    const placed = await h.placeOrder(body, customerKey(i));
    expect(placed.status).toBe(201);
    ids.push(placed.body.id);
  }
  return ids;
}

describe('the sharded queues', () => {
  it('put the three shards on three different masters', async () => {
    expect(h.deps.queues.prefixes).toHaveLength(SHARDS);
    const masters = await Promise.all(h.deps.queues.prefixes.map((prefix) => masterOf(`${prefix}:validate:wait`)));
    expect(new Set(masters).size).toBe(SHARDS);
    expect(new Set(masters)).toEqual(new Set(layout.ports));
  });

  it("run every order's whole flow on its shard, to COMPLETED, charged once", async () => {
    const ids = await placeOnEveryShard(2);
    for (const id of ids) {
      expect((await h.waitForTerminal(id)).status).toBe('COMPLETED');
      expect(gatewayOf(id)).toMatchObject({ authorizations: 1, captures: 1 });
      const ref = { orderId: id, generation: 1, round: 0 };
      const own = h.deps.queues.forOrder(id);
      expect(await Job.fromId(own[firstStep], stepJobId(ref, firstStep))).toBeDefined();
      expect(await Job.fromId(own.notify, stepJobId(ref, 'notify'))).toBeDefined();
      for (const other of h.deps.queues.shards.filter((queues) => queues !== own)) {
        expect(await Job.fromId(other.notify, stepJobId(ref, 'notify'))).toBeUndefined();
      }
    }
  });

  it("fail a declined order, whose dead letter is handled on the order's shard", async () => {
    const ids = await placeOnEveryShard(1, orderBody({ token: '4000000000000002' }));
    for (const id of ids) {
      expect(await h.waitForTerminal(id)).toMatchObject({ status: 'FAILED', failure_reason: 'payment_declined' });
      const [letter] = await waitFor(
        `the dead letter of ${id} to be handled`,
        async () => (await listDeadLetters(h.deps.db, { limit: 500 })).filter((d) => d.order_id === id),
        (letters) => letters.length === 1 && letters[0]!.status !== 'received',
      );
      const job = await Job.fromId(
        h.deps.queues.forOrder(id)[DEAD_LETTER_QUEUE],
        `${id}-g${letter!.generation}-${letter!.step}`,
      );
      expect(job).toBeDefined();
      expect(gatewayOf(id)?.captures ?? 0).toBe(0);
    }
  });
});

describe('the read path on the cluster', () => {
  it('caches an order and drops the cached status when the pipeline changes it', async () => {
    const placed = await h.placeOrder(orderBody());
    const id = placed.body.id;
    const first = await h.request('GET', `/orders/${id}`, { key: h.customerKey });
    expect(first.status).toBe(200);
    const cached = await h.request('GET', `/orders/${id}`, { key: h.customerKey });
    expect(cached.body.freshness.placed.source).toBe('cache');
    expect(cached.body.freshness.placed.asOf).toBe(first.body.freshness.placed.asOf);
    expect((await h.waitForTerminal(id)).status).toBe('COMPLETED');
    // Each step invalidated the order's keys and the customer's list (two hash tags, two slots).
    const after = await h.request('GET', `/orders/${id}`, { key: h.customerKey });
    expect(after.body.status).toBe('COMPLETED');
    const list = await h.request('GET', `/customers/${h.keys.customers[0]!.customerId}/orders?limit=5`, {
      key: h.customerKey,
    });
    expect(list.body.orders.find((o: { id: string }) => o.id === id)?.status).toBe('COMPLETED');
  });

  it('answers after every master lost its scripts (NOSCRIPT): the rate limit reloads them', async () => {
    const placed = await h.placeOrder(orderBody());
    await onEveryMaster(h.apiDeps.redis, (node) => node.script('FLUSH'));
    for (let i = 0; i < 5; i++) {
      expect((await h.request('GET', `/orders/${placed.body.id}`, { key: h.customerKey })).status).toBe(200);
    }
    await h.waitForTerminal(placed.body.id);
  });
});

describe('a flash sale on the cluster', () => {
  let controller: FlashSaleController | undefined;
  afterAll(async () => {
    await controller?.stop();
    // The controller found every sale the shared database holds, other test files' too: what it left
    // hot would keep their SKUs at the door for the tests after this one.
    await deleteKeys(h.deps.redis, keys.hotSkus);
    await deleteKeys(h.deps.redis, `${h.config.namespace}:admission*`);
  });

  it("seeds a hot SKU's admission counter and answers sold_out at the door", async () => {
    const sku = 'FRIEREN-01-LTD';
    await h.setStock(sku, 'eu', 0);
    await h.deps.db.transaction((tx) => restockStock(tx, { sku, region: 'eu', quantity: 2 }));
    controller = await startFlashSaleController(h.deps, {
      ...h.config.flashSale,
      ...fastControllerSettings,
      namespace: h.config.namespace,
      purchaseLimit: 100,
      consumerName: 'cluster',
    });
    await declareSale(h.deps.db, { name: 'cluster door', region: 'eu', skus: [sku], purchaseLimit: null });
    const counter = () => h.deps.redis.hgetall(keys.admission('eu', sku));
    await waitFor('the counter to be seeded', counter, (c) => c.available === '2');
    const buy = (i: number) => h.placeOrder(orderBody({ items: [{ sku, quantity: 1 }] }), customerKey(i));
    const accepted = [await buy(0), await buy(1)];
    expect(accepted.map((a) => a.status)).toEqual([201, 201]);
    const refused = await buy(2);
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('sold_out');
    for (const a of accepted) expect((await h.waitForTerminal(a.body.id)).status).toBe('COMPLETED');
    // The reservations reach the counter through the inventory stream (the controller's consumer group).
    await waitFor('every ticket to turn into a reservation', counter, (c) => c.held === '0');
  });
});

describe('a master killed with SIGKILL and restarted', () => {
  it('loses no accepted order and charges none twice', async () => {
    // Shard 1's master, with orders in flight on it: payments slowed so that they are still running.
    const port = await masterOf(`${h.deps.queues.prefixes[1]}:validate:wait`);
    await h.setStock('BERSERK-42', 'eu', 1_000);
    h.sandbox.gateway.settings.latencyMs = 300;
    const ids: string[] = [];
    try {
      for (let i = 0; i < 24; i++) {
        const placed = await h.placeOrder(orderBody(), customerKey(i));
        expect(placed.status, JSON.stringify(placed.body)).toBe(201);
        ids.push(placed.body.id);
      }
      const onShard = ids.filter((id) => shardOf(id, SHARDS) === 1);
      expect(onShard.length).toBeGreaterThan(0);
      const inFlight = await Promise.all(onShard.map((id) => findOrder(h.deps.db, id)));
      expect(inFlight.some((o) => o && !isTerminal(o.status))).toBe(true);

      await killNode(layout, port);
      // Accepted while the node is down: durable in PostgreSQL, enqueued by the reconciler if not now.
      for (let i = 0; i < 6; i++) {
        const placed = await h.placeOrder(orderBody(), customerKey(i));
        expect(placed.status, JSON.stringify(placed.body)).toBe(201);
        ids.push(placed.body.id);
      }
      await startNode(layout, port);
    } finally {
      h.sandbox.gateway.settings.latencyMs = 0;
    }
    await clusterOk(layout);

    const ended = [];
    for (const id of ids) ended.push(await h.waitForTerminal(id));
    expect(ended.map((o) => `${o.status} ${o.failure_reason ?? ''}`.trim())).toEqual(ids.map(() => 'COMPLETED'));
    for (const id of ids) expect(gatewayOf(id)).toMatchObject({ captures: 1, captureKeys: 1 });
  });

  it('serves a shard again after its master restarted while the shard was idle', async () => {
    // Shard 0's workers sit in blocking reads on a master that goes away with nothing in flight: they
    // reconnect while the cluster still reports the restarted node failing, and must not stop there.
    const port = await masterOf(`${h.deps.queues.prefixes[0]}:validate:wait`);
    await h.setStock('BERSERK-42', 'eu', 1_000);
    await killNode(layout, port);
    await startNode(layout, port);
    await clusterOk(layout);
    const ids = await placeOnEveryShard(2);
    for (const id of ids) {
      expect((await h.waitForTerminal(id)).status).toBe('COMPLETED');
      expect(gatewayOf(id)).toMatchObject({ captures: 1, captureKeys: 1 });
    }
  });
});
