import { listPayments, recordPayment } from '../../sql/payments.ts';
import { commits } from '../../sql/step-runtime.ts';
import { createStep, type OutputOf, providerKey, StepResponse } from '../step.ts';
import type { authorizePayment } from './authorize-payment.ts';

// Charges the authorization, once the goods are reserved. One capture key per order (not per
// generation) and one capture row per order: whatever retries or crashes happen, never two captures.
export const capture = createStep<
  'capture',
  { captureId: string; capturedCents: number },
  { 'authorize-payment': OutputOf<typeof authorizePayment> }
>({
  name: 'capture',
  needs: ['authorize-payment'],
  async invoke({ gateway, order, generation, inputs }) {
    const key = providerKey({ id: order.id, generation }, 'capture');
    const { authorizationId } = inputs['authorize-payment'];
    const result = await gateway.capture({ authorizationId, amount: order.totalCents }, key);
    return new StepResponse(
      { captureId: result.captureId, capturedCents: result.amount },
      commits.payment({
        kind: 'capture',
        status: 'captured',
        idempotencyKey: key,
        gatewayId: result.captureId,
        amountCents: result.amount,
      }),
    );
  },

  // Refunds what was captured and not refunded yet.
  async compensate({ db, gateway }, order) {
    const payments = await listPayments(db, order.id);
    // The order's one capture, if this generation made it (a later generation's is not this run's to undo).
    const captured = payments.find((p) => p.kind === 'capture' && p.generation === order.generation);
    const refunded = payments.filter((p) => p.kind === 'refund').reduce((sum, p) => sum + p.amount_cents, 0);
    if (!captured?.gateway_id || refunded >= captured.amount_cents) return undefined;
    const key = providerKey(order, 'refund-compensation');
    const amount = captured.amount_cents - refunded;
    const refund = await gateway.refund({ captureId: captured.gateway_id, amount }, key);
    await recordPayment(db, {
      orderId: order.id,
      generation: order.generation,
      kind: 'refund',
      status: 'refunded',
      idempotencyKey: key,
      gatewayId: refund.refundId,
      amountCents: amount,
    });
    return `refunded ${amount}`;
  },
});
