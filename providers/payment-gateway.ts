import { z } from 'zod';
import { AppError } from '../domain/errors.ts';
import { getJson, parseResponse, postJson, providerErrorCode } from './http.ts';

// Adapter for the card gateway (the sandbox in sandbox/payment-gateway.ts speaks its protocol).
// A decline is an answer, not an error: the caller decides what it means for the order.

export type AuthorizeInput = { orderId: string; amount: number; currency: string; token: string };
export type AuthorizeResult =
  | { status: 'authorized'; authorizationId: string }
  | { status: 'declined'; declineCode: string; authorizationId: string };
export type AuthorizationSummary = {
  authorizationId: string;
  status: 'authorized' | 'declined';
  amount: number;
  captured: number;
  voided: boolean;
  /** The idempotency key of the authorize call that made it. */
  idempotencyKey: string;
  captures: Array<{ captureId: string; amount: number }>;
};

export type PaymentGateway = {
  authorize(input: AuthorizeInput, idempotencyKey: string): Promise<AuthorizeResult>;
  capture(
    input: { authorizationId: string; amount: number },
    idempotencyKey: string,
  ): Promise<{ captureId: string; amount: number }>;
  voidAuthorization(
    authorizationId: string,
    idempotencyKey: string,
  ): Promise<{ status: 'voided' } | { status: 'already_captured' }>;
  refund(input: { captureId: string; amount: number }, idempotencyKey: string): Promise<{ refundId: string }>;
  /** Every authorization made for an order: how to learn the outcome of a call that timed out. */
  findAuthorizations(orderId: string): Promise<AuthorizationSummary[]>;
};

export type PaymentGatewayClientOptions = { url: string; timeoutMs: number };

const authorizationResponse = z.discriminatedUnion('status', [
  z.object({ status: z.literal('authorized'), id: z.string() }),
  z.object({ status: z.literal('declined'), id: z.string(), declineCode: z.string() }),
]);
const captureResponse = z.object({ id: z.string(), status: z.literal('captured'), amount: z.number().int() });
const voidResponse = z.object({ status: z.literal('voided') });
const refundResponse = z.object({ id: z.string() });
const authorizationList = z.object({
  data: z.array(
    z.object({
      id: z.string(),
      status: z.enum(['authorized', 'declined']),
      amount: z.number().int(),
      capturedAmount: z.number().int(),
      voided: z.boolean(),
      idempotencyKey: z.string(),
      captures: z.array(z.object({ id: z.string(), amount: z.number().int() })),
    }),
  ),
});

export function createPaymentGatewayClient(options: PaymentGatewayClientOptions): PaymentGateway {
  const base = options.url.replace(/\/+$/, '');
  const { timeoutMs } = options;

  return {
    async authorize(input, idempotencyKey) {
      const { orderId, amount, currency, token } = input;
      const response = await postJson(
        `${base}/v1/authorizations`,
        { amount, currency, token, reference: orderId },
        { timeoutMs, idempotencyKey, expect: [402] },
      );
      const body = parseResponse(authorizationResponse, response);
      if (body.status === 'declined') {
        return { status: 'declined', declineCode: body.declineCode, authorizationId: body.id };
      }
      return { status: 'authorized', authorizationId: body.id };
    },

    async capture(input, idempotencyKey) {
      const response = await postJson(
        `${base}/v1/authorizations/${encodeURIComponent(input.authorizationId)}/capture`,
        { amount: input.amount },
        { timeoutMs, idempotencyKey },
      );
      const body = parseResponse(captureResponse, response);
      return { captureId: body.id, amount: body.amount };
    },

    async voidAuthorization(authorizationId, idempotencyKey) {
      const response = await postJson(
        `${base}/v1/authorizations/${encodeURIComponent(authorizationId)}/void`,
        {},
        { timeoutMs, idempotencyKey, expect: [409] },
      );
      if (response.status === 409) {
        const code = providerErrorCode(response.body);
        if (code === 'already_captured') return { status: 'already_captured' };
        throw new AppError('provider_rejected', `Void of ${authorizationId} refused: ${code ?? 'unknown reason'}`, {
          details: { authorizationId, status: response.status, providerCode: code },
        });
      }
      parseResponse(voidResponse, response);
      return { status: 'voided' };
    },

    async refund(input, idempotencyKey) {
      const response = await postJson(
        `${base}/v1/captures/${encodeURIComponent(input.captureId)}/refunds`,
        { amount: input.amount },
        { timeoutMs, idempotencyKey },
      );
      return { refundId: parseResponse(refundResponse, response).id };
    },

    async findAuthorizations(orderId) {
      const response = await getJson(`${base}/v1/authorizations?reference=${encodeURIComponent(orderId)}`, {
        timeoutMs,
      });
      return parseResponse(authorizationList, response).data.map((auth) => ({
        authorizationId: auth.id,
        status: auth.status,
        amount: auth.amount,
        captured: auth.capturedAmount,
        voided: auth.voided,
        idempotencyKey: auth.idempotencyKey,
        captures: auth.captures.map((capture) => ({ captureId: capture.id, amount: capture.amount })),
      }));
    },
  };
}
