import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOrderRequest } from '../api/order-request.ts';
import { hashRequest } from '../api/place-order.ts';
import { findApiKey } from '../sql/api-keys.ts';
import { upsertCatalogItem } from '../sql/catalog.ts';
import { claimIdempotencyKey } from '../sql/idempotency-keys.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';

// The HTTP contract of order submission and reading. No workers run here: orders stay PENDING, which is
// what lets these tests look at exactly what the API wrote.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ workers: false });
});
afterAll(async () => {
  await h?.close();
});

async function orderCount(): Promise<number> {
  const { rows } = await h.deps.db.query(
    (await import('../sql/database.ts')).sql.type(
      (await import('zod')).z.object({ n: (await import('zod')).z.number() }),
    )`SELECT count(*)::int AS n FROM orders`,
  );
  return rows[0]!.n;
}

describe('POST /orders', () => {
  it('answers 400 naming every bad field, and stores nothing', async () => {
    const before = await orderCount();
    const res = await h.placeOrder({
      region: '',
      items: [{ sku: 'BERSERK-42', quantity: 0 }],
      shippingAddress: { name: 'A' },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('validation_failed');
    const fields = res.body.error.details.map((d: { field: string }) => d.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'region',
        'items[0].quantity',
        'shippingAddress.line1',
        'shippingAddress.city',
        'payment',
      ]),
    );
    expect(await orderCount()).toBe(before);
  });

  it('rejects a client-sent price, total or status, saying they are computed', async () => {
    const body = {
      ...orderBody(),
      total: 1,
      status: 'COMPLETED',
      items: [{ sku: 'BERSERK-42', quantity: 1, price: 1 }],
    };
    const res = await h.placeOrder(body);
    expect(res.status).toBe(400);
    const byField = Object.fromEntries(
      res.body.error.details.map((d: { field: string; message: string }) => [d.field, d.message]),
    );
    expect(byField['items[0].price']).toMatch(/computed/);
    expect(byField.total).toMatch(/computed/);
    expect(byField.status).toMatch(/computed/);
  });

  it('rejects unknown SKUs and SKUs not sold in the region, by position', async () => {
    const unknown = await h.placeOrder(
      orderBody({
        items: [
          { sku: 'BERSERK-42', quantity: 1 },
          { sku: 'NOPE-1', quantity: 1 },
        ],
      }),
    );
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details).toEqual([{ field: 'items[1].sku', message: 'unknown SKU "NOPE-1"' }]);
    const unsold = await h.placeOrder(orderBody({ region: 'us', items: [{ sku: 'VAGABOND-VIZBIG-01', quantity: 1 }] }));
    expect(unsold.status).toBe(400);
    expect(unsold.body.error.details[0].field).toBe('items[0].sku');
  });

  it('answers 400 for a body that is not JSON, and 413 for one over the size limit', async () => {
    const notJson = await h.request('POST', '/orders', { key: h.customerKey, body: '{"region":', headers: {} });
    expect(notJson.status).toBe(400);
    const huge = await h.placeOrder({ ...orderBody(), padding: 'x'.repeat(h.config.http.bodyLimitBytes + 1) });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe('payload_too_large');
  });

  it('computes prices and totals from the catalog and stores the order as PENDING', async () => {
    const res = await h.placeOrder(
      orderBody({
        items: [
          { sku: 'BERSERK-41', quantity: 3 },
          { sku: 'ONEPIECE-105', quantity: 1 },
        ],
      }),
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'PENDING', customerId: 'cust_ada', totalCents: 3 * 1499 + 999 });
    const view = await h.request('GET', res.headers.get('location')!, { key: h.customerKey });
    expect(view.body.history).toEqual([
      expect.objectContaining({ from: null, to: 'PENDING', actor: 'api:demo-cust_ada' }),
    ]);
  });
});

describe('Idempotency-Key', () => {
  it('replays the first answer for the same key and body, without a second order', async () => {
    const first = await h.placeOrder(orderBody(), h.customerKey, { 'idempotency-key': 'replay-1' });
    const before = await orderCount();
    const second = await h.placeOrder(orderBody(), h.customerKey, { 'idempotency-key': 'replay-1' });
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await orderCount()).toBe(before);
  });

  it('answers 422 when the same key comes with a different body', async () => {
    await h.placeOrder(orderBody(), h.customerKey, { 'idempotency-key': 'mismatch-1' });
    const res = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-41', quantity: 5 }] }), h.customerKey, {
      'idempotency-key': 'mismatch-1',
    });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('idempotency_key_reused');
  });

  it('answers 409 while a request with the same key is still in flight', async () => {
    const caller = (await findApiKey(h.deps.db, h.customerKey))!;
    const body = orderBody({ items: [{ sku: 'ONEPIECE-105', quantity: 2 }] });
    // Another API process has claimed the key for this very request and not finished yet.
    const requestHash = hashRequest('cust_ada', parseOrderRequest(body));
    await claimIdempotencyKey(h.deps.db, { apiKeyId: caller.id, key: 'flight-1', requestHash, staleAfterMs: 60_000 });
    const res = await h.placeOrder(body, h.customerKey, { 'idempotency-key': 'flight-1' });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('idempotency_key_in_flight');
  });

  it('creates one order when three requests with the same key race, and answers them all with it', async () => {
    const before = await orderCount();
    const body = orderBody({ items: [{ sku: 'CHAINSAW-05', quantity: 1 }] });
    const results = await Promise.all(
      [1, 2, 3].map(() => h.placeOrder(body, h.customerKey, { 'idempotency-key': 'race-1' })),
    );
    // The key is claimed by the statement that stores the order: the others wait for it, then replay.
    expect(results.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(results.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(2);
    expect(await orderCount()).toBe(before + 1);
  });
});

describe('prices', () => {
  it("charges the catalog's price of the moment, even one the API has not seen yet", async () => {
    const berserk = { sku: 'BERSERK-42', name: 'Berserk, Vol. 42', currency: 'EUR', final_sale: false };
    const first = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-42', quantity: 2 }] }));
    expect(first.body.totalCents).toBe(2 * 1999);
    // The API remembers the catalog rows it priced from; the price changes behind its back.
    await upsertCatalogItem(h.deps.db, { ...berserk, price_cents: 2199 });
    try {
      const second = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-42', quantity: 2 }] }));
      expect(second.status).toBe(201);
      expect(second.body.totalCents).toBe(2 * 2199);
      expect(second.body.items[0]).toMatchObject({ unitPriceCents: 2199, lineTotalCents: 2 * 2199 });
      const stored = await h.request('GET', `/orders/${second.body.id}`, { key: h.customerKey });
      expect(stored.body).toMatchObject({ totalCents: 2 * 2199 });
    } finally {
      await upsertCatalogItem(h.deps.db, { ...berserk, price_cents: 1999 });
    }
  });
});

describe('API keys', () => {
  it('answers 401 without a key or with an unknown one', async () => {
    expect((await h.request('POST', '/orders', { body: orderBody() })).status).toBe(401);
    expect((await h.placeOrder(orderBody(), 'of_cus_not-a-real-key')).status).toBe(401);
  });

  it("shows a customer their own order, and another customer's order as 404", async () => {
    const placed = await h.placeOrder(orderBody());
    const own = await h.request('GET', `/orders/${placed.body.id}`, { key: h.customerKey });
    expect(own.status).toBe(200);
    const other = await h.request('GET', `/orders/${placed.body.id}`, { key: h.keys.customers[1]!.apiKey });
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('not_found');
    const admin = await h.request('GET', `/orders/${placed.body.id}`, { key: h.adminKey });
    expect(admin.status).toBe(200);
  });

  it('lets an admin place an order for a named customer, and refuses a customer ordering for another', async () => {
    const noCustomer = await h.placeOrder(orderBody(), h.adminKey);
    expect(noCustomer.status).toBe(400);
    expect(noCustomer.body.error.details[0].field).toBe('customerId');
    const forGrace = await h.placeOrder({ ...orderBody(), customerId: 'cust_grace' }, h.adminKey);
    expect(forGrace.status).toBe(201);
    expect(forGrace.body.customerId).toBe('cust_grace');
    const impersonation = await h.placeOrder({ ...orderBody(), customerId: 'cust_grace' }, h.customerKey);
    expect(impersonation.status).toBe(403);
  });

  it('answers 400 for an order id that is not a UUID', async () => {
    const res = await h.request('GET', '/orders/42', { key: h.customerKey });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].field).toBe('id');
  });
});

describe('operations endpoints', () => {
  it('reports ready when PostgreSQL and Redis answer and Redis never evicts', async () => {
    const res = await h.request('GET', '/readyz');
    expect(res.status).toBe(200);
    expect(res.body.checks.redisEvictionPolicy.ok).toBe(true);
  });

  it('keeps Bull Board for admin keys only', async () => {
    expect((await h.request('GET', '/admin/queues')).status).toBe(401);
    expect((await h.request('GET', '/admin/queues', { key: h.customerKey })).status).toBe(403);
    const basic = Buffer.from(`admin:${h.adminKey}`).toString('base64');
    const page = await h.app.request('/admin/queues', { headers: { authorization: `Basic ${basic}` } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);
  });

  it('challenges with Basic alone on Bull Board, so a browser asks for the login', async () => {
    const res = await h.app.request('/admin/queues');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="orderflow"/);
  });

  it('refuses Basic auth everywhere but Bull Board, so a cross-site form cannot ride an admin login', async () => {
    const basic = `Basic ${Buffer.from(`admin:${h.adminKey}`).toString('base64')}`;
    const sale = await h.app.request('/admin/inventory/BERSERK-42/restock', {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ region: 'eu', quantity: 5 }),
    });
    expect(sale.status).toBe(401);
    expect(sale.headers.get('www-authenticate')).toBe('Bearer realm="orderflow"');
    const read = await h.app.request('/orders/00000000-0000-4000-8000-000000000000', {
      headers: { authorization: `Basic ${Buffer.from(`x:${h.customerKey}`).toString('base64')}` },
    });
    expect(read.status).toBe(401);
  });

  it('refuses a cross-site form post to Bull Board even with the admin login', async () => {
    const basic = `Basic ${Buffer.from(`admin:${h.adminKey}`).toString('base64')}`;
    const forged = await h.app.request('/admin/queues/api/queues/validate/pause', {
      method: 'PUT',
      headers: {
        authorization: basic,
        'content-type': 'text/plain',
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
      },
      body: 'x=1',
    });
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    const sameOrigin = await h.app.request('http://localhost/admin/queues/api/queues', {
      headers: { authorization: basic, 'sec-fetch-site': 'same-origin' },
    });
    expect(sameOrigin.status).toBe(200);
  });
});
