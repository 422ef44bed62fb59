import { z } from 'zod';
import { CONSUMER_GROUP } from '../../flash-sale/start-flash-sale-controller.ts';
import type { OrderQueues } from '../../queues/order-queues.ts';
import { MAINTENANCE_QUEUE } from '../../queues/order-workflow.ts';
import type { RedisClient } from '../../runtime/redis.ts';
import { type Db, sql } from '../../sql/database.ts';

// Quiescence: no order in progress, no return between its creation and its label or between its receipt
// and its refund and restock (the returns load receives or cancels every return it creates), no dead
// letter still being handled or waiting for its retry, no job left in any queue (the returns saga's
// included) but the job schedulers' next runs, and the flash-sale controller caught up: every
// stock movement published to the inventory stream, every entry delivered to its consumer group and
// acknowledged (entries a killed controller left pending are taken over after 30 s). It must hold for a
// few polls in a row, since a reconciler run or a late stalled job can start new work at any moment.

export type InventoryEventsState = { unpublished: number; undelivered: number; pending: number };
export type QuietState = {
  nonTerminal: number;
  /** Returns requested (no label yet) or received (refund or restock not done). */
  openReturns: number;
  openDeadLetters: number;
  busyJobs: Record<string, number>;
  inventoryEvents: InventoryEventsState;
};
export type Quiescence = { reached: boolean; ms: number; last: QuietState | string };

const POLL_MS = 1_000;
const QUIET_POLLS = 3;
const PROGRESS_EVERY_MS = 5_000;

export async function waitForQuiescence(options: {
  db: Db;
  queues: OrderQueues;
  redis: RedisClient;
  /** The inventory stream the controller's group reads. */
  streamKey: string;
  timeoutMs: number;
  log: (message: string) => void;
}): Promise<Quiescence> {
  const start = Date.now();
  let quietPolls = 0;
  let last: QuietState | string = 'not polled yet';
  let lastProgress = start;
  for (;;) {
    last = await readState(options).catch((error: unknown) => `unreadable: ${(error as Error).message}`);
    const quiet = typeof last !== 'string' && isQuiet(last);
    quietPolls = quiet ? quietPolls + 1 : 0;
    if (quietPolls >= QUIET_POLLS) return { reached: true, ms: Date.now() - start - (QUIET_POLLS - 1) * POLL_MS, last };
    if (Date.now() - start > options.timeoutMs) return { reached: false, ms: Date.now() - start, last };
    if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = Date.now();
      options.log(`waiting for quiescence (${Math.round((Date.now() - start) / 1000)} s): ${describe(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function isQuiet(state: QuietState): boolean {
  const events = state.inventoryEvents;
  return (
    state.nonTerminal === 0 &&
    state.openReturns === 0 &&
    state.openDeadLetters === 0 &&
    Object.keys(state.busyJobs).length === 0 &&
    events.unpublished + events.undelivered + events.pending === 0
  );
}

export function describe(state: QuietState | string): string {
  if (typeof state === 'string') return state;
  const jobs = Object.entries(state.busyJobs).map(([queue, n]) => `${queue} ${n}`);
  const e = state.inventoryEvents;
  return (
    `${state.nonTerminal} orders in progress, ${state.openReturns} returns in progress, ` +
    `${state.openDeadLetters} open dead letters, busy jobs: ` +
    `${jobs.join(', ') || 'none'}; inventory events: ${e.unpublished} unpublished, ${e.undelivered} ` +
    `undelivered, ${e.pending} pending`
  );
}

async function readState(options: {
  db: Db;
  queues: OrderQueues;
  redis: RedisClient;
  streamKey: string;
}): Promise<QuietState> {
  const { db, queues } = options;
  const nonTerminal = await db.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM orders WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED')`);
  const openReturns = await db.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM returns WHERE status IN ('requested', 'received')`);
  const openDeadLetters = await db.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM dead_letters WHERE status IN ('received', 'retry_scheduled')`);
  const busyJobs: Record<string, number> = {};
  for (const [name, queue] of Object.entries(queues.queues)) {
    let busy: number;
    if (name === MAINTENANCE_QUEUE) {
      // The next run of each job scheduler (the reconciler, the tracking poll) is always there, delayed
      // or active for a moment: those do not count.
      const jobs = await queue.getJobs(['waiting', 'prioritized', 'active', 'delayed']);
      busy = jobs.filter((job) => !job.repeatJobKey).length;
    } else {
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'waiting-children');
      busy = Object.values(counts).reduce((a, b) => a + b, 0);
    }
    if (busy > 0) busyJobs[name] = busy;
  }
  return { nonTerminal, openReturns, openDeadLetters, busyJobs, inventoryEvents: await readInventoryEvents(options) };
}

/** The outbox and the controller's group: movements not yet on the stream, entries not yet handled. */
async function readInventoryEvents(options: { db: Db; redis: RedisClient; streamKey: string }) {
  const unpublished = await options.db.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM stock_movements WHERE published_at IS NULL`);
  const stream = flat(await options.redis.xinfo('STREAM', options.streamKey));
  const groups = ((await options.redis.xinfo('GROUPS', options.streamKey)) as unknown[][]).map(flat);
  const group = groups.find((g) => g.name === CONSUMER_GROUP);
  if (!group) throw new Error(`no consumer group ${CONSUMER_GROUP} on ${options.streamKey}`);
  return {
    unpublished,
    // lag is null when Redis cannot tell (entries deleted); then only "some" or "none" is known.
    undelivered:
      typeof group.lag === 'number' ? group.lag : group['last-delivered-id'] === stream['last-generated-id'] ? 0 : 1,
    pending: Number(group.pending),
  };
}

/** XINFO's answers are flat [name, value, name, value, ...] lists. */
function flat(reply: unknown): Record<string, unknown> {
  const list = reply as unknown[];
  const record: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) record[String(list[i])] = list[i + 1];
  return record;
}
