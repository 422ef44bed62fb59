import { createRandom } from '../../sandbox/faults.ts';

// Seeded randomness and the hostile values the generator draws from. Every draw goes through one
// generator, so a seed replays a run exactly.

export type Random = {
  next(): number;
  int(min: number, max: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
};

/** The sandbox's seeded generator (mulberry32), with the draws the fuzz needs on top. */
export function seededRandom(seed: number): Random {
  const { next, chance } = createRandom(seed);
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
    chance,
  };
}

/** Strings no text field accepts, whatever its length limit (reasons allow tabs and line breaks only). */
export const invalidStrings: readonly string[] = [
  '\u0000',
  'a\u0000b',
  'BERSERK-42\u0000',
  'x\ud800',
  '\udfffx',
  'Ada \ud83d Lovelace',
  'a\u0001b',
  'esc \u001b[31m',
  'del\u007f',
  'c1 \u0085 control',
  'x'.repeat(1_001),
  'é'.repeat(3_000),
];

/** Odd strings that are valid text: they go only into requests that something else makes invalid. */
export const oddStrings: readonly string[] = [
  "'; DROP TABLE orders; --",
  "' OR '1'='1",
  '$' + '{jndi:ldap://x/a}',
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '%00',
  '\\u0000',
  'null',
  'undefined',
  '-1',
  '1e309',
  'NaN',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🐈‍⬛',
  'مرحبا\u202eevil',
  'zero\u200bwidth',
  '\ufeffbom',
  '\ufffe\uffff',
  'BERSERK-42',
];

/** JSON values of the wrong type for any field. */
export const wrongTypes: readonly unknown[] = [null, true, false, 0, -1, 1.5, [], {}, [null], { $ne: null }];

export const numbersOutOfRange = (min: number, max: number): unknown[] => [
  min - 1,
  max + 1,
  min + 0.5,
  -0.000001,
  1e308,
  -1e308,
  2 ** 53 + 2,
  String(min),
  `${max}`,
  '1e2',
  null,
  true,
  [],
  {},
];

export const badDates: readonly unknown[] = [
  '0000-01-01',
  '1969-12-31',
  '2026-02-30',
  '10000-01-01',
  '2026-1-1',
  '2026-05-01T00:00:00Z',
  'tomorrow',
  '',
  20260501,
  true,
  {},
];

export const badInstants: readonly unknown[] = [
  '0000-01-01T00:00:00Z',
  '2026-05-01T10:00:00',
  '2026-13-01T00:00:00Z',
  '2026-02-30T00:00:00Z',
  '9999-12-31T23:59:59-14:00',
  '275760-09-13T00:00:00Z',
  'now',
  '',
  1767225600000,
  null,
];

/** Path segments that are no valid id or SKU of ours (already percent-encoded for the wire). */
export const badSegments: readonly string[] = [
  '%00',
  'a%00b',
  '%ZZ',
  '%',
  '%E0%A4%A',
  '%ED%A0%80',
  '%C0%80',
  '%0A',
  '%1B',
  '%7F',
  '-1',
  '0',
  '1e3',
  '0x10',
  '1.5',
  '9'.repeat(40),
  '%20',
  'null',
  'x'.repeat(3_000),
  '%E2%80%AE',
  '..%2F..%2Fetc',
  "'%20OR%201=1",
];

/** Query values, encoded for the wire. */
export const badQueryValues: readonly string[] = [
  '',
  '%00',
  'a%00b',
  '%ZZ',
  '-1',
  '0',
  '1e400',
  'NaN',
  'Infinity',
  '0x10',
  '1.5',
  '9'.repeat(30),
  'x'.repeat(2_000),
  '%ED%A0%80',
  '%F0%9F%90%88',
  '[]',
  '{}',
];

/** Content types a body must not be accepted with. */
export const badContentTypes: readonly (string | null)[] = [
  null,
  'text/plain',
  'text/plain;charset=UTF-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'text/json',
  'application/jsonp',
  'application/json-patch+json',
  'application/vnd.api+json',
  'application/xml',
  '',
  '*/*',
  'application',
  'json',
];

/** Content types that are JSON (so they do not make a request invalid). */
export const goodContentTypes: readonly string[] = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json;charset=UTF-8',
];

/** Bodies that are not a JSON object at all. */
export const brokenBodies: readonly string[] = [
  '{',
  '{"region": "eu",}',
  "{'region': 'eu'}",
  '{"region": NaN}',
  '{"region": "eu" /* comment */}',
  // A UTF-8 BOM is dropped when the body is decoded, so it must carry something invalid itself.
  '\ufeff[]',
  'null',
  'true',
  '42',
  '"a string"',
  '[]',
  '[{}]',
  '{"a":1}{"b":2}',
  `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
  `{"a":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}`,
  'region=eu&quantity=5',
  '\u0000',
];

/** Strings that are no API key of ours, or not in a form the API takes. */
export function badAuthHeaders(keys: { customer: string; admin: string }): Array<Record<string, string>> {
  return [
    {},
    { authorization: 'Bearer of_cus_nope' },
    { authorization: 'Bearer' },
    { authorization: 'Bearer  ' },
    { authorization: `Basic ${Buffer.from(`admin:${keys.admin}`).toString('base64')}` },
    { authorization: `Basic ${Buffer.from(`x:${keys.customer}`).toString('base64')}` },
    { authorization: `Token ${keys.customer}` },
    { authorization: `Bearer ${keys.customer.slice(0, -1)}` },
    { authorization: 'Bearer é\u00ff\u0080' },
    { authorization: `Bearer ${'k'.repeat(4_000)}` },
    { 'x-api-key': '' },
    { 'x-api-key': 'of_adm_guess' },
    { 'x-api-key': '\t' },
    { 'x-api-key': `${keys.admin}x` },
  ];
}
