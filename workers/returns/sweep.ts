import type { OrderQueues } from '../../queues/order-queues.ts';
import { endUnreceived, findOverdueReturns, findStalledReturns, lockReturn } from '../../sql/returns.ts';
import type { StepDeps } from '../step.ts';

export type SweepSettings = {
  receiptDays: number;
  /** A return untouched this long with its next step not done has lost its job (Redis): enqueued again. */
  quietMs: number;
  now: number;
};

/**
 * The returns' periodic work, on the maintenance queue's job scheduler (like the delivery tracking):
 * returns whose parcel has not arrived within RETURN_RECEIPT_DAYS of their creation expire (their items
 * may be returned again), and steps whose job Redis lost are enqueued again (the ledger makes a step that
 * did run return its stored output; the same job id makes a step still queued be added once).
 */
export async function sweepReturns(deps: StepDeps, queues: OrderQueues, settings: SweepSettings) {
  let expired = 0;
  for (const { rma } of await findOverdueReturns(deps.db, settings.now, settings.receiptDays, 100)) {
    const ended = await deps.db.transaction(async (tx) => {
      const record = await lockReturn(tx, rma);
      if (record?.status !== 'requested' && record?.status !== 'awaiting_receipt') return null;
      await endUnreceived(tx, record, 'expired');
      return record;
    });
    if (!ended) continue;
    expired += 1;
    await deps.invalidateOrder(ended.order_id, ended.customer_id);
  }
  let resumed = 0;
  for (const stalled of await findStalledReturns(deps.db, settings.now, settings.quietMs, 100)) {
    if (stalled.status === 'requested') await queues.enqueueReturnStep({ step: 'label', rma: stalled.rma });
    else {
      await queues.enqueueReturnStep({ step: 'refund', rma: stalled.rma });
      await queues.enqueueReturnStep({ step: 'restock', rma: stalled.rma });
    }
    resumed += 1;
  }
  if (expired + resumed > 0) deps.log.info({ expired, resumed }, 'returns swept');
  return { expired, resumed };
}
