import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sql } from '../sql/database.ts';
import { findReturn, type ReturnStatus } from '../sql/returns.ts';
import { findShipment } from '../sql/shipments.ts';
import { sweepReturns } from '../workers/returns/sweep.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

// Returns on the real servers (SPEC §5): orders are delivered by advancing their shipment at the sandbox
// carrier and running the tracking poll, then quoted, returned, received and refunded through the API,
// with the saga's steps on the in-process workers and the sandbox gateway and carrier over HTTP.

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const REGION = 'eu';
const otherCustomerKey = () => h.keys.customers[1]!.apiKey;

/** A COMPLETED order whose delivery the carrier reported and the poll stored. */
async function deliveredOrder(items: Array<{ sku: string; quantity: number }>, options: { deliver?: boolean } = {}) {
  const placed = await h.placeOrder(orderBody({ items, region: REGION }));
  expect(placed.status).toBe(201);
  const order = await h.waitForTerminal(placed.body.id);
  expect(order.status).toBe('COMPLETED');
  if (options.deliver === false) return order.id;
  await h.deliver(order.id);
  expect((await findShipment(h.deps.db, order.id))?.delivered_at).not.toBeNull();
  return order.id;
}

const quote = (orderId: string, items: Array<{ orderItemId: string; quantity: number }>, key = h.customerKey) =>
  h.request('POST', `/orders/${orderId}/returns/quote`, { key, body: { items, reason: 'It does not fit my shelf' } });

const createReturn = (orderId: string, token: string, key = h.customerKey, headers?: Record<string, string>) =>
  h.request('POST', `/orders/${orderId}/returns`, { key, body: { token }, headers });

async function tokenFor(orderId: string, items: Array<{ orderItemId: string; quantity: number }>) {
  const answer = await quote(orderId, items);
  expect(answer.status).toBe(200);
  expect(answer.body.eligible).toBe(true);
  return answer.body.token as string;
}

/** A return created from a fresh quote, once its label is booked. */
async function returnAwaitingReceipt(orderId: string, items: Array<{ orderItemId: string; quantity: number }>) {
  const created = await createReturn(orderId, await tokenFor(orderId, items));
  expect(created.status).toBe(201);
  await waitForReturn(created.body.rma, 'awaiting_receipt');
  return created.body.rma as string;
}

function waitForReturn(rma: string, status: ReturnStatus) {
  return waitFor(
    `return ${rma} to be ${status}`,
    () => findReturn(h.deps.db, rma),
    (r) => r?.status === status,
    { describe: (r) => r?.status },
  );
}

const receive = (rma: string, items: Array<{ orderItemId: string; quantity: number; disposition: string }>) =>
  h.request('POST', `/admin/returns/${rma}/receive`, { key: h.adminKey, body: { items } });

const stockRow = z.object({ on_hand: z.number(), available: z.number(), reserved: z.number(), shipped: z.number() });
const stockOf = (sku: string) =>
  h.deps.db.one(sql.type(stockRow)`
    SELECT on_hand, available, reserved, shipped FROM inventory WHERE sku = ${sku} AND region = ${REGION}`);

const returnMovements = (orderId: string) =>
  h.deps.db.any(sql.type(z.object({ sku: z.string(), quantity: z.number() }))`
    SELECT sku, quantity FROM stock_movements WHERE order_id = ${orderId} AND kind = 'return'`);

const refundRows = (orderId: string) =>
  h.deps.db.any(
    sql.type(
      z.object({
        status: z.string(),
        idempotency_key: z.string(),
        amount_cents: z.number(),
        gateway_id: z.string().nullable(),
        rma: z.string().nullable(),
      }),
    )`
    SELECT p.status, p.idempotency_key, p.amount_cents, p.gateway_id, r.rma
    FROM payments p LEFT JOIN returns r ON r.id = p.return_id
    WHERE p.order_id = ${orderId} AND p.kind = 'refund' ORDER BY p.id`,
  );

const gatewayRefunds = (orderId: string) => h.sandbox.gateway.stats().byReference[orderId]?.refunds ?? 0;

describe('a return', () => {
  it('is quoted, created with its label, received with restock, refunded once, and its stock comes back', async () => {
    const orderId = await deliveredOrder([
      { sku: 'ONEPIECE-105', quantity: 2 },
      { sku: 'CHAINSAW-05', quantity: 1 },
    ]);
    const quoted = await quote(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 2 }]);
    expect(quoted.status).toBe(200);
    expect(quoted.body).toMatchObject({
      orderId,
      eligible: true,
      refusal: null,
      refundCents: 2 * 999,
      items: [{ orderItemId: 'ONEPIECE-105', quantity: 2, eligible: true, refundCents: 2 * 999 }],
      token: expect.stringMatching(/^rt_/),
      expiresAt: expect.any(String),
      windowEndsAt: expect.any(String),
    });

    const headers = { 'idempotency-key': `return-${orderId}` };
    const created = await createReturn(orderId, quoted.body.token, h.customerKey, headers);
    expect(created.status).toBe(201);
    const { rma } = created.body;
    expect(created.headers.get('location')).toBe(`/returns/${rma}`);
    expect(created.body).toMatchObject({
      rma: expect.stringMatching(/^RMA-[0-9A-F]{12}$/),
      orderId,
      status: 'requested',
      refundCents: 1998,
      items: [{ orderItemId: 'ONEPIECE-105', quantity: 2, refundCents: 1998 }],
    });
    const replayed = await createReturn(orderId, quoted.body.token, h.customerKey, headers);
    expect(replayed.status).toBe(201);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(replayed.body.rma).toBe(rma);

    await waitForReturn(rma, 'awaiting_receipt');
    expect(h.sandbox.carrier.stats().returnLabelsByReference[rma]).toBe(1);
    const shown = await h.request('GET', `/returns/${rma}`, { key: h.customerKey });
    expect(shown.status).toBe(200);
    expect(shown.body.label).toMatchObject({ trackingNumber: expect.any(String), url: expect.any(String) });
    expect((await h.request('GET', `/returns/${rma}`, { key: otherCustomerKey() })).status).toBe(404);
    const listed = await h.request('GET', `/orders/${orderId}/returns`, { key: h.customerKey });
    expect(listed.body.returns.map((r: { rma: string }) => r.rma)).toEqual([rma]);
    const orderView = await h.request('GET', `/orders/${orderId}`, { key: h.customerKey });
    expect(orderView.body.returns).toMatchObject([{ rma, status: 'awaiting_receipt' }]);

    const before = await stockOf('ONEPIECE-105');
    const received = await receive(rma, [{ orderItemId: 'ONEPIECE-105', quantity: 2, disposition: 'restock' }]);
    expect(received.status).toBe(200);
    expect(received.body.status).toBe('received');
    const again = await receive(rma, [{ orderItemId: 'ONEPIECE-105', quantity: 2, disposition: 'restock' }]);
    expect(again.status).toBe(409);

    const closed = await waitForReturn(rma, 'closed');
    expect(closed?.refunded_cents).toBe(1998);
    expect(gatewayRefunds(orderId)).toBe(1);
    expect(h.sandbox.gateway.stats().byReference[orderId]?.refundedAmount).toBe(1998);
    expect(await refundRows(orderId)).toEqual([
      { status: 'refunded', idempotency_key: `refund:${rma}`, amount_cents: 1998, gateway_id: expect.any(String), rma },
    ]);
    const after = await stockOf('ONEPIECE-105');
    expect(after).toEqual({
      on_hand: before.on_hand,
      available: before.available + 2,
      reserved: before.reserved,
      shipped: before.shipped - 2,
    });
    expect(after.on_hand).toBe(after.available + after.reserved + after.shipped);
    expect(await returnMovements(orderId)).toEqual([{ sku: 'ONEPIECE-105', quantity: 2 }]);
    // Through the outbox: the relay publishes it to the flash-sale controller like any stock movement.
    const event = await h.deps.db.one(sql.type(z.object({ available_after: z.number(), unpublished: z.boolean() }))`
      SELECT available_after, published_at IS NULL AS unpublished FROM stock_movements
      WHERE order_id = ${orderId} AND kind = 'return'`);
    expect(event).toEqual({ available_after: after.available, unpublished: true });

    const finalView = await h.request('GET', `/orders/${orderId}`, { key: h.customerKey });
    expect(finalView.body.returns).toMatchObject([{ rma, status: 'closed', refundedCents: 1998 }]);
    expect(finalView.body.payment.state).toBe('partially_refunded');
    expect(finalView.body.payment.operations).toContainEqual(
      expect.objectContaining({ kind: 'refund', status: 'refunded', amountCents: 1998 }),
    );
    const admin = await h.request('GET', '/admin/returns?status=closed', { key: h.adminKey });
    expect(admin.status).toBe(200);
    expect(admin.body.returns.map((r: { rma: string }) => r.rma)).toContain(rma);
    expect((await h.request('GET', '/admin/returns', { key: h.customerKey })).status).toBe(403);
  });
});

describe('the quote', () => {
  it('refuses a final-sale item, an undelivered order and an order past the window, with the reason', async () => {
    const delivered = await deliveredOrder([
      { sku: 'FRIEREN-01-LTD', quantity: 1 },
      { sku: 'ONEPIECE-105', quantity: 1 },
    ]);
    const finalSale = await quote(delivered, [
      { orderItemId: 'FRIEREN-01-LTD', quantity: 1 },
      { orderItemId: 'ONEPIECE-105', quantity: 1 },
    ]);
    expect(finalSale.status).toBe(200);
    expect(finalSale.body).toMatchObject({
      eligible: false,
      items: [
        { orderItemId: 'FRIEREN-01-LTD', eligible: false, reason: 'final_sale' },
        { orderItemId: 'ONEPIECE-105', eligible: true },
      ],
    });
    expect(finalSale.body.token).toBeUndefined();

    const undelivered = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }], { deliver: false });
    const notYet = await quote(undelivered, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);
    expect(notYet.body).toMatchObject({ eligible: false, refusal: { reason: 'not_delivered' } });

    const old = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    await h.deps.db.query(sql.typeAlias('void')`
      UPDATE shipments SET delivered_at = now() - interval '31 days' WHERE order_id = ${old}`);
    const late = await quote(old, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);
    expect(late.body).toMatchObject({ eligible: false, refusal: { reason: 'window_closed' } });
    expect(late.body.refusal.message).toMatch(/30 days/);

    const tooMany = await quote(delivered, [{ orderItemId: 'ONEPIECE-105', quantity: 2 }]);
    expect(tooMany.body.items[0]).toMatchObject({ eligible: false, reason: 'quantity_exceeds_bought' });
  });

  it('is 404 for another customer’s order and 400 for a malformed body', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const theirs = await quote(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }], otherCustomerKey());
    expect(theirs.status).toBe(404);
    const malformed = await h.request('POST', `/orders/${orderId}/returns/quote`, {
      key: h.customerKey,
      body: { items: [{ orderItemId: 'ONEPIECE-105', quantity: 0 }] },
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.code).toBe('validation_failed');
    expect(malformed.body.error.details.map((d: { field: string }) => d.field)).toEqual(
      expect.arrayContaining(['items[0].quantity', 'reason']),
    );
  });
});

describe('an admin', () => {
  it('quotes and returns a customer’s order, which other customers cannot see', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const quoted = await quote(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }], h.adminKey);
    expect(quoted.body.eligible).toBe(true);
    const created = await createReturn(orderId, quoted.body.token, h.adminKey);
    expect(created.status).toBe(201);

    // The return is the order's customer's: they see it, another customer does not.
    expect((await h.request('GET', `/returns/${created.body.rma}`, { key: h.customerKey })).status).toBe(200);
    expect((await h.request('GET', `/orders/${orderId}/returns`, { key: otherCustomerKey() })).status).toBe(404);
    await h.waitForQuiet();
  });
});

describe('the token', () => {
  it('is refused for another customer, another order, after expiry and after use', async () => {
    const a = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const b = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const token = await tokenFor(a, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);

    const theirs = await createReturn(a, token, otherCustomerKey());
    expect(theirs.status).toBe(404);
    expect(theirs.body.error.code).toBe('return_token_invalid');
    // The body carries the token alone: the items it is bound to cannot be swapped, nor its order.
    const elsewhere = await createReturn(b, token);
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.error.code).toBe('return_token_wrong_order');
    expect((await createReturn(a, 'rt_not-a-token')).body.error.code).toBe('return_token_invalid');

    const stale = await tokenFor(a, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);
    await h.deps.db.query(sql.typeAlias('void')`
      UPDATE return_quotes SET expires_at = now() - interval '1 s'
      WHERE token_hash = ${createHash('sha256').update(stale).digest('hex')}`);
    const expired = await createReturn(a, stale);
    expect(expired.status).toBe(422);
    expect(expired.body.error.code).toBe('return_token_expired');

    const created = await createReturn(a, token);
    expect(created.status).toBe(201);
    const reused = await createReturn(a, token);
    expect(reused.status).toBe(409);
    expect(reused.body.error).toMatchObject({ code: 'return_token_used', details: { rma: created.body.rma } });
    await h.waitForQuiet();
  });

  it('of two concurrent returns of the same item makes one return, and both answers name its RMA', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const item = [{ orderItemId: 'ONEPIECE-105', quantity: 1 }];
    const [first, second] = [await tokenFor(orderId, item), await tokenFor(orderId, item)];

    const answers = await Promise.all([createReturn(orderId, first), createReturn(orderId, second)]);
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses).toEqual([201, 409]);
    const won = answers.find((a) => a.status === 201)!;
    const lost = answers.find((a) => a.status === 409)!;
    expect(lost.body.error).toMatchObject({
      code: 'already_returned',
      details: { rma: won.body.rma, orderItemId: 'ONEPIECE-105' },
    });

    const requoted = await quote(orderId, item);
    expect(requoted.body.items[0]).toMatchObject({ eligible: false, reason: 'already_returned' });
    const active = await h.deps.db.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM return_items WHERE order_id = ${orderId} AND active`);
    expect(active).toBe(1);
    await h.waitForQuiet();
  });
});

describe('one token sent twice at once', () => {
  it('makes one return, and the other answer names it', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const token = await tokenFor(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);

    const answers = await Promise.all([createReturn(orderId, token), createReturn(orderId, token)]);

    expect(answers.map((a) => a.status).sort()).toEqual([201, 409]);
    const won = answers.find((a) => a.status === 201)!;
    const lost = answers.find((a) => a.status === 409)!;
    expect(lost.body.error).toMatchObject({ code: 'return_token_used', details: { rma: won.body.rma } });
    await h.waitForQuiet();
  });
});

describe('receipt and refund', () => {
  it('resolves a refund whose gateway answer was lost by its idempotency key: one refund at the gateway', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const rma = await returnAwaitingReceipt(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);
    await h.waitForQuiet();

    // The gateway refunds, then drops the connection before answering, every time until told otherwise.
    h.sandbox.gateway.settings.resetRate = 1;
    try {
      expect((await receive(rma, [{ orderItemId: 'ONEPIECE-105', quantity: 1, disposition: 'restock' }])).status).toBe(
        200,
      );
      await waitFor(
        'a refund attempt whose answer was lost',
        () =>
          h.deps.db.maybeOne(sql.type(z.object({ error_code: z.string().nullable() }))`
            SELECT error_code FROM step_attempts
            WHERE order_id = ${orderId} AND step = ${`return-refund:${rma}`} AND outcome = 'failed' LIMIT 1`),
        (row) => row !== null,
      );
      expect(gatewayRefunds(orderId)).toBe(1);
      expect(await refundRows(orderId)).toMatchObject([{ status: 'pending', idempotency_key: `refund:${rma}` }]);
    } finally {
      h.sandbox.gateway.settings.resetRate = 0;
    }

    const closed = await waitForReturn(rma, 'closed');
    expect(closed?.refunded_cents).toBe(999);
    expect(gatewayRefunds(orderId)).toBe(1);
    const [row] = await refundRows(orderId);
    expect(row).toMatchObject({ status: 'refunded', amount_cents: 999 });
    expect(h.sandbox.gateway.stats().byReference[orderId]?.refundedAmount).toBe(999);
    // The step run again (an operator's replay, a redelivered job) finds its success in the ledger.
    await h.deps.queues.enqueueReturnStep({ step: 'refund', rma }, 'again');
    await h.waitForQuiet();
    expect(gatewayRefunds(orderId)).toBe(1);
    expect(await refundRows(orderId)).toHaveLength(1);
  });

  it('refunds a damaged item without restocking it, and a missing one not at all', async () => {
    const orderId = await deliveredOrder([
      { sku: 'CHAINSAW-05', quantity: 1 },
      { sku: 'ONEPIECE-105', quantity: 1 },
    ]);
    const rma = await returnAwaitingReceipt(orderId, [
      { orderItemId: 'CHAINSAW-05', quantity: 1 },
      { orderItemId: 'ONEPIECE-105', quantity: 1 },
    ]);
    const before = await Promise.all([stockOf('CHAINSAW-05'), stockOf('ONEPIECE-105')]);

    const received = await receive(rma, [
      { orderItemId: 'CHAINSAW-05', quantity: 1, disposition: 'damaged' },
      { orderItemId: 'ONEPIECE-105', quantity: 1, disposition: 'missing' },
    ]);
    expect(received.status).toBe(200);
    const closed = await waitForReturn(rma, 'closed');

    expect(closed?.refunded_cents).toBe(1199);
    expect(h.sandbox.gateway.stats().byReference[orderId]).toMatchObject({ refunds: 1, refundedAmount: 1199 });
    expect(await Promise.all([stockOf('CHAINSAW-05'), stockOf('ONEPIECE-105')])).toEqual(before);
    expect(await returnMovements(orderId)).toEqual([]);
  });

  it('refuses a receipt that names an item the return does not have', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const rma = await returnAwaitingReceipt(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);
    const wrong = await receive(rma, [{ orderItemId: 'CHAINSAW-05', quantity: 1, disposition: 'restock' }]);
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.details).toEqual([{ field: 'items[0].orderItemId', message: expect.any(String) }]);
    expect((await findReturn(h.deps.db, rma))?.status).toBe('awaiting_receipt');
  });
});

describe('a return step that fails for good', () => {
  it('parks its dead letter and leaves the return and the completed order as they were; a replay runs it once', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const shipmentId = await h.deps.db.oneFirst(sql.type(z.object({ id: z.string() }))`
      SELECT carrier_shipment_id AS id FROM shipments WHERE order_id = ${orderId}`);
    // The carrier refuses a return label for a shipment it does not know: a permanent refusal.
    await h.deps.db.query(sql.typeAlias('void')`
      UPDATE shipments SET carrier_shipment_id = 'shp_unknown' WHERE order_id = ${orderId}`);
    const created = await createReturn(
      orderId,
      await tokenFor(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]),
    );
    expect(created.status).toBe(201);
    const { rma } = created.body;

    const letter = await waitFor(
      `the dead letter of return-label:${rma}`,
      () =>
        h.deps.db.maybeOne(sql.type(z.object({ status: z.string(), kind: z.string(), error_code: z.string() }))`
          SELECT status, kind, error_code FROM dead_letters WHERE order_id = ${orderId}
            AND step = ${`return-label:${rma}`}`),
      (row) => row !== null,
    );

    expect(letter).toEqual({ status: 'parked', kind: 'step', error_code: 'provider_rejected' });
    expect((await findReturn(h.deps.db, rma))?.status).toBe('requested');
    const view = await h.request('GET', `/orders/${orderId}`, { key: h.customerKey });
    expect(view.body.status).toBe('COMPLETED');
    expect(view.body.timeline).toContainEqual(
      expect.objectContaining({ step: `return-label:${rma}`, outcome: 'failed' }),
    );

    // The operator fixes the cause and replays the letter: the label is booked, the letter resolved.
    await h.deps.db.query(sql.typeAlias('void')`
      UPDATE shipments SET carrier_shipment_id = ${shipmentId} WHERE order_id = ${orderId}`);
    const { id } = await h.deps.db.one(sql.type(z.object({ id: z.number() }))`
      SELECT id::int FROM dead_letters WHERE step = ${`return-label:${rma}`}`);
    const [first, second] = await Promise.all([
      h.request('POST', `/admin/dead-letters/${id}/replay`, { key: h.adminKey }),
      h.request('POST', `/admin/dead-letters/${id}/replay`, { key: h.adminKey }),
    ]);
    expect([first.status, second.status].sort()).toEqual([202, 409]);
    await waitFor(
      `return ${rma} awaiting receipt after the replay`,
      () => findReturn(h.deps.db, rma),
      (found) => found?.status === 'awaiting_receipt',
    );
    const resolved = await waitFor(
      'the dead letter resolved',
      () => h.request('GET', `/admin/dead-letters/${id}`, { key: h.adminKey }),
      (answer) => answer.body.status === 'resolved',
    );
    expect(resolved.body.kind).toBe('step');
    expect(h.sandbox.carrier.stats().returnLabelsByReference[rma]).toBe(1);
    expect((await h.request('POST', `/admin/dead-letters/${id}/replay`, { key: h.adminKey })).status).toBe(409);
  });
});

describe('a cancelled or expired return', () => {
  it('refunds nothing when cancelled, and frees its item for another return', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const rma = await returnAwaitingReceipt(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);

    expect((await h.request('POST', `/returns/${rma}/cancel`, { key: otherCustomerKey() })).status).toBe(404);
    const cancelled = await h.request('POST', `/returns/${rma}/cancel`, { key: h.customerKey });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ rma, status: 'cancelled', alreadyCancelled: false });
    const again = await h.request('POST', `/returns/${rma}/cancel`, { key: h.customerKey });
    expect(again.body).toMatchObject({ status: 'cancelled', alreadyCancelled: true });
    const late = await receive(rma, [{ orderItemId: 'ONEPIECE-105', quantity: 1, disposition: 'restock' }]);
    expect(late.status).toBe(409);

    await h.waitForQuiet();
    expect(await refundRows(orderId)).toEqual([]);
    expect(gatewayRefunds(orderId)).toBe(0);
    expect((await quote(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }])).body.eligible).toBe(true);
  });

  it('expires when nothing arrived within the receipt days', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const rma = await returnAwaitingReceipt(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);
    await h.deps.db.query(sql.typeAlias('void')`
      UPDATE returns SET created_at = now() - interval '31 days' WHERE rma = ${rma}`);

    const swept = await sweepReturns(h.deps, h.deps.queues, { receiptDays: 30, quietMs: 600_000, now: Date.now() });

    expect(swept.expired).toBe(1);
    expect((await findReturn(h.deps.db, rma))?.status).toBe('expired');
    const view = await h.request('GET', `/orders/${orderId}`, { key: h.customerKey });
    expect(view.body.returns).toMatchObject([{ rma, status: 'expired' }]);
    expect((await quote(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }])).body.eligible).toBe(true);
  });
});

describe('the returns sweep', () => {
  it('runs by itself on the job scheduler', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const rma = await returnAwaitingReceipt(orderId, [{ orderItemId: 'ONEPIECE-105', quantity: 1 }]);
    await h.deps.db.query(sql.typeAlias('void')`
      UPDATE returns SET created_at = now() - interval '31 days' WHERE rma = ${rma}`);
    const maintenance = h.deps.queues.queues.maintenance;

    await h.deps.queues.scheduleReturnSweep(100, 30);
    try {
      expect(await maintenance.getJobScheduler('sweep-returns')).toMatchObject({ every: 100 });
      await waitForReturn(rma, 'expired');
    } finally {
      await maintenance.removeJobScheduler('sweep-returns');
    }
  });
});

describe('refunds beyond captures', () => {
  it('are refused by the database, whatever inserts them', async () => {
    const orderId = await deliveredOrder([{ sku: 'ONEPIECE-105', quantity: 1 }]);
    const insertRefund = (key: string, amount: number) =>
      h.deps.db.query(sql.typeAlias('void')`
        INSERT INTO payments (order_id, generation, kind, status, idempotency_key, amount_cents)
        VALUES (${orderId}, 1, 'refund', 'refunded', ${key}, ${amount})`);

    await expect(insertRefund(`too-much-${orderId}`, 999 + 1)).rejects.toMatchObject({
      code: 'constraint_violated',
      constraint: 'refunds_within_captures',
    });
    await insertRefund(`part-${orderId}`, 500);
    await expect(insertRefund(`rest-${orderId}`, 500)).rejects.toMatchObject({ code: 'constraint_violated' });
    await insertRefund(`rest-${orderId}`, 499);
  });
});
