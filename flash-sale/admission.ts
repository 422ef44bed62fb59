import { Counter, type Registry } from 'prom-client';
import type { RedisKeys } from '../cache/keys.ts';
import type { InventoryEvent } from '../domain/stock-movements.ts';
import { groupsForPipelines, type RedisClient } from '../runtime/redis.ts';

// Admission at the door while a SKU is hot (SPEC §4). Two things in Redis, shared by every API process:
//
// The admission counter of a hot SKU in a region: a hash the flash-sale controller seeds from PostgreSQL
// and keeps in step with the inventory events; the API takes units from it, as a ticket per order, before
// storing the order. What may still be admitted is `available - held - untracked`:
//   available  the SKU's available units in PostgreSQL, as of the event (or seed) `eventId`
//   held       units of tickets: admitted orders whose reservation has not happened yet
//   untracked  units of orders in flight before their reservation that hold no ticket (placed before the
//              SKU turned hot), as of the last seed
//   maxHeld    the most units that may be held at once (the gate's backlog, domain/admission-gate.ts):
//              beyond it an order is told to come back (`busy`), not admitted, however many units are left
//   t:<order>  a ticket: "<units>:<admitted at, Redis time in s>"
//   k:<mark>   an Idempotency-Key an order was admitted under ("<api key id>:<key>") → the order id: a
//              request that comes again with it is a retry, which must replay the first answer, not be
//              told sold_out (so its key is looked up in PostgreSQL first, for the answer it had)
// A reservation turns a ticket into a drop of `available` (same event); a failed or cancelled order
// gives its ticket back; a release or restock raises `available`. Every few seconds the controller
// re-seeds the whole hash from one PostgreSQL snapshot, which corrects any drift. PostgreSQL still decides
// who gets the goods (the reserve step's conditional update): a counter that drifts can refuse a buyer
// who could have had a unit, or admit one who will not, never sell a unit twice.
//
// The admission gate: one token bucket for every order that holds a hot SKU, refilled at the rate the
// controller measures the pipeline completing orders (`rate`, tokens per second; `burst`); an order that
// finds it empty is refused with the wait until the next token. The controller publishes the rate with
// a short expiry: without a controller there is no gate, as there is no hot list.
//
// Every script reads the time from Redis (TIME), so all API processes share one clock.

/**
 * Takes a ticket: ['admitted' | 'sold_out' | 'busy' | 'untracked' | 'retry', units left, restock date
 * or '']. ARGV: order id, units, Idempotency-Key mark ('' without a key).
 */
const admitScript = `
local f = redis.call('HMGET', KEYS[1], 'available', 'held', 'untracked', 'restockDate', 'maxHeld')
local available, held, untracked = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
if not available or not held or not untracked then return {'untracked', '0', ''} end
local restock = f[4] or ''
local left = available - held - untracked
local ticket = 't:' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], ticket) == 1 then return {'admitted', tostring(left), restock} end
if ARGV[3] ~= '' and redis.call('HEXISTS', KEYS[1], 'k:' .. ARGV[3]) == 1 then return {'retry', tostring(left), restock} end
local units = tonumber(ARGV[2])
if left < units then return {'sold_out', tostring(math.max(left, 0)), restock} end
-- An order larger than the cap still goes through alone.
local cap = tonumber(f[5])
if cap and held > 0 and held + units > cap then return {'busy', tostring(left), restock} end
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], ticket, units .. ':' .. now[1], 'held', held + units)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'k:' .. ARGV[3], ARGV[1]) end
return {'admitted', tostring(left - units), restock}
`;

// Removes one ticket and its units from `held`; the body of several scripts below.
const dropTicket = `
local function dropTicket(key, orderId)
  local ticket = redis.call('HGET', key, 't:' .. orderId)
  if not ticket then return 0 end
  local units = tonumber(string.match(ticket, '^(%d+)')) or 0
  redis.call('HDEL', key, 't:' .. orderId)
  redis.call('HINCRBY', key, 'held', -units)
  return units
end
`;

const giveBackScript = `${dropTicket}
return dropTicket(KEYS[1], ARGV[1])
`;

/** ARGV: event id, available after, kind, order id ('' if none), units. */
const applyEventScript = `${dropTicket}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'eventId'))
if not last or tonumber(ARGV[1]) > last then
  redis.call('HSET', KEYS[1], 'available', ARGV[2], 'eventId', ARGV[1])
end
if ARGV[3] == 'reserve' and ARGV[4] ~= '' then
  -- The reservation of an admitted order ends its ticket; that of an order without one was counted
  -- as untracked by the last seed, and is now part of available instead.
  if dropTicket(KEYS[1], ARGV[4]) == 0 then
    local untracked = tonumber(redis.call('HGET', KEYS[1], 'untracked')) or 0
    redis.call('HSET', KEYS[1], 'untracked', math.max(untracked - tonumber(ARGV[5]), 0))
  end
end
return 1
`;

/**
 * ARGV: available, event id, untracked, restock date, expiry ms, orphan age s, max held, then 'done' ids,
 * '|', 'missing' ids. Done orders (reserved or ended, as of the snapshot) give back their tickets; missing
 * ones (not stored) only once older than the orphan age, as the API stores an order after taking its
 * ticket.
 */
const seedScript = `${dropTicket}
local last = tonumber(redis.call('HGET', KEYS[1], 'eventId'))
local untracked = ARGV[3]
if last and last > tonumber(ARGV[2]) then
  -- Events newer than the snapshot were applied meanwhile: their available is the fresher one, and the
  -- reservations they carried are no longer in flight (the snapshot's untracked is an upper bound).
  redis.call('HSET', KEYS[1], 'untracked', untracked, 'restockDate', ARGV[4])
else
  redis.call('HSET', KEYS[1], 'available', ARGV[1], 'eventId', ARGV[2], 'untracked', untracked, 'restockDate', ARGV[4])
end
redis.call('HSET', KEYS[1], 'maxHeld', ARGV[7])
local now = tonumber(redis.call('TIME')[1])
local missing = false
for i = 8, #ARGV do
  if ARGV[i] == '|' then
    missing = true
  elseif not missing then
    dropTicket(KEYS[1], ARGV[i])
  else
    local ticket = redis.call('HGET', KEYS[1], 't:' .. ARGV[i])
    local at = ticket and tonumber(string.match(ticket, ':(%d+)$'))
    if ticket and (not at or now - at >= tonumber(ARGV[6])) then dropTicket(KEYS[1], ARGV[i]) end
  end
end
-- held is recounted from the tickets, so a corrupted total heals too.
local held = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 't:' then held = held + (tonumber(string.match(fields[i + 1], '^(%d+)')) or 0) end
end
redis.call('HSET', KEYS[1], 'held', held)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return held
`;

/** Takes a token: [1, 0] when admitted (or no gate is published), [0, ms until the next token] otherwise. */
const takeTokenScript = `
local f = redis.call('HMGET', KEYS[1], 'rate', 'burst', 'tokens', 'at')
local rate, burst = tonumber(f[1]), tonumber(f[2])
if not rate or not burst or rate <= 0 then return {1, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = tonumber(f[3]) or burst
local at = tonumber(f[4]) or now
tokens = math.min(burst, tokens + math.max(now - at, 0) * rate / 1000)
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', now)
  return {1, 0}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
return {0, math.ceil((1 - tokens) * 1000 / rate)}
`;

export type AdmitAnswer =
  | { outcome: 'admitted'; left: number }
  | { outcome: 'sold_out'; left: number; restockDate: string | null }
  /** Units are left, but as many as the gate lets wait for the pipeline are admitted already. */
  | { outcome: 'busy' }
  /** No counter for this SKU: not hot, not seeded yet, or unreadable until the next seed. */
  | { outcome: 'untracked' }
  /** An order was admitted under this Idempotency-Key before: the request is a retry. */
  | { outcome: 'retry' };

export type AdmissionSeed = {
  available: number;
  eventId: string;
  untracked: number;
  restockDate: string | null;
  /** Orders holding a ticket that are past their reservation or ended, as of the same snapshot. */
  done: readonly string[];
  /** Orders holding a ticket that do not exist (yet, or any more). */
  missing: readonly string[];
};

export type PublishedGate = { ratePerSecond: number; burst: number; expiryMs: number };

// The scripts are defined as ioredis commands: sent once, then run by their SHA (EVALSHA, loaded again
// after a NOSCRIPT), so a request to the door sends a few bytes, not the script.
const scripts = {
  ofAdmit: admitScript,
  ofGiveBack: giveBackScript,
  ofApplyInventoryEvent: applyEventScript,
  ofSeedAdmission: seedScript,
  ofTakeToken: takeTokenScript,
};
type ScriptName = keyof typeof scripts;
type Scripted = { [name in ScriptName]: (key: string, ...args: Array<string | number>) => Promise<unknown> };

function withScripts<T extends RedisClient | ReturnType<RedisClient['pipeline']>>(client: T): T & Scripted {
  return client as T & Scripted;
}

function defineScripts(redis: RedisClient): void {
  for (const [name, lua] of Object.entries(scripts)) {
    if (typeof (redis as unknown as Record<string, unknown>)[name] !== 'function') {
      redis.defineCommand(name, { numberOfKeys: 1, lua });
    }
  }
}

/** `registry`: where the API process exports what its door decided (GET /metrics). */
export function admission(redis: RedisClient, keys: RedisKeys, registry?: Registry) {
  const decisions = registry
    ? new Counter({
        name: 'orderflow_admission_decisions_total',
        help: 'Order lines of SKUs with an admission counter at the door, by outcome (admitted, sold_out, busy: the backlog in front of the pipeline is full, retry: an Idempotency-Key admitted before), and orders refused by the gate (checkout_busy)',
        labelNames: ['outcome'] as const,
        registers: [registry],
      })
    : undefined;
  defineScripts(redis);
  const scripted = withScripts(redis);
  return {
    /** `keyMark`: the request's Idempotency-Key with its API key's id, to recognise a retry (see above). */
    async admit(region: string, sku: string, orderId: string, units: number, keyMark = ''): Promise<AdmitAnswer> {
      const [outcome, left, restock] = (await scripted.ofAdmit(
        keys.admission(region, sku),
        orderId,
        units,
        keyMark,
      )) as [AdmitAnswer['outcome'], string, string];
      // Every line of every order asks (see api/place-order.ts): one without a counter is not a decision.
      if (outcome !== 'untracked') decisions?.inc({ outcome });
      if (outcome === 'untracked' || outcome === 'retry' || outcome === 'busy') return { outcome };
      if (outcome === 'admitted') return { outcome, left: Number(left) };
      return { outcome, left: Number(left), restockDate: restock === '' ? null : restock };
    },

    /** Gives an order's ticket back (idempotent): the units it returned, 0 when it held none. */
    async giveBack(region: string, sku: string, orderId: string): Promise<number> {
      return (await scripted.ofGiveBack(keys.admission(region, sku), orderId)) as number;
    },

    /** Follows the events of the SKUs that have a counter (the others are left alone), in one round trip. */
    async applyEvents(events: readonly InventoryEvent[]): Promise<void> {
      if (events.length === 0) return;
      // One pipeline per counter's slot on a cluster (each event in order within its counter's).
      const counters = [...new Set(events.map((e) => keys.admission(e.region, e.sku)))];
      const results = await Promise.all(
        groupsForPipelines(redis, counters).map((group) => {
          const pipeline = withScripts(redis.pipeline());
          for (const e of events) {
            const key = keys.admission(e.region, e.sku);
            if (group.includes(key)) {
              pipeline.ofApplyInventoryEvent(key, e.id, e.availableAfter, e.kind, e.orderId ?? '', e.quantity);
            }
          }
          return pipeline.exec();
        }),
      );
      const failed = results.flatMap((result) => result ?? []).find(([error]) => error)?.[0];
      if (failed) throw new Error('Applying inventory events to admission counters failed', { cause: failed });
    },

    /** The orders holding a ticket for a SKU. */
    async ticketHolders(region: string, sku: string): Promise<string[]> {
      const fields = await redis.hkeys(keys.admission(region, sku));
      return fields.filter((f) => f.startsWith('t:')).map((f) => f.slice(2));
    },

    async seed(
      region: string,
      sku: string,
      seed: AdmissionSeed,
      options: { expiryMs: number; orphanAfterSeconds: number; maxHeld: number },
    ): Promise<number> {
      return (await scripted.ofSeedAdmission(
        keys.admission(region, sku),
        seed.available,
        seed.eventId,
        seed.untracked,
        seed.restockDate ?? '',
        options.expiryMs,
        options.orphanAfterSeconds,
        options.maxHeld,
        ...seed.done,
        '|',
        ...seed.missing,
      )) as number;
    },

    /** The SKU is not hot any more: orders for it take the normal path again. */
    async drop(region: string, sku: string): Promise<void> {
      await redis.del(keys.admission(region, sku));
    },

    /** Closes the gate to a rate (or re-tunes it); it opens again by itself `expiryMs` after the last call. */
    async publishGate(settings: PublishedGate): Promise<void> {
      await redis
        .multi()
        .hset(keys.admissionGate, 'rate', settings.ratePerSecond, 'burst', settings.burst)
        .pexpire(keys.admissionGate, settings.expiryMs)
        .exec();
    },

    /** No gate: every order is let through (the counters still answer sold_out). */
    async closeGate(): Promise<void> {
      await redis.del(keys.admissionGate);
    },

    /** One token for one order: null when admitted, else the milliseconds until a token is there. */
    async takeToken(): Promise<number | null> {
      const [admitted, waitMs] = (await scripted.ofTakeToken(keys.admissionGate)) as [number, number];
      if (admitted === 1) return null;
      decisions?.inc({ outcome: 'checkout_busy' });
      return waitMs;
    },
  };
}
export type Admission = ReturnType<typeof admission>;
