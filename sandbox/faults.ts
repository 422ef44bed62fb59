import { randomInt } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { parseBody } from './protocol.ts';

// Fault injection for the fake providers, and the control routes that tune it at run time.

/**
 * resetRate is optional (unset = 0) so the settings a provider reports stay as they were until someone
 * turns connection resets on through the control endpoint.
 */
export type FaultSettings = { latencyMs: number; failureRate: number; resetRate?: number };
export type FaultCounters = { requests: number; failuresInjected: number };

export type Random = {
  readonly seed: number;
  next(): number;
  /** True with probability `rate`; draws nothing when the rate is 0, so a quiet run keeps its sequence. */
  chance(rate: number): boolean;
  /** Back to the first number of the sequence, so a reset sandbox replays the same run. */
  restart(): void;
};

export const rate = z.number().min(0).max(1);
export const faultSettingsSchema = z.object({
  latencyMs: z.number().int().min(0),
  failureRate: rate,
  resetRate: rate,
});

export function randomSeed(): number {
  return randomInt(0, 2 ** 32);
}

/** mulberry32: tiny and good enough to make declines and failures replayable from a seed. */
export function createRandom(seed: number = randomSeed()): Random {
  let state = seed >>> 0;
  function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  return {
    seed,
    next,
    chance: (probability) => probability > 0 && next() < probability,
    restart: () => {
      state = seed >>> 0;
    },
  };
}

/**
 * Fails a request before it does anything, or lets it run and then holds the answer back: a client
 * that times out meanwhile sees no answer although the operation happened, as with a real provider.
 * A reset also comes after the operation: the connection is dropped (TCP RST) instead of answering, so
 * the client cannot tell whether it happened and must retry with the same idempotency key (a reset
 * before the operation would tell it no more than a 503 does).
 */
export function injectFaults(options: {
  settings: FaultSettings;
  random: Random;
  counters: FaultCounters;
  unavailableCode: string;
}): MiddlewareHandler {
  const { settings, random, counters, unavailableCode } = options;
  return async function faults(c, next) {
    counters.requests += 1;
    if (random.chance(settings.failureRate)) {
      counters.failuresInjected += 1;
      c.header('Retry-After', '1');
      return c.json({ error: { code: unavailableCode, message: 'Service temporarily unavailable (injected)' } }, 503);
    }
    await next();
    if (settings.latencyMs > 0) await sleep(settings.latencyMs);
    if (random.chance(settings.resetRate ?? 0) && resetConnection(c)) counters.failuresInjected += 1;
  };
}

/** Drops the client's connection with a TCP RST before any byte of the answer is written. */
function resetConnection(c: Context): boolean {
  // Served by @hono/node-server, the context carries the Node request; app.request() has no socket.
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming?.socket || incoming.socket.destroyed) return false;
  incoming.socket.resetAndDestroy();
  return true;
}

export function createControlRoutes<S extends FaultSettings>(options: {
  settings: S;
  settingsSchema: z.ZodType<Partial<S>>;
  stats: () => object;
  reset: () => void;
}): Hono {
  const { settings, settingsSchema, stats, reset } = options;
  const controls = new Hono();
  controls.get('/healthz', (c) => c.json({ status: 'ok' }));
  controls.get('/_sandbox/stats', (c) => c.json(stats()));
  controls.put('/_sandbox/settings', async (c) => {
    const parsed = await parseBody(c, settingsSchema);
    if (!parsed.ok) return parsed.response;
    Object.assign(settings, parsed.data);
    return c.json(settings);
  });
  controls.post('/_sandbox/reset', (c) => {
    reset();
    return c.json({ status: 'reset' });
  });
  return controls;
}
