import { TransientError } from '../domain/errors.ts';
import type { Caller } from './auth.ts';

/**
 * Remembers API-key lookups for `ttlMs`, so reads do not query PostgreSQL for the key on every request,
 * and keeps answering with the last known lookup while PostgreSQL is unavailable, so the cached read
 * path can still serve (stale) answers. A revoked key therefore works for up to `ttlMs` more.
 */
export function cacheKeyLookups(
  lookup: (key: string) => Promise<Caller | null>,
  options: { ttlMs: number; maxEntries: number },
): (key: string) => Promise<Caller | null> {
  const entries = new Map<string, { caller: Caller | null; expiresAt: number }>();
  const inFlight = new Map<string, Promise<Caller | null>>();
  async function lookUpAndRemember(key: string, known: { caller: Caller | null } | undefined) {
    try {
      const caller = await lookup(key);
      entries.delete(key);
      if (entries.size >= options.maxEntries) entries.delete(entries.keys().next().value as string);
      entries.set(key, { caller, expiresAt: Date.now() + options.ttlMs });
      return caller;
    } catch (error) {
      if (error instanceof TransientError && known) return known.caller;
      throw error;
    } finally {
      inFlight.delete(key);
    }
  }
  return function findKey(key: string) {
    const known = entries.get(key);
    if (known && known.expiresAt > Date.now()) return Promise.resolve(known.caller);
    // Concurrent requests with a key not (or no longer) known share one lookup: a burst of one
    // client's requests, a flash sale's first seconds, costs PostgreSQL one query per key.
    let pending = inFlight.get(key);
    if (!pending) {
      pending = lookUpAndRemember(key, known);
      inFlight.set(key, pending);
    }
    return pending;
  };
}
