import { BusinessError } from '../../domain/errors.ts';
import { recordPayment } from '../../sql/payments.ts';
import { commits } from '../../sql/step-runtime.ts';
import { createStep, providerKey, StepResponse } from '../step.ts';

export const authorizePayment = createStep<'authorize-payment', { authorizationId: string; amountCents: number }>({
  name: 'authorize-payment',
  async invoke({ db, gateway, order, generation }) {
    const key = providerKey({ id: order.id, generation }, 'authorize');
    const amount = order.totalCents;
    const result = await gateway.authorize(
      { orderId: order.id, amount, currency: order.currency, token: order.paymentToken },
      key,
    );
    if (result.status === 'declined') {
      await recordPayment(db, {
        orderId: order.id,
        generation,
        kind: 'authorization',
        status: 'declined',
        idempotencyKey: key,
        gatewayId: result.authorizationId,
        amountCents: amount,
        declineCode: result.declineCode,
      });
      throw new BusinessError('payment_declined', `The card was declined (${result.declineCode})`, {
        declineCode: result.declineCode,
      });
    }
    return new StepResponse(
      { authorizationId: result.authorizationId, amountCents: amount },
      commits.payment({
        kind: 'authorization',
        status: 'authorized',
        idempotencyKey: key,
        gatewayId: result.authorizationId,
        amountCents: amount,
      }),
    );
  },

  // Voids the live authorization this generation's authorize call made, recorded by us or not (a
  // timeout can leave one unrecorded): the gateway knows it by its idempotency key. Authorizations of
  // other generations are not this compensation's to touch. A captured payment is refunded by
  // capture's compensation instead.
  async compensate({ db, gateway }, order) {
    const authorizeKey = providerKey(order, 'authorize');
    const held = (await gateway.findAuthorizations(order.id)).filter(
      (a) => a.idempotencyKey === authorizeKey && a.status === 'authorized' && !a.voided && a.captured === 0,
    );
    for (const auth of held) {
      const key = providerKey(order, `void-${auth.authorizationId}`);
      const result = await gateway.voidAuthorization(auth.authorizationId, key);
      if (result.status !== 'voided') continue;
      await recordPayment(db, {
        orderId: order.id,
        generation: order.generation,
        kind: 'void',
        status: 'voided',
        idempotencyKey: key,
        gatewayId: auth.authorizationId,
        amountCents: auth.amount,
      });
    }
    return held.length > 0 ? `voided ${held.map((a) => a.authorizationId).join(', ')}` : undefined;
  },
});
