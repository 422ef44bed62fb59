import { AppError } from '../../domain/errors.ts';
import { releaseStock, reserveStock } from '../../sql/inventory.ts';
import { listPayments, recordPayment } from '../../sql/payments.ts';
import { providerKey, runOf, type Step } from '../step.ts';

// Reserve, then capture: the customer is charged only once the goods are set aside. Both halves are
// idempotent (one reservation movement per order line, one capture key per order), so a retry after a
// crash between them completes the step without reserving or charging twice.
export const reserveStockAndCapture: Step<{ captureId: string; capturedCents: number }> = {
  name: 'reserve',
  endStatus: 'RESERVED',
  async run({ db, gateway, order, finish }) {
    await db.transaction((tx) => reserveStock(tx, runOf(order), order.region, order.items));
    const authorization = (await listPayments(db, order.id)).find(
      (p) => p.kind === 'authorization' && p.status === 'authorized' && p.generation === order.generation,
    );
    if (!authorization?.gateway_id) {
      throw new AppError('internal', `Order ${order.id} reached reserve without an authorization`);
    }
    const key = providerKey(order, 'capture');
    const capture = await gateway.capture(
      { authorizationId: authorization.gateway_id, amount: order.total_cents },
      key,
    );
    return finish(async (tx) => {
      await recordPayment(tx, {
        orderId: order.id,
        generation: order.generation,
        kind: 'capture',
        status: 'captured',
        idempotencyKey: key,
        gatewayId: capture.captureId,
        amountCents: capture.amount,
      });
      return { captureId: capture.captureId, capturedCents: capture.amount };
    });
  },

  async compensate({ db, gateway }, order) {
    const done: string[] = [];
    const payments = await listPayments(db, order.id);
    const capture = payments.find((p) => p.kind === 'capture');
    const refunded = payments.filter((p) => p.kind === 'refund').reduce((sum, p) => sum + p.amount_cents, 0);
    if (capture?.gateway_id && refunded < capture.amount_cents) {
      const key = providerKey(order, 'refund-compensation');
      const amount = capture.amount_cents - refunded;
      const refund = await gateway.refund({ captureId: capture.gateway_id, amount }, key);
      await recordPayment(db, {
        orderId: order.id,
        generation: order.generation,
        kind: 'refund',
        status: 'refunded',
        idempotencyKey: key,
        gatewayId: refund.refundId,
        amountCents: amount,
      });
      done.push(`refunded ${amount}`);
    }
    const released = await db.transaction((tx) => releaseStock(tx, runOf(order)));
    if (released > 0) done.push(`released ${released} line(s)`);
    return done.length > 0 ? done.join(', ') : undefined;
  },
};
