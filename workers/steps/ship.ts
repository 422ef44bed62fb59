import { unshipStock } from '../../sql/inventory.ts';
import { findOrder } from '../../sql/orders.ts';
import { findShipment, markShipmentCancelled } from '../../sql/shipments.ts';
import { commits } from '../../sql/step-runtime.ts';
import { createStep, providerKey, StepResponse } from '../step.ts';

// Books the carrier's label; its commit (stage_ship) records it with its tracking events and moves the
// reserved units to shipped.
export const ship = createStep<'ship', { carrier: string; trackingNumber: string; carrierShipmentId: string }>({
  name: 'ship',
  async invoke({ carrier, order, generation }) {
    const shipment = await carrier.createShipment(
      {
        orderId: order.id,
        address: order.shippingAddress,
        parcels: order.items.map((i) => ({ sku: i.sku, quantity: i.quantity })),
      },
      providerKey({ id: order.id, generation }, 'shipment'),
    );
    return new StepResponse(
      { carrier: shipment.carrier, trackingNumber: shipment.trackingNumber, carrierShipmentId: shipment.shipmentId },
      commits.ship({
        carrier: shipment.carrier,
        carrierShipmentId: shipment.shipmentId,
        trackingNumber: shipment.trackingNumber,
        labelUrl: shipment.labelUrl,
        events: shipment.events,
      }),
    );
  },

  // An order has one shipment, made by its current generation: an older generation has none to cancel.
  async compensate({ db, carrier }, order) {
    if ((await findOrder(db, order.id))?.generation !== order.generation) return undefined;
    const shipment = await findShipment(db, order.id);
    if (!shipment || shipment.cancelled_at !== null) return undefined;
    await carrier.cancelShipment(shipment.carrier_shipment_id, providerKey(order, 'cancel-shipment'));
    await db.transaction(async (tx) => {
      await markShipmentCancelled(tx, order.id);
      await unshipStock(tx, { orderId: order.id, generation: order.generation });
    });
    return `cancelled shipment ${shipment.tracking_number}`;
  },
});
