import { describe, expect, it } from 'vitest';
import { TransientError } from '../domain/errors.ts';
import { cacheKeyLookups } from './api-key-cache.ts';
import type { Caller } from './auth.ts';

const alice: Caller = { apiKeyId: 1, name: 'alice', role: 'customer', customerId: 'c-1' };

/** A lookup whose answers the test hands out one at a time, counting the lookups made. */
function controlledLookup() {
  const calls: Array<{ key: string; answer: (caller: Caller | null) => void; fail: (error: Error) => void }> = [];
  const lookup = (key: string) =>
    new Promise<Caller | null>((answer, fail) => {
      calls.push({ key, answer, fail });
    });
  return { calls, lookup };
}

describe('cacheKeyLookups', () => {
  it('makes one lookup for concurrent requests with a key it does not know, and remembers the answer', async () => {
    const { calls, lookup } = controlledLookup();
    const findKey = cacheKeyLookups(lookup, { ttlMs: 60_000, maxEntries: 10 });
    const answers = Promise.all([findKey('k1'), findKey('k1'), findKey('k1')]);
    expect(calls.map((c) => c.key)).toEqual(['k1']);
    calls[0]!.answer(alice);
    expect(await answers).toEqual([alice, alice, alice]);
    expect(await findKey('k1')).toEqual(alice);
    expect(calls).toHaveLength(1);
  });

  it('looks up each key on its own', async () => {
    const { calls, lookup } = controlledLookup();
    const findKey = cacheKeyLookups(lookup, { ttlMs: 60_000, maxEntries: 10 });
    const first = findKey('k1');
    const second = findKey('k2');
    expect(calls.map((c) => c.key)).toEqual(['k1', 'k2']);
    calls[0]!.answer(alice);
    calls[1]!.answer(null);
    expect(await first).toEqual(alice);
    expect(await second).toBeNull();
  });

  it('shares a failed lookup with every waiting request, then tries again on the next one', async () => {
    const { calls, lookup } = controlledLookup();
    const findKey = cacheKeyLookups(lookup, { ttlMs: 60_000, maxEntries: 10 });
    const waiting = [findKey('k1'), findKey('k1')];
    calls[0]!.fail(new TransientError('database_unavailable', 'the database is unavailable'));
    for (const request of waiting) await expect(request).rejects.toThrow('the database is unavailable');
    const again = findKey('k1');
    expect(calls).toHaveLength(2);
    calls[1]!.answer(alice);
    expect(await again).toEqual(alice);
  });
});
