import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import {
  createControlRoutes,
  createRandom,
  type FaultCounters,
  type FaultSettings,
  faultSettingsSchema,
  injectFaults,
  rate,
} from './faults.ts';
import {
  errorResponse,
  handleErrorsAsJson,
  type IdempotencyStore,
  idempotencyKeys,
  notFound,
  parseBody,
} from './protocol.ts';

// A fake card gateway that behaves like a real one: authorize, capture, void, refund, with
// idempotency keys, declines, outages and slow answers. Amounts are integers in minor units.

export type PaymentGatewaySettings = FaultSettings & { declineRate: number };
export type PaymentGatewayOptions = Partial<PaymentGatewaySettings> & { seed?: number };

type Refund = { id: string; captureId: string; amount: number; createdAt: string };
type Capture = { id: string; authorizationId: string; amount: number; refunds: Refund[]; createdAt: string };
type Authorization = {
  id: string;
  status: 'authorized' | 'declined';
  declineCode: string | undefined;
  amount: number;
  currency: string;
  reference: string;
  /** The Idempotency-Key it was created with: lets a client find exactly what one of its calls made. */
  idempotencyKey: string;
  voided: boolean;
  captures: Capture[];
  createdAt: string;
};

export type ReferenceStats = {
  authorizations: number;
  captures: number;
  captureKeys: number;
  capturedAmount: number;
  voids: number;
  refunds: number;
  refundedAmount: number;
};
export type PaymentGatewayStats = {
  byReference: Record<string, ReferenceStats>;
  totals: ReferenceStats;
  requests: number;
  failuresInjected: number;
};

/** Tokens that always decline, like Stripe's test cards. */
export const declinedTestTokens: Readonly<Record<string, string>> = {
  '4000000000000002': 'card_declined',
  '4000000000009995': 'insufficient_funds',
  '4000000000000069': 'expired_card',
};

const amount = z.number().int().positive();
const authorizationBody = z.object({
  amount,
  currency: z
    .string()
    .regex(/^[A-Za-z]{3}$/, 'Expected a 3-letter currency code')
    .transform((s) => s.toUpperCase()),
  token: z.string().min(1),
  reference: z.string().min(1),
});
const captureBody = z.object({ amount: amount.optional() });
const refundBody = z.object({ amount });
const settingsSchema = faultSettingsSchema.extend({ declineRate: rate }).partial().strict();

function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

function sum(items: Array<{ amount: number }>): number {
  return items.reduce((total, item) => total + item.amount, 0);
}

function emptyStats(): ReferenceStats {
  return { authorizations: 0, captures: 0, captureKeys: 0, capturedAmount: 0, voids: 0, refunds: 0, refundedAmount: 0 };
}

function addAuthorization(stats: ReferenceStats, auth: Authorization): void {
  stats.authorizations += 1;
  stats.voids += auth.voided ? 1 : 0;
  stats.captures += auth.captures.length;
  stats.capturedAmount += sum(auth.captures);
  for (const capture of auth.captures) {
    stats.refunds += capture.refunds.length;
    stats.refundedAmount += sum(capture.refunds);
  }
}

function authorizationView(auth: Authorization) {
  return {
    id: auth.id,
    status: auth.status,
    ...(auth.declineCode ? { declineCode: auth.declineCode } : {}),
    amount: auth.amount,
    currency: auth.currency,
    reference: auth.reference,
    idempotencyKey: auth.idempotencyKey,
    voided: auth.voided,
    capturedAmount: sum(auth.captures),
    captures: auth.captures.map((capture) => ({
      id: capture.id,
      amount: capture.amount,
      refundedAmount: sum(capture.refunds),
      refunds: capture.refunds.map(({ id, amount, createdAt }) => ({ id, amount, createdAt })),
      createdAt: capture.createdAt,
    })),
    createdAt: auth.createdAt,
  };
}

export function createPaymentGateway(options: PaymentGatewayOptions = {}) {
  const settings: PaymentGatewaySettings = {
    latencyMs: options.latencyMs ?? 0,
    declineRate: options.declineRate ?? 0,
    failureRate: options.failureRate ?? 0,
  };
  const random = createRandom(options.seed);
  const counters: FaultCounters = { requests: 0, failuresInjected: 0 };
  const idempotency: IdempotencyStore = new Map();
  const authorizations = new Map<string, Authorization>();
  const captures = new Map<string, Capture>();
  // Distinct keys per order that reached a capture: more than one means the client captured twice.
  const captureKeys = new Map<string, Set<string>>();

  function stats(): PaymentGatewayStats {
    const byReference: Record<string, ReferenceStats> = {};
    const totals = emptyStats();
    for (const auth of authorizations.values()) {
      byReference[auth.reference] ??= emptyStats();
      addAuthorization(byReference[auth.reference]!, auth);
      addAuthorization(totals, auth);
    }
    for (const [reference, keys] of captureKeys) {
      byReference[reference] ??= emptyStats();
      byReference[reference]!.captureKeys = keys.size;
      totals.captureKeys += keys.size;
    }
    return { byReference, totals, requests: counters.requests, failuresInjected: counters.failuresInjected };
  }

  function reset(): void {
    for (const store of [idempotency, authorizations, captures, captureKeys]) store.clear();
    counters.requests = 0;
    counters.failuresInjected = 0;
    random.restart();
  }

  function decide(token: string): string | undefined {
    return declinedTestTokens[token] ?? (random.chance(settings.declineRate) ? 'card_declined' : undefined);
  }

  const app = new Hono();
  handleErrorsAsJson(app);
  app.route('/', createControlRoutes({ settings, settingsSchema, stats, reset }));
  app.use('/v1/*', injectFaults({ settings, random, counters, unavailableCode: 'gateway_unavailable' }));
  app.use('/v1/*', idempotencyKeys({ store: idempotency }));

  app.post('/v1/authorizations', async (c) => {
    const parsed = await parseBody(c, authorizationBody);
    if (!parsed.ok) return parsed.response;
    const declineCode = decide(parsed.data.token);
    const auth: Authorization = {
      id: newId('auth'),
      status: declineCode ? 'declined' : 'authorized',
      declineCode,
      amount: parsed.data.amount,
      currency: parsed.data.currency,
      reference: parsed.data.reference,
      idempotencyKey: c.req.header('idempotency-key') ?? '',
      voided: false,
      captures: [],
      createdAt: new Date().toISOString(),
    };
    authorizations.set(auth.id, auth);
    const { id, status, currency, reference } = auth;
    if (declineCode) return c.json({ id, status, declineCode, amount: auth.amount, currency, reference }, 402);
    return c.json({ id, status, amount: auth.amount, currency, reference }, 201);
  });

  app.get('/v1/authorizations', (c) => {
    const reference = c.req.query('reference');
    const matching = [...authorizations.values()].filter((a) => reference === undefined || a.reference === reference);
    return c.json({ data: matching.map(authorizationView) });
  });

  app.get('/v1/authorizations/:id', (c) => {
    const auth = authorizations.get(c.req.param('id'));
    return auth ? c.json(authorizationView(auth)) : notFound(c, 'authorization', c.req.param('id'));
  });

  app.post('/v1/authorizations/:id/capture', async (c) => {
    const auth = authorizations.get(c.req.param('id'));
    if (!auth) return notFound(c, 'authorization', c.req.param('id'));
    const parsed = await parseBody(c, captureBody);
    if (!parsed.ok) return parsed.response;
    const keys = captureKeys.get(auth.reference) ?? new Set<string>();
    captureKeys.set(auth.reference, keys.add(c.req.header('idempotency-key') ?? ''));
    if (auth.status === 'declined')
      return errorResponse(c, 409, 'authorization_declined', 'Authorization was declined');
    if (auth.voided) return errorResponse(c, 409, 'authorization_voided', 'Authorization was voided');
    const requested = parsed.data.amount ?? auth.amount;
    const remaining = auth.amount - sum(auth.captures);
    if (requested > remaining) {
      return errorResponse(
        c,
        409,
        'amount_exceeds_authorization',
        `Cannot capture ${requested}: ${remaining} remains uncaptured`,
      );
    }
    const capture: Capture = {
      id: newId('cap'),
      authorizationId: auth.id,
      amount: requested,
      refunds: [],
      createdAt: new Date().toISOString(),
    };
    auth.captures.push(capture);
    captures.set(capture.id, capture);
    return c.json({ id: capture.id, authorizationId: auth.id, status: 'captured', amount: requested }, 200);
  });

  app.post('/v1/authorizations/:id/void', (c) => {
    const auth = authorizations.get(c.req.param('id'));
    if (!auth) return notFound(c, 'authorization', c.req.param('id'));
    if (auth.captures.length > 0) return errorResponse(c, 409, 'already_captured', 'Authorization has a capture');
    auth.voided = true;
    return c.json({ id: auth.id, status: 'voided' }, 200);
  });

  app.post('/v1/captures/:id/refunds', async (c) => {
    const capture = captures.get(c.req.param('id'));
    if (!capture) return notFound(c, 'capture', c.req.param('id'));
    const parsed = await parseBody(c, refundBody);
    if (!parsed.ok) return parsed.response;
    const refundable = capture.amount - sum(capture.refunds);
    if (parsed.data.amount > refundable) {
      return errorResponse(c, 409, 'refund_exceeds_capture', `Cannot refund ${parsed.data.amount}: ${refundable} left`);
    }
    const refund: Refund = {
      id: newId('ref'),
      captureId: capture.id,
      amount: parsed.data.amount,
      createdAt: new Date().toISOString(),
    };
    capture.refunds.push(refund);
    return c.json({ id: refund.id, captureId: capture.id, amount: refund.amount }, 201);
  });

  return { app, settings, seed: random.seed, stats, reset };
}

export type PaymentGatewaySandbox = ReturnType<typeof createPaymentGateway>;
