import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { redisKeys } from '../cache/keys.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../runtime/logger.ts';
import type { RedisClient } from '../runtime/redis.ts';
import type { Db } from '../sql/database.ts';
import { admission } from './admission.ts';
import { type ConsumerSettings, readRecentEvents, startConsumer } from './consumer.ts';
import { createController, type StockInvalidation } from './controller.ts';
import { createFlashSaleMetrics } from './metrics.ts';
import { type RelaySettings, startRelay } from './relay.ts';
import { repeat } from './repeat.ts';
import { serveStatus } from './status-server.ts';

export const CONSUMER_GROUP = 'flash-sale-controller';

export type FlashSaleDeps = { db: Db; redis: RedisClient; log: Logger; cache: StockInvalidation };

export type FlashSaleSettings = Config['flashSale'] & {
  namespace: string;
  /** Unique per running controller; hostname:pid by default. */
  consumerName?: string;
  evaluateEveryMs?: number;
  refreshSalesEveryMs?: number;
  /** The controller's clock for its windows and cool-downs (Date.now); a test moves it to the moments it checks. */
  clock?: () => number;
  relay?: Omit<RelaySettings, 'streamKey'>;
  consumer?: Omit<ConsumerSettings, 'streamKey' | 'group' | 'consumer'>;
};

export type FlashSaleController = {
  stop(): Promise<void>;
  registry: Registry;
  /** The per-SKU states, by `${region}:${sku}`: for inspection, not for changing. */
  states: ReturnType<typeof createController>['states'];
  server: Server | undefined;
};

/**
 * The flash-sale controller with its outbox relay: publishes stock movements to the inventory stream,
 * consumes the stream in the `flash-sale-controller` group, and keeps the hot hash and the stock cache
 * in line with its decisions. Run one per system: consumers of one group share the events, so two
 * controllers would each see half the sales (the relay, on the other hand, can run anywhere).
 */
export async function startFlashSaleController(
  deps: FlashSaleDeps,
  settings: FlashSaleSettings,
): Promise<FlashSaleController> {
  const { log } = deps;
  const keys = redisKeys(settings.namespace);
  const registry = new Registry();
  const metrics = createFlashSaleMetrics(registry, () => controller.hotCount());
  const controller = createController({ ...deps, keys, admission: admission(deps.redis, keys) }, settings, metrics);

  await controller.loadHotSkus();
  // At once, not a heartbeat later: the previous controller's hot SKUs may be close to expiring.
  await controller.heartbeat().catch((error) => {
    log.warn({ err: (error as Error).message }, 'hot SKU hash not renewed yet; the heartbeat loop tries again');
  });
  // The declared sales first: the controller decides nothing until it knows them (see controller.ts).
  await controller.refreshSales().catch((error) => {
    log.warn({ err: (error as Error).message }, 'declared sales not loaded yet; decisions wait for them');
  });
  await controller.handleEvents(
    await readRecentEvents(deps.redis, keys.inventoryEvents, (settings.clock ?? Date.now)() - settings.rateWindowMs),
  );

  const relay = startRelay(
    deps,
    {
      streamKey: keys.inventoryEvents,
      intervalMs: settings.relayFallbackPollMs,
      databaseUrl: settings.relayListenUrl,
      ...settings.relay,
    },
    metrics.published,
  );
  const every = (ms: number | undefined, fallback: number) => ({ intervalMs: ms ?? fallback });
  const refresher = repeat('declared sales', controller.refreshSales, every(settings.refreshSalesEveryMs, 2_000), log);
  const evaluator = repeat('evaluation', controller.evaluateAll, every(settings.evaluateEveryMs, 1_000), log);
  const heart = repeat('heartbeat', controller.heartbeat, { intervalMs: settings.heartbeatMs }, log);
  const admitter = repeat('admission', controller.syncAdmission, every(settings.admission.reseedEveryMs, 2_000), log);
  controller.onTurnedHot(admitter.wake);
  const consumer = startConsumer(
    deps.redis,
    {
      streamKey: keys.inventoryEvents,
      group: CONSUMER_GROUP,
      consumer: settings.consumerName ?? `${hostname()}:${process.pid}`,
      ...settings.consumer,
    },
    controller.handleEvents,
    log,
  );

  function health() {
    const loops = {
      relay: relay.ok(),
      consumer: consumer.ok(),
      declaredSales: refresher.ok(),
      admission: admitter.ok(),
      evaluation: evaluator.ok(),
      heartbeat: heart.ok(),
    };
    const ok = deps.redis.status === 'ready' && Object.values(loops).every(Boolean);
    return {
      ok,
      detail: { redis: deps.redis.status, loops, relayListening: relay.listening(), hotSkus: controller.hotCount() },
    };
  }
  const server =
    settings.port === 0
      ? undefined
      : serveStatus(settings.port, registry, health, (err) => log.error({ err: err.message }, 'status server failed'));
  log.info({ port: settings.port, stream: keys.inventoryEvents }, 'flash-sale controller started');
  let stopped: Promise<void> | undefined;

  return {
    registry,
    states: controller.states,
    server,
    stop() {
      stopped ??= (async () => {
        await Promise.all([
          consumer.stop(),
          relay.stop(),
          refresher.stop(),
          evaluator.stop(),
          admitter.stop(),
          heart.stop(),
        ]);
        if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
        log.info('flash-sale controller stopped');
      })();
      return stopped;
    },
  };
}
