import { createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AppError, TransientError } from '../domain/errors.ts';
import { type Sandbox, startSandbox } from '../sandbox/server.ts';
import { createPaymentGatewayClient, type PaymentGateway } from './payment-gateway.ts';

let sandbox: Sandbox;
let gateway: PaymentGateway;

beforeAll(async () => {
  sandbox = await startSandbox({ gatewayPort: 0, carrierPort: 0, seed: 1 });
  gateway = createPaymentGatewayClient({ url: sandbox.gateway.url, timeoutMs: 1_000 });
});

afterAll(async () => {
  await sandbox.close();
});

beforeEach(() => {
  sandbox.gateway.reset();
  Object.assign(sandbox.gateway.settings, { latencyMs: 0, declineRate: 0, failureRate: 0 });
});

/** A port nothing listens on: bound once by the OS, then released. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

function order(orderId = 'order-1') {
  return { orderId, amount: 2599, currency: 'EUR', token: 'tok_visa' };
}

describe('createPaymentGatewayClient', () => {
  it('authorizes, captures and refunds an order', async () => {
    const auth = await gateway.authorize(order(), 'order-1:authorize');
    expect(auth.status).toBe('authorized');

    const capture = await gateway.capture({ authorizationId: auth.authorizationId, amount: 2599 }, 'order-1:capture');
    const refund = await gateway.refund({ captureId: capture.captureId, amount: 599 }, 'order-1:refund');

    expect(capture.amount).toBe(2599);
    expect(refund.refundId).toMatch(/^ref_/);
    expect(sandbox.gateway.stats().byReference['order-1']).toMatchObject({
      authorizations: 1,
      capturedAmount: 2599,
      refundedAmount: 599,
    });
  });

  it('returns a decline as a result, not an error', async () => {
    const auth = await gateway.authorize({ ...order(), token: '4000000000009995' }, 'order-1:authorize');

    expect(auth).toEqual({
      status: 'declined',
      declineCode: 'insufficient_funds',
      authorizationId: expect.stringMatching(/^auth_/),
    });
  });

  it('voids an authorization, and reports one that was captured', async () => {
    const voidable = await gateway.authorize(order('order-1'), 'order-1:authorize');
    const captured = await gateway.authorize(order('order-2'), 'order-2:authorize');
    await gateway.capture({ authorizationId: captured.authorizationId, amount: 2599 }, 'order-2:capture');

    expect(await gateway.voidAuthorization(voidable.authorizationId, 'order-1:void')).toEqual({ status: 'voided' });
    expect(await gateway.voidAuthorization(captured.authorizationId, 'order-2:void')).toEqual({
      status: 'already_captured',
    });
  });

  it('finds the authorizations of an order with what was captured and voided, and the key that made each', async () => {
    const auth = await gateway.authorize(order(), 'order-1:authorize');
    await gateway.capture({ authorizationId: auth.authorizationId, amount: 1000 }, 'order-1:capture');

    expect(await gateway.findAuthorizations('order-1')).toEqual([
      {
        authorizationId: auth.authorizationId,
        status: 'authorized',
        amount: 2599,
        captured: 1000,
        voided: false,
        idempotencyKey: 'order-1:authorize',
        captures: [{ captureId: expect.stringMatching(/^cap_/), amount: 1000 }],
      },
    ]);
    expect(await gateway.findAuthorizations('order-unknown')).toEqual([]);
  });

  it('times out with provider_timeout while the gateway still authorizes, and a retry with the same key replays it', async () => {
    sandbox.gateway.settings.latencyMs = 400;
    const impatient = createPaymentGatewayClient({ url: sandbox.gateway.url, timeoutMs: 100 });

    const error = await impatient.authorize(order(), 'order-1:authorize').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ code: 'provider_timeout', retryable: true });
    expect(sandbox.gateway.stats().byReference['order-1']?.authorizations).toBe(1);

    sandbox.gateway.settings.latencyMs = 0;
    const retried = await gateway.authorize(order(), 'order-1:authorize');
    const [found] = await gateway.findAuthorizations('order-1');

    expect(retried.status).toBe('authorized');
    expect(found?.authorizationId).toBe(retried.authorizationId);
    expect(sandbox.gateway.stats().byReference['order-1']?.authorizations).toBe(1);
  });

  it('turns a 503 into a retryable provider_unavailable', async () => {
    sandbox.gateway.settings.failureRate = 1;

    const error = await gateway.authorize(order(), 'order-1:authorize').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({
      code: 'provider_unavailable',
      retryable: true,
      details: { status: 503, providerCode: 'gateway_unavailable', retryAfter: '1' },
    });
    expect(sandbox.gateway.stats().totals.authorizations).toBe(0);
  });

  it('turns a refused connection into a retryable provider_unavailable with its cause', async () => {
    const unreachable = createPaymentGatewayClient({ url: await closedPortUrl(), timeoutMs: 1_000 });

    const error = await unreachable.authorize(order(), 'order-1:authorize').catch((e: unknown) => e);

    expect(error).toBeInstanceOf(TransientError);
    expect(error).toMatchObject({ code: 'provider_unavailable', retryable: true, details: { errno: 'ECONNREFUSED' } });
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('rejects an unexpected refusal permanently with provider_rejected', async () => {
    const auth = await gateway.authorize(order(), 'order-1:authorize');

    const tooMuch = await gateway
      .capture({ authorizationId: auth.authorizationId, amount: 9999 }, 'order-1:capture')
      .catch((e: unknown) => e);
    const unknown = await gateway.capture({ authorizationId: 'auth_nope', amount: 1 }, 'x').catch((e: unknown) => e);

    expect(tooMuch).toBeInstanceOf(AppError);
    expect(tooMuch).toMatchObject({
      code: 'provider_rejected',
      retryable: false,
      details: { status: 409, providerCode: 'amount_exceeds_authorization' },
    });
    expect(unknown).toMatchObject({ code: 'provider_rejected', details: { status: 404 } });
  });
});
