import { BusinessError } from '../../domain/errors.ts';
import { recordPayment } from '../../sql/payments.ts';
import { providerKey, type Step } from '../step.ts';

export const authorizePayment: Step<{ authorizationId: string }> = {
  name: 'authorize-payment',
  startStatus: 'PAYMENT_PROCESSING',
  async run({ db, gateway, order, finish }) {
    const key = providerKey(order, 'authorize');
    const amount = order.total_cents;
    const result = await gateway.authorize(
      { orderId: order.id, amount, currency: order.currency, token: order.payment_token },
      key,
    );
    if (result.status === 'declined') {
      await recordPayment(db, {
        orderId: order.id,
        generation: order.generation,
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
    return finish(async (tx) => {
      await recordPayment(tx, {
        orderId: order.id,
        generation: order.generation,
        kind: 'authorization',
        status: 'authorized',
        idempotencyKey: key,
        gatewayId: result.authorizationId,
        amountCents: amount,
      });
      return { authorizationId: result.authorizationId };
    });
  },

  // Voids the live authorization this generation's authorize call made, recorded by us or not (a
  // timeout can leave one unrecorded): the gateway knows it by its idempotency key. Authorizations of
  // other generations are not this compensation's to touch. A captured payment is refunded by
  // reserve-stock's compensation instead.
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
};
