import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DataRejectedError, TransientError } from '../domain/errors.ts';
import { sql } from '../sql/database.ts';
import { recordDeadLetter } from '../sql/dead-letters.ts';
import { diffSnapshots, takeSnapshot } from './fuzz/snapshot.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

// Malformed input from a hostile or broken client: every answer is a 4xx in the documented shape, never
// a 500 (a bug) nor a 503 (an outage that a retry could outlive), and nothing is stored. No workers run:
// what the API wrote stays as it is.
let h: Harness;
let orderId: string;
beforeAll(async () => {
  h = await startHarness({ workers: false });
  const placed = await h.placeOrder(orderBody());
  expect(placed.status).toBe(201);
  orderId = placed.body.id;
});
afterAll(async () => {
  await h?.close();
});

type Answer = Awaited<ReturnType<Harness['request']>>;

function expectError(res: Answer, status: number, code: string) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(Object.keys(res.body).sort()).toEqual(['error']);
  expect(Object.keys(res.body.error).sort()).toEqual(['code', 'details', 'message']);
  expect(res.body.error).toMatchObject({ code, message: expect.any(String) });
  expect(typeof res.body.error.details).toBe('object'); // an object, an array or null
  expect(res.headers.get('retry-after')).toBeNull();
}

function fieldsOf(res: Answer): string[] {
  return (res.body.error.details as Array<{ field: string }>).map((d) => d.field);
}

/** Runs `send` and checks it changed nothing in PostgreSQL. */
async function changesNothing(send: () => Promise<unknown>): Promise<void> {
  const before = await takeSnapshot(h.deps.db);
  await send();
  expect(diffSnapshots(before, await takeSnapshot(h.deps.db))).toEqual([]);
}

const NUL = 'a\u0000b';
const LONE_SURROGATE = 'Ada \ud800 Lovelace';

describe('a NUL character in a string that would reach PostgreSQL', () => {
  it('is refused in every order field with 400 naming the field, and stores nothing', async () => {
    const cases: Array<[string, unknown]> = [
      ['region', { ...orderBody(), region: NUL }],
      ['items[0].sku', orderBody({ items: [{ sku: NUL, quantity: 1 }] })],
      ['shippingAddress.name', { ...orderBody(), shippingAddress: { ...orderBody().shippingAddress, name: NUL } }],
      ['shippingAddress.line2', { ...orderBody(), shippingAddress: { ...orderBody().shippingAddress, line2: NUL } }],
      ['payment.token', orderBody({ token: NUL })],
    ];
    await changesNothing(async () => {
      for (const [field, body] of cases) {
        const res = await h.placeOrder(body);
        expectError(res, 400, 'validation_failed');
        expect(fieldsOf(res)).toContain(field);
      }
      const admin = await h.placeOrder({ ...orderBody(), customerId: NUL }, h.adminKey);
      expectError(admin, 400, 'validation_failed');
      expect(fieldsOf(admin)).toContain('customerId');
    });
  });

  it('is 400, not 503 with Retry-After, in the SKU or the region of a stock read', async () => {
    expectError(
      await h.request('GET', '/inventory/BERSERK%0042?region=eu', { key: h.customerKey }),
      400,
      'validation_failed',
    );
    const region = await h.request('GET', '/inventory/BERSERK-42?region=e%00u', { key: h.customerKey });
    expectError(region, 400, 'validation_failed');
    expect(fieldsOf(region)).toEqual(['region']);
  });

  it('is 400 in a customer id, a restocked SKU, a region and a flash sale name', async () => {
    await changesNothing(async () => {
      expectError(
        await h.request('GET', '/customers/cust%00ada/orders', { key: h.adminKey }),
        400,
        'validation_failed',
      );
      expectError(
        await h.request('POST', '/admin/inventory/BERSERK%0042/restock', {
          key: h.adminKey,
          body: { region: 'eu', quantity: 1 },
        }),
        400,
        'validation_failed',
      );
      expectError(
        await h.request('POST', '/admin/inventory/BERSERK-42/adjust', {
          key: h.adminKey,
          body: { region: NUL, available: 3 },
        }),
        400,
        'validation_failed',
      );
      const sale = await h.request('POST', '/admin/flash-sales', {
        key: h.adminKey,
        body: {
          name: NUL,
          region: 'eu',
          skus: ['BERSERK-42', NUL],
          startsAt: new Date().toISOString(),
          endsAt: new Date(Date.now() + 60_000).toISOString(),
        },
      });
      expectError(sale, 400, 'validation_failed');
      expect(fieldsOf(sale)).toEqual(['name', 'skus[1]']);
    });
  });

  it('is 400 in a cancellation reason', async () => {
    await changesNothing(async () => {
      const res = await h.request('POST', `/orders/${orderId}/cancel`, { key: h.customerKey, body: { reason: NUL } });
      expectError(res, 400, 'validation_failed');
      expect(fieldsOf(res)).toEqual(['reason']);
    });
  });
});

describe('a lone UTF-16 surrogate', () => {
  it('is refused in an address field with 400, and stores nothing', async () => {
    await changesNothing(async () => {
      const res = await h.placeOrder({
        ...orderBody(),
        shippingAddress: { ...orderBody().shippingAddress, line1: LONE_SURROGATE },
      });
      expectError(res, 400, 'validation_failed');
      expect(fieldsOf(res)).toEqual(['shippingAddress.line1']);
    });
  });
});

describe('a `before` cursor', () => {
  const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  it.each([
    ['a timestamp past year 9999', [1e20, orderId]],
    ['a negative timestamp', [-8.64e15, '00000000-0000-4000-8000-000000000000']],
    ['no number (NaN becomes null in JSON)', [null, '00000000-0000-4000-8000-000000000000']],
    ['a string for the timestamp', ['1e999', '00000000-0000-4000-8000-000000000000']],
    ['an id that is not a UUID', [Date.now(), 'x']],
    ['not an array', { createdAt: 1 }],
  ])('is 400 when it decodes to %s', async (_name, value) => {
    const res = await h.request('GET', `/customers/cust_ada/orders?before=${cursor(value)}`, { key: h.customerKey });
    expectError(res, 400, 'validation_failed');
    expect(fieldsOf(res)).toEqual(['before']);
  });

  it('from a previous page still works', async () => {
    const first = await h.request('GET', '/customers/cust_ada/orders?limit=1', { key: h.customerKey });
    expect(first.status).toBe(200);
    const next = await h.request('GET', `/customers/cust_ada/orders?limit=1&before=${first.body.next}`, {
      key: h.customerKey,
    });
    expect(next.status).toBe(200);
  });
});

describe('an admin order for a customer that does not exist', () => {
  it('is 400 on customerId (not a foreign-key 500), and stores nothing', async () => {
    await changesNothing(async () => {
      const res = await h.placeOrder({ ...orderBody(), customerId: 'cust_nobody' }, h.adminKey, {
        'idempotency-key': 'hostile-unknown-customer',
      });
      expectError(res, 400, 'validation_failed');
      expect(fieldsOf(res)).toEqual(['customerId']);
    });
  });
});

describe('a date the format allows but PostgreSQL refuses', () => {
  it('is 400 as a restock date, and changes no stock', async () => {
    await changesNothing(async () => {
      for (const date of ['0000-01-01', '1969-12-31', '10000-01-01']) {
        const res = await h.request('POST', '/admin/inventory/BERSERK-42/restock', {
          key: h.adminKey,
          body: { region: 'eu', quantity: 1, nextRestockDate: date },
        });
        expectError(res, 400, 'validation_failed');
        expect(fieldsOf(res)).toEqual(['nextRestockDate']);
      }
    });
  });

  it('is 400 as the start of a flash sale', async () => {
    await changesNothing(async () => {
      const res = await h.request('POST', '/admin/flash-sales', {
        key: h.adminKey,
        body: {
          name: 'Year zero',
          region: 'eu',
          skus: ['BERSERK-42'],
          startsAt: '0000-01-01T00:00:00Z',
          endsAt: new Date(Date.now() + 60_000).toISOString(),
        },
      });
      expectError(res, 400, 'validation_failed');
      expect(fieldsOf(res)).toContain('startsAt');
    });
  });
});

describe('an order that does not exist', () => {
  it('is 404 each time it is asked for, at once or in a row, never 503 while a miss holds the fill lock', async () => {
    const path = '/orders/5e1f7a3c-0b9d-4c2e-8f6a-1d2c3b4a5e6f';
    for (let i = 0; i < 3; i++) expectError(await h.request('GET', path, { key: h.customerKey }), 404, 'not_found');
    const together = await Promise.all(Array.from({ length: 6 }, () => h.request('GET', path, { key: h.customerKey })));
    for (const res of together) expectError(res, 404, 'not_found');
  });
});

describe('the error body', () => {
  it('always has code, message and details (null when there is nothing to add)', async () => {
    const answers: Array<[Answer, number]> = [
      [await h.request('GET', `/orders/${orderId}`), 401],
      [await h.request('GET', '/admin/hot-skus', { key: h.customerKey }), 403],
      [await h.request('GET', '/no/such/route', { key: h.customerKey }), 404],
      [await h.request('GET', '/orders/00000000-0000-4000-8000-000000000000', { key: h.customerKey }), 404],
    ];
    for (const [res, status] of answers) {
      expect(res.status).toBe(status);
      expect(res.body.error.details).toBeNull();
      expect(Object.keys(res.body.error).sort()).toEqual(['code', 'details', 'message']);
    }
  });
});

describe('a body that is not sent as JSON', () => {
  const forms = [
    ['text/plain', JSON.stringify({ region: 'eu', quantity: 5, available: 5 })],
    ['application/x-www-form-urlencoded', 'region=eu&quantity=5&available=5'],
  ] as const;

  async function send(path: string, contentType: string, body: string) {
    const res = await h.app.request(path, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${path.startsWith('/admin') ? h.adminKey : h.customerKey}`,
        'content-type': contentType,
      },
      body,
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] };
  }

  it('is 415 on every route that takes a body, and changes nothing', async () => {
    const sale = await h.request('POST', '/admin/flash-sales', {
      key: h.adminKey,
      body: {
        name: 'Spring',
        region: 'eu',
        skus: ['BERSERK-41'],
        startsAt: new Date().toISOString(),
        endsAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    expect(sale.status).toBe(201);
    const letter = await recordDeadLetter(h.deps.db, {
      orderId,
      generation: 1,
      step: 'ship',
      errorCode: 'internal',
      message: 'for the test',
      attempts: 1,
      payload: null,
    });
    const routes = [
      '/orders',
      `/orders/${orderId}/cancel`,
      '/admin/inventory/BERSERK-42/restock',
      '/admin/inventory/BERSERK-42/adjust',
      '/admin/flash-sales',
      `/admin/flash-sales/${sale.body.id}/end`,
      `/admin/dead-letters/${letter.id}/replay`,
      `/admin/dead-letters/${letter.id}/discard`,
    ];
    await changesNothing(async () => {
      for (const path of routes) {
        for (const [contentType, body] of forms) {
          const res = await send(path, contentType, path === '/orders' ? JSON.stringify(orderBody()) : body);
          expectError(res, 415, 'unsupported_media_type');
          expect(res.body.error.details).toEqual({ contentType });
        }
      }
      const untyped = await h.app.request('/orders', {
        method: 'POST',
        headers: { authorization: `Bearer ${h.customerKey}` },
        body: JSON.stringify(orderBody()),
      });
      expect(untyped.status).toBe(415);
    });
  });

  it('is still accepted when empty on cancel, without a content type', async () => {
    const placed = await h.placeOrder(orderBody());
    const res = await h.app.request(`/orders/${placed.body.id}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${h.customerKey}` },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Answer['body']).status).toBe('CANCELLED');
  });
});

describe('a dead-letter replay with nothing to replay', () => {
  it('is 409 and leaves the letter as it was, for an order that is not FAILED and for a poison job', async () => {
    const pending = await recordDeadLetter(h.deps.db, {
      orderId,
      generation: 1,
      step: 'notify',
      errorCode: 'internal',
      message: 'for the test',
      attempts: 1,
      payload: null,
    });
    const poison = await recordDeadLetter(h.deps.db, {
      orderId: 'not-an-order',
      generation: 1,
      step: 'ship',
      errorCode: 'internal',
      message: 'for the test',
      attempts: 3,
      payload: null,
    });
    await changesNothing(async () => {
      for (const letter of [pending, poison]) {
        expectError(
          await h.request('POST', `/admin/dead-letters/${letter.id}/replay`, { key: h.adminKey }),
          409,
          'conflict',
        );
      }
    });
  });
});

describe('database errors, translated inside sql/', () => {
  const text = z.object({ v: z.string() });

  it('turn a value PostgreSQL cannot hold into invalid_value, keeping the cause', async () => {
    const refusals = [
      () => h.deps.db.one(sql.type(text)`SELECT ${NUL}::text AS v`),
      () => h.deps.db.one(sql.type(text)`SELECT ${'0000-01-01'}::date::text AS v`),
      () => h.deps.db.one(sql.type(text)`SELECT ${'not-a-uuid'}::uuid::text AS v`),
      () => h.deps.db.one(sql.type(text)`SELECT to_timestamp(${1e20})::text AS v`),
    ];
    for (const refusal of refusals) {
      const error = await refusal().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DataRejectedError);
      expect((error as DataRejectedError).code).toBe('invalid_value');
      expect((error as DataRejectedError).cause).toBeInstanceOf(Error);
    }
  });

  it('turn a broken constraint into constraint_violated, naming its kind, inside a transaction too', async () => {
    const fk = await h.deps.db
      .query(sql.typeAlias('void')`
        INSERT INTO api_keys (name, key_hash, key_prefix, role, customer_id)
        VALUES ('t', 'h-fk', 'p', 'customer', 'cust_nobody')`)
      .catch((e: unknown) => e);
    expect(fk).toMatchObject({ code: 'constraint_violated', details: { kind: 'foreign_key' } });
    const check = await h.deps.db
      .transaction((tx) =>
        tx.query(sql.typeAlias('void')`UPDATE inventory SET available = -1 WHERE sku = 'BERSERK-42'`),
      )
      .catch((e: unknown) => e);
    expect(check).toMatchObject({ code: 'constraint_violated', details: { kind: 'check' } });
    const unique = await h.deps.db
      .query(sql.typeAlias('void')`INSERT INTO customers (id, name, email) VALUES ('cust_ada', 'x', 'y')`)
      .catch((e: unknown) => e);
    expect(unique).toBeInstanceOf(DataRejectedError);
    expect(unique).toMatchObject({
      code: 'constraint_violated',
      details: { kind: 'unique' },
      constraint: 'customers_pkey',
    });
    // A worker gives these its step's bounded retries, as it did before they had a code of their own.
    expect((unique as DataRejectedError).retryable).toBe(true);
  });

  it('are not taken for an outage by the read-through cache', async () => {
    const read = (load: () => Promise<unknown>) =>
      h.apiDeps.cache.read('test', `${h.config.namespace}:hostile:${Math.random()}`, 1_000, load).catch((e) => e);
    const refused = await read(() => h.deps.db.one(sql.type(text)`SELECT ${NUL}::text AS v`));
    expect(refused).toBeInstanceOf(DataRejectedError);
    const bug = await read(async () => {
      throw new TypeError('a bug');
    });
    expect(bug).not.toBeInstanceOf(TransientError);
    expect(bug).toMatchObject({ code: 'internal' });
  });
});
