import { AppError } from '../../domain/errors.ts';
import { openReturnRefund, settleReturnRefund } from '../../sql/return-steps.ts';
import { type ReturnStep, returnKey } from './return-step.ts';

/**
 * Refunds what arrived. The payments row comes first (pending, key `refund:<rma>`), then the gateway call
 * with that key, then the row's success: a retry after a lost answer or a crash finds the row and calls
 * again with the same key and amount, and the gateway answers with the refund it made the first time
 * (one refund however often the answer is lost). A failure never deletes the row.
 */
export const refund: ReturnStep = {
  kind: 'refund',
  async run(deps, record, ledger) {
    if (record.status !== 'received' && record.status !== 'closed') {
      return { skipped: `the return is ${record.status}` };
    }
    const key = returnKey('refund', record.rma);
    const open = await openReturnRefund(deps.db, record, key);
    if (!open) {
      // Nothing arrived that is refunded (all missing), or nothing is left to refund.
      await settleReturnRefund(deps.db, ledger, record, { key, gatewayId: null, amountCents: 0 });
      return { refundedCents: 0 };
    }
    let gatewayId = open.gatewayId;
    if (open.status === 'pending') {
      if (!open.captureId) throw new AppError('provider_rejected', `Order ${record.order_id} has no capture to refund`);
      gatewayId = (await deps.gateway.refund({ captureId: open.captureId, amount: open.amountCents }, key)).refundId;
    }
    await settleReturnRefund(deps.db, ledger, record, { key, gatewayId, amountCents: open.amountCents });
    return { refundedCents: open.amountCents, refundId: gatewayId };
  },
};
