import { describe, expect, it } from 'vitest';
import { ValidationError } from '../domain/errors.ts';
import { fieldName } from './input.ts';
import { parseOrderRequest } from './order-request.ts';

const validBody = {
  region: 'eu-west',
  items: [
    { sku: 'MUG', quantity: 2 },
    { sku: 'TEE', quantity: 1 },
  ],
  shippingAddress: {
    name: 'Ada Lovelace',
    line1: '12 St James Square',
    city: 'London',
    postalCode: 'SW1Y 4JH',
    country: 'GB',
  },
  payment: { token: 'tok_visa' },
};

type Problem = { field: string; message: string };

/** Parses a body that must be refused and returns the ValidationError it threw. */
function refusal(body: unknown): ValidationError {
  try {
    parseOrderRequest(body);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('parseOrderRequest accepted a body it should have refused');
}

function problems(body: unknown): Problem[] {
  return refusal(body).details as Problem[];
}

describe('parseOrderRequest', () => {
  it('returns a valid body as the parsed request', () => {
    expect(parseOrderRequest(validBody)).toEqual(validBody);
  });

  it('accepts the optional customerId and line2, trimming strings', () => {
    const parsed = parseOrderRequest({
      ...validBody,
      customerId: '  cus_1 ',
      shippingAddress: { ...validBody.shippingAddress, line2: ' Flat 3 ' },
    });
    expect(parsed.customerId).toBe('cus_1');
    expect(parsed.shippingAddress.line2).toBe('Flat 3');
  });

  it('throws a ValidationError with code validation_failed', () => {
    const error = refusal({});
    expect(error.code).toBe('validation_failed');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/^The order is not valid: /);
  });

  it('lists every missing field of an empty object in details', () => {
    expect(problems({}).map((p) => p.field)).toEqual(['region', 'items', 'shippingAddress', 'payment']);
  });

  it('names the body itself when it is not an object', () => {
    expect(problems(null).map((p) => p.field)).toEqual(['(body)']);
  });

  it.each([
    ['a price on an item', { ...validBody, items: [{ sku: 'MUG', quantity: 1, price: 100 }] }, 'items[0].price'],
    [
      'a unit price on an item',
      { ...validBody, items: [{ sku: 'MUG', quantity: 1, unitPriceCents: 1 }] },
      'items[0].unitPriceCents',
    ],
    ['a total at the top level', { ...validBody, total: 1 }, 'total'],
    ['a totalCents at the top level', { ...validBody, totalCents: 1 }, 'totalCents'],
    ['a status at the top level', { ...validBody, status: 'COMPLETED' }, 'status'],
  ])('refuses %s, saying prices, totals and statuses are computed', (_name, body, field) => {
    expect(problems(body)).toEqual([
      { field, message: expect.stringMatching(/prices, totals and statuses are computed/) },
    ]);
  });

  it.each([
    ['at the top level', { ...validBody, coupon: 'FREE' }, 'coupon'],
    ['in an item', { ...validBody, items: [{ sku: 'MUG', quantity: 1, colour: 'red' }] }, 'items[0].colour'],
    [
      'in the shipping address',
      { ...validBody, shippingAddress: { ...validBody.shippingAddress, state: 'CA' } },
      'shippingAddress.state',
    ],
    ['in the payment', { ...validBody, payment: { token: 't', cvv: '123' } }, 'payment.cvv'],
  ])('refuses an unknown field %s by name', (_name, body, field) => {
    expect(problems(body)).toEqual([{ field, message: 'is not a known field' }]);
  });

  it('lists a computed field and an unknown field together', () => {
    expect(problems({ ...validBody, total: 5, coupon: 'FREE' }).map((p) => p.field)).toEqual(['total', 'coupon']);
  });

  it.each([[0], [-1], [1.5], [101], ['2']])('refuses a quantity of %j, naming items[0].quantity', (quantity) => {
    expect(problems({ ...validBody, items: [{ sku: 'MUG', quantity }] }).map((p) => p.field)).toEqual([
      'items[0].quantity',
    ]);
  });

  it.each([[1], [100]])('accepts a quantity of %j', (quantity) => {
    expect(parseOrderRequest({ ...validBody, items: [{ sku: 'MUG', quantity }] }).items[0]?.quantity).toBe(quantity);
  });

  it('refuses a duplicate SKU, naming the later item', () => {
    expect(
      problems({
        ...validBody,
        items: [
          { sku: 'MUG', quantity: 1 },
          { sku: 'MUG', quantity: 2 },
        ],
      }),
    ).toEqual([{ field: 'items[1].sku', message: 'duplicate of items[0]; use quantity instead' }]);
  });

  it('treats SKUs that differ only by surrounding spaces as duplicates', () => {
    const body = {
      ...validBody,
      items: [
        { sku: 'MUG', quantity: 1 },
        { sku: 'TEE', quantity: 1 },
        { sku: ' MUG ', quantity: 1 },
      ],
    };
    expect(problems(body).map((p) => p.field)).toEqual(['items[2].sku']);
  });

  it.each([
    ['no items', []],
    ['51 items', Array.from({ length: 51 }, (_, i) => ({ sku: `SKU-${i}`, quantity: 1 }))],
  ])('refuses %s', (_name, items) => {
    expect(problems({ ...validBody, items }).map((p) => p.field)).toEqual(['items']);
  });

  it.each([
    ['lowercase', 'gb'],
    ['three letters', 'GBR'],
    ['a country name', 'France'],
  ])('refuses a %s country', (_name, country) => {
    expect(problems({ ...validBody, shippingAddress: { ...validBody.shippingAddress, country } })).toEqual([
      { field: 'shippingAddress.country', message: 'must be an ISO 3166-1 alpha-2 code such as GB or FR' },
    ]);
  });

  it('refuses a blank required string after trimming', () => {
    expect(problems({ ...validBody, region: '   ' }).map((p) => p.field)).toEqual(['region']);
  });
});

describe('fieldName', () => {
  it.each([
    [[], '(body)'],
    [['region'], 'region'],
    [['shippingAddress', 'country'], 'shippingAddress.country'],
    [['items', 0, 'sku'], 'items[0].sku'],
    [['items', 12], 'items[12]'],
    [[0], '[0]'],
  ] as Array<[PropertyKey[], string]>)('turns %j into %s', (path, name) => {
    expect(fieldName(path)).toBe(name);
  });
});
