import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TransientError } from '../domain/errors.ts';
import type { PaymentGateway } from '../providers/payment-gateway.ts';
import type { StepJobData } from '../queues/order-workflow.ts';
import { findSellableItems } from '../sql/catalog.ts';
import { listCompensations, recordCompensation } from '../sql/compensations.ts';
import { listDeadLetters } from '../sql/dead-letters.ts';
import { insertOrder } from '../sql/orders.ts';
import { compensateOrder } from '../workers/compensate-order.ts';
import { reconcile } from '../workers/maintenance.ts';
import { runStep, type StepOutcome } from '../workers/run-step.ts';
import type { Step, StepDeps } from '../workers/step.ts';
import { steps } from '../workers/steps/index.ts';
import { type Harness, startHarness } from './support/harness.ts';

// Races between a step's effect and the order's end, found by the fault-injection suite, replayed
// deterministically: the steps run here, by hand; only the dead-letter worker runs in the background.
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { WORKER_QUEUES: 'dead-letter,maintenance' } });
});
afterAll(async () => {
  await h?.close();
});

async function newOrder(sku: string): Promise<StepJobData> {
  const orderId = randomUUID();
  const [item] = await findSellableItems(h.deps.db, 'eu', [sku]);
  const inserted = await insertOrder(
    h.deps.db,
    {
      id: orderId,
      customerId: 'cust_ada',
      region: 'eu',
      currency: item!.currency,
      totalCents: item!.price_cents,
      shippingAddress: { name: 'A', line1: '1 St', city: 'L', postalCode: 'N1', country: 'GB' },
      paymentToken: '4242424242424242',
      items: [
        { sku, name: item!.name, quantity: 1, unit_price_cents: item!.price_cents, final_sale: item!.final_sale },
      ],
    },
    'test',
  );
  if (!inserted.placed) throw new Error(`order for ${sku} not stored: ${inserted.reason}`);
  return { orderId, generation: 1, round: 0, order: inserted.snapshot };
}

/** What the BullMQ adapter (workers/step-processor.ts) does with an outcome that needs more work. */
async function settle(ref: StepJobData, outcome: StepOutcome): Promise<StepOutcome> {
  if (outcome.state === 'ended') await h.deps.queues.addDeadLetter(outcome.deadLetter);
  if (outcome.state === 'already-ended' && outcome.compensate) {
    await h.deps.queues.compensateLater(ref.orderId, ref.generation, randomUUID());
  }
  return outcome;
}
const run = (step: Step, deps: StepDeps, ref: StepJobData, number = 1) =>
  runStep(step, deps, ref, {}, { worker: 'test', isLast: false, number, recovering: false }).then((outcome) =>
    settle(ref, outcome),
  );

/**
 * The real gateway client, with authorize held until released (a slow network, a busy worker);
 * `reached` resolves once a call is held there.
 */
function heldGateway(real: PaymentGateway) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let arrived!: () => void;
  const reached = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const gateway: PaymentGateway = {
    ...real,
    authorize: async (input, key) => {
      arrived();
      await gate;
      return real.authorize(input, key);
    },
  };
  return { gateway, release, reached };
}

const live = async (orderId: string) =>
  (await h.deps.gateway.findAuthorizations(orderId)).filter((a) => a.status === 'authorized' && !a.voided);

describe('an authorization that lands after its order failed', () => {
  it('is voided by the retry of its step even when its answer was lost', async () => {
    await h.setStock('FRIEREN-01-LTD', 'eu', 0);
    const ref = await newOrder('FRIEREN-01-LTD');
    const held = heldGateway(h.deps.gateway);
    const deps: StepDeps = { ...h.deps, gateway: held.gateway };
    expect((await run(steps.validate, deps, ref)).state).toBe('done');

    const authorizing = run(steps['authorize-payment'], deps, ref);
    await held.reached; // the step waits on the gateway
    expect(await run(steps['check-inventory'], deps, ref)).toMatchObject({
      state: 'ended',
      error: { code: 'out_of_stock' },
    });
    await h.waitForQuiet(); // the dead letter's compensation ran: nothing to void yet

    h.sandbox.gateway.settings.resetRate = 1; // the authorization lands; its answer is lost
    held.release();
    expect(await authorizing).toMatchObject({ state: 'retry' });
    h.sandbox.gateway.settings.resetRate = 0;
    expect(await live(ref.orderId)).toHaveLength(1);

    // The retry gets the same authorization (same idempotency key), finds the order ended, and has it undone.
    const retry = await run(steps['authorize-payment'], deps, ref, 2);
    expect(retry).toMatchObject({ state: 'already-ended', compensate: true });
    await h.waitForQuiet();
    expect(await live(ref.orderId)).toEqual([]);
  });

  it('is voided on the retry when its compensation failed the first time', async () => {
    await h.setStock('BERSERK-41', 'eu', 0);
    const ref = await newOrder('BERSERK-41');
    const held = heldGateway(h.deps.gateway);
    let voidFailures = 1;
    const gateway: PaymentGateway = {
      ...held.gateway,
      voidAuthorization: async (id, key) => {
        if (voidFailures-- > 0) throw new TransientError('provider_unavailable', 'gateway answered 503');
        return held.gateway.voidAuthorization(id, key);
      },
    };
    const deps: StepDeps = { ...h.deps, gateway };
    await run(steps.validate, deps, ref);
    // The authorize attempt runs by hand, its outcome not settled, so that the compensation runs here.
    const authorizing = runStep(
      steps['authorize-payment'],
      deps,
      ref,
      {},
      {
        worker: 'test',
        isLast: false,
        number: 1,
        recovering: false,
      },
    );
    await held.reached; // the step waits on the gateway
    expect((await run(steps['check-inventory'], deps, ref)).state).toBe('ended');
    await h.waitForQuiet();

    held.release(); // succeeds on an ended order: recorded, and its compensation is asked for
    expect(await authorizing).toMatchObject({ state: 'already-ended', compensate: true });
    expect(await live(ref.orderId)).toHaveLength(1);
    // The compensate-order job meets the 503 and throws (so BullMQ retries it); its retry voids.
    await expect(compensateOrder(deps, ref)).rejects.toThrow(/503/);
    expect(await live(ref.orderId)).toHaveLength(1);
    await compensateOrder(deps, ref);
    expect(await live(ref.orderId)).toEqual([]);
  });
});

describe('a dead letter whose job was lost in a crash', () => {
  it('is written with the failure and enqueued again by the reconciler', async () => {
    await h.setStock('CHAINSAW-05', 'eu', 0);
    const ref = await newOrder('CHAINSAW-05');
    await run(steps.validate, h.deps, ref);
    // The step fails for good; the process dies before it enqueues the dead letter (nothing is enqueued here).
    const outcome = await runStep(
      steps['check-inventory'],
      h.deps,
      ref,
      {},
      {
        worker: 'test',
        isLast: false,
        number: 1,
        recovering: false,
      },
    );
    expect(outcome).toMatchObject({ state: 'ended', error: { code: 'out_of_stock' } });
    const written = (await listDeadLetters(h.deps.db, { limit: 50 })).find((d) => d.order_id === ref.orderId);
    expect(written?.status).toBe('received');

    await reconcile(h.deps, h.deps.queues, { stuckAfterMs: 0, retryPolicy: h.config.orderRetry });
    await h.waitForQuiet();
    const handled = (await listDeadLetters(h.deps.db, { limit: 50 })).find((d) => d.order_id === ref.orderId);
    expect(handled?.status).toBe('retry_scheduled'); // handled: out of stock, so retried after a restock
  });
});

describe('the record of a compensation', () => {
  it('keeps done when a concurrent run reports its failure later, and keeps what was undone', async () => {
    const { orderId } = await newOrder('ONEPIECE-105');
    const record = (outcome: 'done' | 'failed', detail: string) =>
      recordCompensation(h.deps.db, { orderId, generation: 1, step: 'authorize-payment', outcome, detail });
    await record('failed', 'gateway answered 503');
    await record('done', 'voided auth_1');
    await record('failed', 'gateway answered 503');
    await record('done', 'nothing to undo');
    expect(await listCompensations(h.deps.db, orderId)).toEqual([
      { generation: 1, step: 'authorize-payment', outcome: 'done', detail: 'voided auth_1' },
    ]);
  });
});
