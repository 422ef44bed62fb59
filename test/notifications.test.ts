import { Job } from 'bullmq';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError, TransientError } from '../domain/errors.ts';
import { findIllegalTransition } from '../domain/order-status.ts';
import type { Mailer, MailMessage } from '../providers/mailer.ts';
import { DEAD_LETTER_QUEUE } from '../queues/order-workflow.ts';
import { listCompensations } from '../sql/compensations.ts';
import { listDeadLetters, updateDeadLetter } from '../sql/dead-letters.ts';
import { listHistory } from '../sql/orders.ts';
import { listPayments } from '../sql/payments.ts';
import { findStuckOrders, findUncompensatedOrders, findUnhandledDeadLetters } from '../sql/reconciler.ts';
import { findShipment } from '../sql/shipments.ts';
import { listAttempts } from '../sql/step-attempts.ts';
import { type Harness, orderBody, startHarness } from './support/harness.ts';
import { waitFor } from './support/wait-for.ts';

// Notifications after shipment, on the real servers. Mail is the one third party here without a wire
// protocol (the adapter is a log mailer until a real transport is configured), so the workers get a
// fake transport through their deps, as any adapter would be given: it delivers, refuses the recipient
// for good, or is unavailable for a number of sends.

type FakeMailer = Mailer & {
  sent: MailMessage[];
  refuse: boolean;
  unavailableFor: number;
};

function fakeMailer(): FakeMailer {
  const mailer: FakeMailer = {
    sent: [],
    refuse: false,
    unavailableFor: 0,
    async send(message) {
      if (mailer.refuse) throw new AppError('provider_rejected', `The mail server refused ${message.to} for good`);
      if (mailer.unavailableFor > 0) {
        mailer.unavailableFor -= 1;
        throw new TransientError('provider_unavailable', 'The mail server is unavailable');
      }
      mailer.sent.push(message);
    },
  };
  return mailer;
}

const mailer = fakeMailer();
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ mailer });
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => {
  mailer.refuse = false;
  mailer.unavailableFor = 0;
});

const mailsFor = (orderId: string) => mailer.sent.filter((m) => m.subject.includes(orderId.slice(0, 8)));
const letterOf = async (orderId: string) =>
  (await listDeadLetters(h.deps.db, { limit: 200 })).find((d) => d.order_id === orderId);

/** An order whose confirmation mail was refused for good: COMPLETED, its notify parked. */
async function orderWithRefusedMail(): Promise<string> {
  mailer.refuse = true;
  const placed = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-41', quantity: 1 }] }));
  expect(placed.status).toBe(201);
  const order = await h.waitForTerminal(placed.body.id);
  expect(order.status).toBe('COMPLETED');
  await h.waitForQuiet();
  mailer.refuse = false;
  return order.id;
}

describe('a notify that fails for good after shipment', () => {
  it('leaves a COMPLETED order with its capture and shipment intact, and nothing refunded or cancelled', async () => {
    const id = await orderWithRefusedMail();

    const payments = await listPayments(h.deps.db, id);
    expect(payments.map((p) => p.kind).sort()).toEqual(['authorization', 'capture']);
    expect(h.sandbox.gateway.stats().byReference[id]).toMatchObject({ captures: 1, refundedAmount: 0 });
    const shipment = await findShipment(h.deps.db, id);
    expect(shipment).toMatchObject({ status: 'label_created', cancelled_at: null });
    expect(h.sandbox.carrier.stats().byReference[id]).toEqual({ shipments: 1, cancellations: 0 });
    expect(await listCompensations(h.deps.db, id)).toEqual([]);
    // No dead-letter job: nothing is handed to the handler that compensates.
    expect(await Job.fromId(h.deps.queues.queues[DEAD_LETTER_QUEUE], `${id}-g1-notify`)).toBeUndefined();

    const history = (await listHistory(h.deps.db, id)).map((r) => ({ from: r.from_status, to: r.to_status }));
    expect(findIllegalTransition(history)).toBeUndefined();
    expect(history.at(-1)).toEqual({ from: 'FULFILLMENT', to: 'COMPLETED' });
    expect(mailsFor(id)).toEqual([]);
    // The reconciler sees neither a stuck order to re-enqueue nor effects to undo.
    expect((await findStuckOrders(h.deps.db, 0, 1000)).map((o) => o.id)).not.toContain(id);
    expect((await findUncompensatedOrders(h.deps.db, 0, 1000)).map((o) => o.id)).not.toContain(id);
    expect((await findUnhandledDeadLetters(h.deps.db, 0, 1000)).map((d) => d.order_id)).not.toContain(id);
  });

  it('says in the order view that the notification failed, and parks a notification dead letter', async () => {
    const id = await orderWithRefusedMail();

    const view = await h.request('GET', `/orders/${id}`, { key: h.customerKey });
    expect(view.status).toBe(200);
    expect(view.body).toMatchObject({ status: 'COMPLETED', failure: null, notifications: [] });
    expect(view.body.payment.state).toBe('captured');
    expect(view.body.notification).toMatchObject({
      status: 'failed',
      sentAt: null,
      error: { code: 'provider_rejected' },
    });

    const parked = await h.request('GET', '/admin/dead-letters?status=parked', { key: h.adminKey });
    const letter = parked.body.deadLetters.find((d: { orderId: string }) => d.orderId === id);
    expect(letter).toMatchObject({ kind: 'step', step: 'notify', status: 'parked', attempts: 1 });
    expect(letter.error.code).toBe('provider_rejected');
    expect(view.body.notification.deadLetterId).toBe(letter.id);
  });
});

describe('a parked notification replayed by an operator', () => {
  it('sends the mail once and marks it sent, however many replays arrive at once', async () => {
    const id = await orderWithRefusedMail();
    const letter = (await letterOf(id))!;

    const replays = await Promise.all(
      [1, 2].map(() => h.request('POST', `/admin/dead-letters/${letter.id}/replay`, { key: h.adminKey })),
    );
    expect(replays.map((r) => r.status).sort()).toEqual([202, 409]);
    expect(replays.find((r) => r.status === 202)!.body).toMatchObject({ kind: 'step', status: 'replayed' });
    expect(replays.find((r) => r.status === 409)!.body.error.code).toBe('conflict');

    await waitFor(
      'the replayed notify to resolve its dead letter',
      () => letterOf(id),
      (d) => d?.status === 'resolved',
    );
    await h.waitForQuiet();
    expect(mailsFor(id)).toHaveLength(1);
    expect(mailsFor(id)[0]!.to).toBe('ada@example.com');

    const view = await h.request('GET', `/orders/${id}`, { key: h.customerKey });
    expect(view.body.status).toBe('COMPLETED');
    expect(view.body.notification).toMatchObject({ status: 'sent', deadLetterId: null, error: null });
    expect(view.body.notifications).toHaveLength(1);
    const notifies = (await listAttempts(h.deps.db, id)).filter((a) => a.step === 'notify').map((a) => a.outcome);
    expect(notifies).toEqual(['failed', 'succeeded']);
    // Still one capture, kept, and one live label.
    expect(h.sandbox.gateway.stats().byReference[id]).toMatchObject({ captures: 1, refundedAmount: 0 });
    expect(h.sandbox.carrier.stats().byReference[id]).toEqual({ shipments: 1, cancellations: 0 });
  });

  it('answers 409 to a replay once the notification was sent, and sends nothing more', async () => {
    const id = await orderWithRefusedMail();
    const letter = (await letterOf(id))!;
    expect((await h.request('POST', `/admin/dead-letters/${letter.id}/replay`, { key: h.adminKey })).status).toBe(202);
    await waitFor(
      'the replay to succeed',
      () => letterOf(id),
      (d) => d?.status === 'resolved',
    );

    const again = await h.request('POST', `/admin/dead-letters/${letter.id}/replay`, { key: h.adminKey });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'conflict', message: expect.stringMatching(/succeeded/) });
    await h.waitForQuiet();
    expect(mailsFor(id)).toHaveLength(1);
  });

  it('parks the letter again when the replay fails for good too, and the order stays COMPLETED', async () => {
    const id = await orderWithRefusedMail();
    const letter = (await letterOf(id))!;
    mailer.refuse = true;
    expect((await h.request('POST', `/admin/dead-letters/${letter.id}/replay`, { key: h.adminKey })).status).toBe(202);
    await waitFor(
      'the replay to fail and park the letter again',
      () => letterOf(id),
      (d) => d?.status === 'parked' && d.note !== null && d.note.includes('replay failed'),
    );
    await h.waitForQuiet();
    const view = await h.request('GET', `/orders/${id}`, { key: h.customerKey });
    expect(view.body).toMatchObject({ status: 'COMPLETED', notification: { status: 'failed' } });
    expect(await listCompensations(h.deps.db, id)).toEqual([]);
    expect(mailsFor(id)).toEqual([]);
  });
});

describe('a replay whose job was lost', () => {
  it('can be replayed again, and sends the mail once', async () => {
    const id = await orderWithRefusedMail();
    const letter = (await letterOf(id))!;
    // A claimed replay whose job Redis lost: the letter says replayed, no job of that round exists.
    expect(await updateDeadLetter(h.deps.db, letter.id, ['parked'], { status: 'replayed', note: 'for the test' })).toBe(
      true,
    );
    const replay = await h.request('POST', `/admin/dead-letters/${letter.id}/replay`, { key: h.adminKey });
    expect(replay.status).toBe(202);
    await waitFor(
      'the replay to succeed',
      () => letterOf(id),
      (d) => d?.status === 'resolved',
    );
    await h.waitForQuiet();
    expect(mailsFor(id)).toHaveLength(1);
  });
});

describe('a notify that fails for a moment', () => {
  it('is retried with the step policy and the order completes notified, with no dead letter', async () => {
    mailer.unavailableFor = 1;
    const placed = await h.placeOrder(orderBody({ items: [{ sku: 'BERSERK-41', quantity: 1 }] }));
    const order = await h.waitForTerminal(placed.body.id);
    expect(order.status).toBe('COMPLETED');
    await waitFor(
      'the notification to be recorded',
      () => h.request('GET', `/orders/${order.id}`, { key: h.customerKey }),
      (view) => view.body.notification?.status === 'sent',
    );
    const notifies = (await listAttempts(h.deps.db, order.id)).filter((a) => a.step === 'notify');
    expect(notifies.map((a) => `${a.outcome}:${a.error_code}`)).toEqual([
      'failed:provider_unavailable',
      'succeeded:null',
    ]);
    expect(await letterOf(order.id)).toBeUndefined();
    expect(mailsFor(order.id)).toHaveLength(1);
  });
});
