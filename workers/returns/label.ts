import { AppError } from '../../domain/errors.ts';
import { findCarrierShipmentId, recordReturnLabel } from '../../sql/return-steps.ts';
import { type ReturnStep, returnKey } from './return-step.ts';

/**
 * Books the carrier's return label for the parcel the customer sends back, then, in one transaction,
 * moves the return to awaiting_receipt with the label and touches the order (its view shows it). A return
 * cancelled or expired before its label needs none.
 */
export const label: ReturnStep = {
  kind: 'label',
  async run(deps, record, ledger, replay) {
    if (record.status !== 'requested') return { skipped: `the return is ${record.status}` };
    const shipmentId = await findCarrierShipmentId(deps.db, record.order_id);
    if (!shipmentId) throw new AppError('invalid_order', `Order ${record.order_id} has no shipment to return`);
    const booked = await deps.carrier.createReturnLabel(
      {
        shipmentId,
        reference: record.rma,
        parcels: record.items.map((item) => ({ sku: item.sku, quantity: item.quantity })),
      },
      // A replay (the operator fixed what the carrier refused) asks again under a key of its own: the
      // carrier keeps the refusal under the first key and would only repeat it. The cost, when the step
      // had failed on lost answers instead, is a second label, which carriers charge only when used.
      replay ? `${returnKey('return-label', record.rma)}:${replay}` : returnKey('return-label', record.rma),
    );
    const answer = { carrier: booked.carrier, trackingNumber: booked.trackingNumber, labelUrl: booked.labelUrl };
    await recordReturnLabel(deps.db, ledger, record, answer);
    return answer;
  },
};
