import { z } from 'zod';
import type { OrderQueues } from '../../queues/order-queues.ts';
import { type StepName, stepNames } from '../../queues/order-workflow.ts';
import type { Random } from '../../sandbox/faults.ts';
import { type Db, sql } from '../../sql/database.ts';
import { restockStock } from '../../sql/inventory.ts';
import type { AppProcess, Processes } from './processes.ts';
import type { PostgresServer, RedisServer } from './servers.ts';

// The injectors and the seeded plan that times them. The plan is drawn up front from the seed, so a run
// can be replayed (`--seed N`); what the system is doing at each moment still depends on timing.

export type ProviderMode = 'latency' | 'failure' | 'reset';
export type Kill = { atMs: number; step: StepName; delayMs: number; fallback: number };
export type FaultEvent =
  | { atMs: number; kind: 'redis-restart'; downMs: number }
  | { atMs: number; kind: 'pg-terminate' }
  | { atMs: number; kind: 'pg-restart' }
  | { atMs: number; kind: 'restock'; units: number }
  | { atMs: number; kind: 'controller-kill'; downMs: number }
  | { atMs: number; kind: 'provider'; mode: ProviderMode; durationMs: number };
export type FaultPlan = { kills: Kill[]; events: FaultEvent[] };

export type KillRecord = { step: StepName; pid: number; atMs: number; foundRunning: boolean; cutInStep: boolean };
export type ControllerKillRecord = { pid: number; atMs: number; downMs: number; replacement: number };
export type FaultLog = {
  kills: KillRecord[];
  /** The flash-sale controller killed (-9) and started again after `downMs`. */
  controllerKills: ControllerKillRecord[];
  redisRestarts: number;
  pgRestarts: number;
  pgTerminations: number;
  backendsTerminated: number;
  providerWindows: Record<ProviderMode, number>;
  /** Units added by the restocks, per "sku/region": on_hand must have grown by exactly this. */
  restocked: Record<string, number>;
  errors: string[];
};
export type ChaosContext = {
  processes: Processes;
  db: Db;
  postgres: PostgresServer;
  redis: RedisServer;
  providers: string[];
  queues: OrderQueues;
  log: (message: string) => void;
};

/** Providers' settings in each fault window: latency beyond the 1 s client timeouts, 503s, resets. */
export const providerFaults: Record<ProviderMode, Record<string, number>> = {
  latency: { latencyMs: 1_500 },
  failure: { failureRate: 0.3 },
  reset: { resetRate: 0.2 },
};
const calm = { latencyMs: 0, failureRate: 0, resetRate: 0 };
// Restocks bring back SKUs that ran out, so that some out_of_stock orders waiting for their retry are
// reopened as a new generation (new authorization and capture keys) while the faults go on.
const RESTOCKED = [
  { sku: 'VAGABOND-VIZBIG-01', region: 'eu' },
  { sku: 'BERSERK-42', region: 'eu' },
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const between = (random: Random, from: number, to: number) => Math.round(from + random.next() * (to - from));

export function planFaults(
  random: Random,
  options: { durationMs: number; kills: number; controllerKills: number },
): FaultPlan {
  const d = options.durationMs;
  const offset = Math.floor(random.next() * stepNames.length);
  const kills = Array.from({ length: options.kills }, (_, i) => ({
    atMs: Math.round(2_000 + ((d - 6_000) * (i + random.next() * 0.8)) / options.kills),
    step: stepNames[(offset + i) % stepNames.length]!,
    delayMs: between(random, 0, 8),
    fallback: Math.floor(random.next() * 1_000),
  }));
  // Six provider windows in six slots that do not overlap (each window restores what it changed).
  const modes: ProviderMode[] = ['latency', 'failure', 'reset', 'latency', 'failure', 'reset'];
  for (let i = modes.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [modes[i], modes[j]] = [modes[j]!, modes[i]!];
  }
  const slot = (0.85 * d) / modes.length;
  const windows = modes.map((mode, i): FaultEvent => {
    const durationMs = Math.round(Math.min(6_000, slot * 0.6));
    return {
      atMs: Math.round(0.05 * d + i * slot + random.next() * (slot - durationMs)),
      kind: 'provider',
      mode,
      durationMs,
    };
  });
  const events: FaultEvent[] = [
    ...windows,
    { atMs: between(random, 0.3 * d, 0.45 * d), kind: 'redis-restart', downMs: between(random, 1_000, 3_000) },
    { atMs: between(random, 0.6 * d, 0.75 * d), kind: 'pg-restart' },
    ...spread(random, 3, 0.1 * d, 0.9 * d).map((atMs): FaultEvent => ({ atMs, kind: 'pg-terminate' })),
    ...spread(random, 5, 0.1 * d, 0.95 * d).map((atMs): FaultEvent => ({ atMs, kind: 'restock', units: 4 })),
    // Drawn last, so that the rest of a seed's plan is what it was before the controller took part. The
    // last kill leaves time for the events its process left pending to be taken over (30 s idle).
    ...spread(random, options.controllerKills, 0.1 * d, 0.8 * d).map(
      (atMs): FaultEvent => ({ atMs, kind: 'controller-kill', downMs: between(random, 0, 2_000) }),
    ),
  ];
  return { kills, events: events.sort((a, b) => a.atMs - b.atMs) };
}

/** `count` moments between `from` and `to`, one in each of `count` equal slices. */
function spread(random: Random, count: number, from: number, to: number): number[] {
  const slice = (to - from) / count;
  return Array.from({ length: count }, (_, i) => Math.round(from + slice * (i + random.next())));
}

/** Runs the plan from now; resolves when every fault has been injected and the providers are calm again. */
export async function runChaos(plan: FaultPlan, ctx: ChaosContext): Promise<FaultLog> {
  const log: FaultLog = {
    kills: [],
    controllerKills: [],
    redisRestarts: 0,
    pgRestarts: 0,
    pgTerminations: 0,
    backendsTerminated: 0,
    providerWindows: { latency: 0, failure: 0, reset: 0 },
    restocked: {},
    errors: [],
  };
  const start = Date.now();
  const at = (ms: number) => sleep(Math.max(0, start + ms - Date.now()));
  const guarded = (what: string, work: () => Promise<void>) =>
    work().catch((error: unknown) => {
      log.errors.push(`${what}: ${(error as Error).message}`);
      ctx.log(`fault injection failed: ${what}: ${(error as Error).message}`);
    });
  // Kills run one after another (each hunts for its step); the other faults on their own timers.
  const killing = (async () => {
    for (const kill of plan.kills) {
      await at(kill.atMs);
      await guarded(`kill in ${kill.step}`, async () => {
        log.kills.push({ ...(await killInsideStep(ctx, kill)), atMs: Date.now() - start });
      });
    }
  })();
  const others = plan.events.map(async (event) => {
    await at(event.atMs);
    await guarded(event.kind, () => injectEvent(ctx, event, log, start));
  });
  await Promise.all([killing, ...others]);
  await setProviders(ctx.providers, calm);
  return log;
}

async function injectEvent(ctx: ChaosContext, event: FaultEvent, log: FaultLog, start: number): Promise<void> {
  if (event.kind === 'redis-restart') {
    ctx.log(`restarting Redis (down for ${event.downMs} ms)`);
    await ctx.redis.restart(event.downMs);
    log.redisRestarts += 1;
  } else if (event.kind === 'pg-restart') {
    ctx.log('restarting PostgreSQL (pg_ctl restart -m fast)');
    log.pgRestarts += 1;
    await ctx.postgres.restart();
  } else if (event.kind === 'controller-kill') {
    const target = ctx.processes.controller();
    if (!target) throw new Error('no flash-sale controller alive to kill');
    const atMs = Date.now();
    ctx.processes.kill(target);
    ctx.log(`kill -9 flash-sale controller ${target.pid}; restarting it in ${event.downMs} ms`);
    await sleep(event.downMs);
    const replacement = await ctx.processes.startController();
    log.controllerKills.push({
      pid: target.pid,
      atMs: atMs - start,
      downMs: event.downMs,
      replacement: replacement.pid,
    });
  } else if (event.kind === 'restock') {
    for (const { sku, region } of RESTOCKED) {
      await retryWhileDown(() => restock(ctx.db, sku, region, event.units));
      log.restocked[`${sku}/${region}`] = (log.restocked[`${sku}/${region}`] ?? 0) + event.units;
    }
    ctx.log(`restocked ${event.units} units of ${RESTOCKED.map((r) => `${r.sku}/${r.region}`).join(', ')}`);
  } else if (event.kind === 'pg-terminate') {
    const n = await retryWhileDown(() => terminateBackends(ctx.db));
    ctx.log(`terminated ${n} PostgreSQL backends`);
    log.pgTerminations += 1;
    log.backendsTerminated += n;
  } else {
    ctx.log(`provider window: ${event.mode} for ${event.durationMs} ms`);
    log.providerWindows[event.mode] += 1;
    await setProviders(ctx.providers, providerFaults[event.mode]);
    await sleep(event.durationMs);
    await setProviders(ctx.providers, Object.fromEntries(Object.keys(providerFaults[event.mode]).map((k) => [k, 0])));
  }
}

/**
 * Waits until some worker process is inside the given step (an active job of the step's queue, taken by
 * one of our live workers), then kill -9s that process and starts a replacement. If no job of the step
 * shows up within a few seconds, a worker chosen from the seed is killed instead.
 */
async function killInsideStep(ctx: ChaosContext, kill: Kill): Promise<Omit<KillRecord, 'atMs'>> {
  const deadline = Date.now() + 6_000;
  let target: AppProcess | undefined;
  let orders: string[] = [];
  while (!target && Date.now() < deadline) {
    const active = await activeJobs(ctx.queues, kill.step).catch(() => []);
    const workers = ctx.processes.workers();
    target = workers.find((w) => active.some((j) => j.pid === w.pid));
    orders = active.filter((j) => j.pid === target?.pid).map((j) => j.orderId);
    if (!target) await sleep(10);
  }
  const foundRunning = target !== undefined;
  if (!target) {
    const workers = ctx.processes.workers();
    target = workers[kill.fallback % workers.length];
  }
  if (!target) throw new Error('no worker process alive to kill');
  await sleep(kill.delayMs);
  ctx.processes.kill(target);
  await ctx.processes.startWorker();
  const cutInStep = foundRunning && (await notCommitted(ctx.db, kill.step, orders));
  ctx.log(
    `kill -9 worker ${target.pid} ${cutInStep ? 'inside' : foundRunning ? 'just after' : 'outside'} ${kill.step}`,
  );
  return { step: kill.step, pid: target.pid, foundRunning, cutInStep };
}

/** A termination planned while PostgreSQL is restarting waits for it to come back, then happens. */
async function retryWhileDown<T>(work: () => Promise<T>, tries = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await work();
    } catch (error) {
      if (i >= tries) throw error;
      await sleep(500);
    }
  }
}

/** The step's jobs being processed now, with the pid of the worker holding each (its name is host:pid). */
async function activeJobs(queues: OrderQueues, step: StepName) {
  const jobs = await queues.queues[step].getActive();
  return jobs.map((job) => ({ orderId: String(job.data.orderId), pid: Number(job.processedBy?.split(':')[1]) }));
}

/** A kill cut a step off when the step's commit did not happen for one of the orders it was running. */
async function notCommitted(db: Db, step: StepName, orderIds: string[]): Promise<boolean> {
  if (orderIds.length === 0) return false;
  await sleep(100);
  const done = await db
    .oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(DISTINCT order_id)::int AS n FROM step_attempts
      WHERE step = ${step} AND outcome = 'succeeded' AND order_id::text = ANY(${sql.array(orderIds, 'text')})`)
    .catch(() => orderIds.length);
  return done < orderIds.length;
}

/**
 * A delivery, as the admin API records it: on_hand and available grow together, whatever is being
 * reserved at that moment, with its stock movement (the inventory event the controller and the admission
 * counters follow) in the same transaction.
 */
async function restock(db: Db, sku: string, region: string, units: number): Promise<void> {
  const result = await db.transaction((tx) => restockStock(tx, { sku, region, quantity: units }));
  if (result !== 'moved') throw new Error(`${sku}/${region} is not stocked`);
}

/** Drops every connection of the application (all but the suite's own, which has its own name). */
async function terminateBackends(db: Db): Promise<number> {
  return db.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM (
      SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND application_name IS DISTINCT FROM 'orderflow-faults' AND backend_type = 'client backend'
    ) AS terminated`);
}

export async function setProviders(urls: string[], settings: Record<string, number>): Promise<void> {
  await Promise.all(
    urls.map(async (url) => {
      const response = await fetch(`${url}/_sandbox/settings`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(settings),
      });
      if (!response.ok) throw new Error(`PUT ${url}/_sandbox/settings answered ${response.status}`);
    }),
  );
}

/** A job that is no order at all, straight onto a step queue: it must be dead-lettered after `attempts`. */
export async function addPoisonJob(queues: OrderQueues, attempts: number): Promise<void> {
  await queues.queues.ship.add(
    'ship',
    { orderId: 'poison', generation: 1, round: 0 },
    { attempts, backoff: { type: 'fixed', delay: 200 }, removeOnFail: false },
  );
}
