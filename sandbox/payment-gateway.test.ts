import { describe, expect, it } from 'vitest';
import { createPaymentGatewayClient } from '../providers/payment-gateway.ts';
import { createPaymentGateway, type PaymentGatewayOptions, type PaymentGatewayStats } from './payment-gateway.ts';
import { startSandbox } from './server.ts';

type Gateway = ReturnType<typeof createPaymentGateway>;

function post(gateway: Gateway, path: string, body: unknown, key: string | null = crypto.randomUUID()) {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key) headers['idempotency-key'] = key;
  return gateway.app.request(path, { method: 'POST', headers, body: JSON.stringify(body) });
}

// The fields these tests read from the gateway's answers; each answer has only some of them.
type Answer = {
  id: string;
  declineCode: string;
  error: { code: string; details: Array<{ field: string }> };
  data: Array<{ captures: unknown[] }>;
};

async function json(response: Response | Promise<Response>) {
  const res = await response;
  return { status: res.status, body: (await res.json()) as Answer };
}

function authorization(reference = 'order-1', token = 'tok_visa') {
  return { amount: 5000, currency: 'EUR', token, reference };
}

async function authorized(gateway: Gateway, reference = 'order-1'): Promise<string> {
  const { status, body } = await json(post(gateway, '/v1/authorizations', authorization(reference)));
  expect(status).toBe(201);
  return body.id;
}

function gatewayWith(options: PaymentGatewayOptions = {}): Gateway {
  return createPaymentGateway({ seed: 1, ...options });
}

describe('idempotency keys', () => {
  it('replays the stored answer for a repeated request without authorizing again', async () => {
    const gateway = gatewayWith();
    const first = await post(gateway, '/v1/authorizations', authorization(), 'key-1');
    const second = await post(gateway, '/v1/authorizations', authorization(), 'key-1');

    expect(second.status).toBe(first.status);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await second.json()).toEqual(await first.json());
    expect(gateway.stats().totals.authorizations).toBe(1);
  });

  it('rejects a key reused with another body or path', async () => {
    const gateway = gatewayWith();
    await post(gateway, '/v1/authorizations', authorization(), 'key-1');

    const otherBody = await json(post(gateway, '/v1/authorizations', { ...authorization(), amount: 1 }, 'key-1'));
    const id = await authorized(gateway);
    const otherPath = await json(post(gateway, `/v1/authorizations/${id}/void`, authorization(), 'key-1'));

    expect(otherBody).toMatchObject({ status: 422, body: { error: { code: 'idempotency_key_reused' } } });
    expect(otherPath).toMatchObject({ status: 422, body: { error: { code: 'idempotency_key_reused' } } });
  });

  it('requires a key on every POST', async () => {
    const gateway = gatewayWith();
    const { status, body } = await json(post(gateway, '/v1/authorizations', authorization(), null));

    expect(status).toBe(400);
    expect(body.error.code).toBe('idempotency_key_missing');
  });

  it('answers 409 to a concurrent duplicate still in flight', async () => {
    const gateway = gatewayWith();
    const [first, second] = await Promise.all([
      json(post(gateway, '/v1/authorizations', authorization(), 'key-1')),
      json(post(gateway, '/v1/authorizations', authorization(), 'key-1')),
    ]);

    expect(first.status).toBe(201);
    expect(second).toMatchObject({ status: 409, body: { error: { code: 'idempotency_key_in_flight' } } });
    expect(gateway.stats().totals.authorizations).toBe(1);
  });
});

describe('authorizations', () => {
  it.each([
    ['4000000000000002', 'card_declined'],
    ['4000000000009995', 'insufficient_funds'],
    ['4000000000000069', 'expired_card'],
  ])('declines test card %s with %s', async (token, declineCode) => {
    const gateway = gatewayWith();
    const { status, body } = await json(post(gateway, '/v1/authorizations', authorization('order-1', token)));

    expect(status).toBe(402);
    expect(body).toMatchObject({ status: 'declined', declineCode, amount: 5000, reference: 'order-1' });
    expect(body.id).toMatch(/^auth_/);
  });

  it('declines any card when the decline rate is 1', async () => {
    const gateway = gatewayWith({ declineRate: 1 });
    const { status, body } = await json(post(gateway, '/v1/authorizations', authorization()));

    expect(status).toBe(402);
    expect(body.declineCode).toBe('card_declined');
  });

  it('draws the same declines from the same seed', async () => {
    async function outcomes(seed: number) {
      const gateway = createPaymentGateway({ seed, declineRate: 0.5 });
      const statuses: number[] = [];
      for (let i = 0; i < 20; i++) statuses.push((await post(gateway, '/v1/authorizations', authorization())).status);
      return statuses;
    }

    const first = await outcomes(42);
    expect(await outcomes(42)).toEqual(first);
    expect(new Set(first)).toEqual(new Set([201, 402]));
  });

  it('rejects a malformed body listing every bad field', async () => {
    const gateway = gatewayWith();
    const { status, body } = await json(post(gateway, '/v1/authorizations', { amount: 10.5, currency: 'EURO' }));

    expect(status).toBe(400);
    expect(body.error.code).toBe('validation_failed');
    expect(body.error.details.map((d) => d.field)).toEqual(['amount', 'currency', 'token', 'reference']);
  });

  it('lists the authorizations of a reference with their captures', async () => {
    const gateway = gatewayWith();
    const id = await authorized(gateway, 'order-1');
    await authorized(gateway, 'order-2');
    await post(gateway, `/v1/authorizations/${id}/capture`, { amount: 1200 });

    const { body } = await json(gateway.app.request('/v1/authorizations?reference=order-1'));

    expect(body.data).toHaveLength(1);
    expect(body.data[0]).toMatchObject({ id, status: 'authorized', voided: false, capturedAmount: 1200 });
    expect(body.data[0]?.captures).toMatchObject([{ amount: 1200, refundedAmount: 0 }]);
  });

  it('answers 404 for an unknown authorization', async () => {
    const gateway = gatewayWith();

    expect((await gateway.app.request('/v1/authorizations/auth_nope')).status).toBe(404);
    expect((await post(gateway, '/v1/authorizations/auth_nope/capture', {})).status).toBe(404);
  });
});

describe('captures, voids and refunds', () => {
  it('captures the full authorized amount by default', async () => {
    const gateway = gatewayWith();
    const id = await authorized(gateway);
    const { status, body } = await json(post(gateway, `/v1/authorizations/${id}/capture`, {}));

    expect(status).toBe(200);
    expect(body).toMatchObject({ authorizationId: id, status: 'captured', amount: 5000 });
    expect(body.id).toMatch(/^cap_/);
  });

  it('refuses to capture more than remains uncaptured', async () => {
    const gateway = gatewayWith();
    const id = await authorized(gateway);
    await post(gateway, `/v1/authorizations/${id}/capture`, { amount: 3000 });
    const { status, body } = await json(post(gateway, `/v1/authorizations/${id}/capture`, { amount: 2001 }));

    expect(status).toBe(409);
    expect(body.error.code).toBe('amount_exceeds_authorization');
  });

  it('refuses to capture a voided authorization', async () => {
    const gateway = gatewayWith();
    const id = await authorized(gateway);
    await post(gateway, `/v1/authorizations/${id}/void`, {});
    const { status, body } = await json(post(gateway, `/v1/authorizations/${id}/capture`, {}));

    expect(status).toBe(409);
    expect(body.error.code).toBe('authorization_voided');
  });

  it('voids twice with the same answer', async () => {
    const gateway = gatewayWith();
    const id = await authorized(gateway);
    const first = await json(post(gateway, `/v1/authorizations/${id}/void`, {}));
    const second = await json(post(gateway, `/v1/authorizations/${id}/void`, {}));

    expect(first).toEqual({ status: 200, body: { id, status: 'voided' } });
    expect(second).toEqual(first);
  });

  it('refuses to void a captured authorization', async () => {
    const gateway = gatewayWith();
    const id = await authorized(gateway);
    await post(gateway, `/v1/authorizations/${id}/capture`, {});
    const { status, body } = await json(post(gateway, `/v1/authorizations/${id}/void`, {}));

    expect(status).toBe(409);
    expect(body.error.code).toBe('already_captured');
  });

  it('refunds up to the captured amount and no further', async () => {
    const gateway = gatewayWith();
    const id = await authorized(gateway);
    const capture = await json(post(gateway, `/v1/authorizations/${id}/capture`, { amount: 4000 }));
    const path = `/v1/captures/${capture.body.id}/refunds`;

    const partial = await json(post(gateway, path, { amount: 2500 }));
    const rest = await json(post(gateway, path, { amount: 1500 }));
    const beyond = await json(post(gateway, path, { amount: 1 }));

    expect(partial.status).toBe(201);
    expect(partial.body).toMatchObject({ captureId: capture.body.id, amount: 2500 });
    expect(partial.body.id).toMatch(/^ref_/);
    expect(rest.status).toBe(201);
    expect(beyond).toMatchObject({ status: 409, body: { error: { code: 'refund_exceeds_capture' } } });
  });
});

describe('faults and stats', () => {
  it('answers 503 before doing anything when the failure rate is 1', async () => {
    const gateway = gatewayWith({ failureRate: 1 });
    const failed = await json(post(gateway, '/v1/authorizations', authorization(), 'key-1'));

    expect(failed).toMatchObject({ status: 503, body: { error: { code: 'gateway_unavailable' } } });
    expect(gateway.stats()).toMatchObject({ byReference: {}, requests: 1, failuresInjected: 1 });

    gateway.settings.failureRate = 0;
    const retried = await post(gateway, '/v1/authorizations', authorization(), 'key-1');
    expect(retried.status).toBe(201);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
  });

  it('resets the connection after doing the operation when the reset rate is 1', async () => {
    // A reset needs a real socket, so this one goes over HTTP rather than through app.request().
    const sandbox = await startSandbox({ gatewayPort: 0, carrierPort: 0, seed: 1 });
    try {
      const settings = (body: object) =>
        fetch(`${sandbox.gateway.url}/_sandbox/settings`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      await settings({ resetRate: 1 });
      const send = () =>
        fetch(`${sandbox.gateway.url}/v1/authorizations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'key-1' },
          body: JSON.stringify(authorization()),
        });

      const reset = await send().then(
        () => undefined,
        (error: Error) => error,
      );
      expect(reset?.cause).toMatchObject({ code: 'ECONNRESET' });
      expect(sandbox.gateway.stats()).toMatchObject({ totals: { authorizations: 1 }, failuresInjected: 1 });

      await settings({ resetRate: 0 });
      const retried = await send();
      expect(retried.status).toBe(201);
      expect(retried.headers.get('idempotent-replayed')).toBe('true');
      expect(sandbox.gateway.stats().totals.authorizations).toBe(1);
    } finally {
      await sandbox.close();
    }
  });

  it('makes one refund of a refund retried with its key after its answer was lost', async () => {
    // What a return's refund step relies on (workers/returns/refund.ts): the key `refund:<rma>` again.
    const sandbox = await startSandbox({ gatewayPort: 0, carrierPort: 0, seed: 1 });
    try {
      const client = createPaymentGatewayClient({ url: sandbox.gateway.url, timeoutMs: 5_000 });
      const auth = await client.authorize(
        { orderId: 'order-r', amount: 3000, currency: 'EUR', token: 'tok_visa' },
        'a',
      );
      if (auth.status !== 'authorized') throw new Error('the test card was declined');
      const { captureId } = await client.capture({ authorizationId: auth.authorizationId, amount: 3000 }, 'c');

      sandbox.gateway.settings.resetRate = 1;
      const lost = await client.refund({ captureId, amount: 1200 }, 'refund:RMA-1').catch((error: Error) => error);
      sandbox.gateway.settings.resetRate = 0;
      const retried = await client.refund({ captureId, amount: 1200 }, 'refund:RMA-1');

      expect(lost).toMatchObject({ code: 'provider_unavailable' });
      expect(retried.refundId).toMatch(/^ref_/);
      expect(sandbox.gateway.stats().byReference['order-r']).toMatchObject({ refunds: 1, refundedAmount: 1200 });
    } finally {
      await sandbox.close();
    }
  });

  it('changes settings at run time through the control endpoint', async () => {
    const gateway = gatewayWith();
    const response = await gateway.app.request('/_sandbox/settings', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ declineRate: 1 }),
    });

    expect(await response.json()).toEqual({ latencyMs: 0, declineRate: 1, failureRate: 0 });
    expect((await post(gateway, '/v1/authorizations', authorization())).status).toBe(402);
  });

  it('takes a reset rate through the control endpoint and refuses one above 1', async () => {
    const gateway = gatewayWith();
    const put = (body: unknown) =>
      gateway.app.request('/_sandbox/settings', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });

    expect(await (await put({ resetRate: 0.25 })).json()).toMatchObject({ resetRate: 0.25 });
    expect((await put({ resetRate: 2 })).status).toBe(400);
    expect(gateway.settings).toMatchObject({ resetRate: 0.25 });
  });

  it('counts operations per reference, with the distinct keys that tried to capture', async () => {
    const gateway = gatewayWith();
    const id = await authorized(gateway, 'order-1');
    const capture = await json(post(gateway, `/v1/authorizations/${id}/capture`, { amount: 2000 }, 'capture-1'));
    await post(gateway, `/v1/authorizations/${id}/capture`, { amount: 2000 }, 'capture-1');
    await post(gateway, `/v1/authorizations/${id}/capture`, { amount: 9000 }, 'capture-2');
    await post(gateway, `/v1/captures/${capture.body.id}/refunds`, { amount: 500 });
    const other = await authorized(gateway, 'order-2');
    await post(gateway, `/v1/authorizations/${other}/void`, {});

    const body = (await (await gateway.app.request('/_sandbox/stats')).json()) as PaymentGatewayStats;

    expect(body.byReference['order-1']).toEqual({
      authorizations: 1,
      captures: 1,
      captureKeys: 2,
      capturedAmount: 2000,
      voids: 0,
      refunds: 1,
      refundedAmount: 500,
    });
    expect(body.byReference['order-2']).toMatchObject({ authorizations: 1, voids: 1 });
    expect(body.totals).toMatchObject({ authorizations: 2, captures: 1, voids: 1 });
    expect(body.requests).toBe(7);
  });

  it('forgets everything on reset', async () => {
    const gateway = gatewayWith();
    await post(gateway, '/v1/authorizations', authorization(), 'key-1');
    await gateway.app.request('/_sandbox/reset', { method: 'POST' });

    const again = await post(gateway, '/v1/authorizations', authorization(), 'key-1');
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    expect(gateway.stats()).toMatchObject({ totals: { authorizations: 1 }, requests: 1 });
  });
});
