import { shipStock, unshipStock } from '../../sql/inventory.ts';
import { findShipment, markShipmentCancelled, recordShipment } from '../../sql/shipments.ts';
import { providerKey, runOf, type Step } from '../step.ts';

export const createShipment: Step<{ trackingNumber: string; carrierShipmentId: string }> = {
  name: 'ship',
  startStatus: 'FULFILLMENT',
  async run({ carrier, order, finish }) {
    const shipment = await carrier.createShipment(
      {
        orderId: order.id,
        address: order.shipping_address,
        parcels: order.items.map((i) => ({ sku: i.sku, quantity: i.quantity })),
      },
      providerKey(order, 'shipment'),
    );
    return finish(async (tx) => {
      await recordShipment(tx, {
        orderId: order.id,
        carrier: shipment.carrier,
        carrierShipmentId: shipment.shipmentId,
        trackingNumber: shipment.trackingNumber,
        labelUrl: shipment.labelUrl,
        events: shipment.events,
      });
      await shipStock(tx, runOf(order));
      return { trackingNumber: shipment.trackingNumber, carrierShipmentId: shipment.shipmentId };
    });
  },

  async compensate({ db, carrier }, order) {
    const shipment = await findShipment(db, order.id);
    if (!shipment || shipment.cancelled_at !== null) return undefined;
    await carrier.cancelShipment(shipment.carrier_shipment_id, providerKey(order, 'cancel-shipment'));
    await db.transaction(async (tx) => {
      await markShipmentCancelled(tx, order.id);
      await unshipStock(tx, runOf(order));
    });
    return `cancelled shipment ${shipment.tracking_number}`;
  },
};
