import { describe, expect, it } from 'vitest';
import { shardOf, shardPrefix } from './shards.ts';

describe('shardOf', () => {
  it.each([
    ['1b4e28ba-2fa1-4d2f-883f-0016d3cca427', 3, 2],
    ['6ba7b810-9dad-41d1-80b4-00c04fd430c8', 3, 1],
    ['f47ac10b-58cc-4372-a567-0e02b2c3d479', 3, 1],
    ['f47ac10b-58cc-4372-a567-0e02b2c3d479', 4, 3],
    ['f47ac10b-58cc-4372-a567-0e02b2c3d479', 1, 0],
    ['not-a-uuid', 3, 0],
  ])('puts order %s, out of %i shards, on shard %i', (orderId, shards, shard) => {
    expect(shardOf(orderId, shards)).toBe(shard);
  });

  it('spreads orders evenly over the shards', () => {
    const counts = [0, 0, 0];
    for (let i = 0; i < 3_000; i++) counts[shardOf(`00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, 3)]!++;
    for (const count of counts) expect(count).toBeGreaterThan(800);
  });
});

describe('shardPrefix', () => {
  it.each([
    ['{orderflow}', 0, 1, '{orderflow}'],
    ['orderflow', 0, 1, 'orderflow'],
    ['{orderflow}', 0, 3, '{orderflow-0}'],
    ['{orderflow}', 2, 3, '{orderflow-2}'],
    ['shop:{orderflow}', 1, 2, 'shop:{orderflow-1}'],
    ['orderflow', 1, 2, '{orderflow-1}'],
  ])('makes prefix %s, shard %i of %i, into %s', (prefix, shard, shards, expected) => {
    expect(shardPrefix(prefix, shard, shards)).toBe(expected);
  });
});
