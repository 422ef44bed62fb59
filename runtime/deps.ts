import type { Redis } from 'ioredis';
import type { Config } from '../config/index.ts';
import { type Carrier, createCarrierClient } from '../providers/carrier.ts';
import { createLogMailer, type Mailer } from '../providers/mailer.ts';
import { createPaymentGatewayClient, type PaymentGateway } from '../providers/payment-gateway.ts';
import { createOrderQueues, createRedis, type OrderQueues } from '../queues/order-queues.ts';
import { createDatabase, type Db } from '../sql/database.ts';
import type { Logger } from './logger.ts';

// Every I/O dependency of a process, built from the configuration in one place and closed in one
// place. Entry points build them; everything else receives them.

export type Deps = {
  db: Db;
  redis: Redis;
  queues: OrderQueues;
  gateway: PaymentGateway;
  carrier: Carrier;
  mailer: Mailer;
  log: Logger;
  close(): Promise<void>;
};

export async function createDeps(
  config: Config,
  log: Logger,
  options: { failFastRedis?: boolean } = {},
): Promise<Deps> {
  const db = await createDatabase(config.db);
  const redis = createRedis(config.redis.url, { failFast: options.failFastRedis });
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  const queues = createOrderQueues(redis, config.redis.prefix, (err) =>
    log.warn({ err: err.message }, 'queue connection error'),
  );
  return {
    db,
    redis,
    queues,
    gateway: createPaymentGatewayClient(config.paymentGateway),
    carrier: createCarrierClient(config.carrier),
    mailer: createLogMailer(log),
    log,
    async close() {
      await queues.close();
      redis.disconnect();
      await db.end();
    },
  };
}
