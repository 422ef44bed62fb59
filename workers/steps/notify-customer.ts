import { findCustomerEmail } from '../../sql/catalog.ts';
import { recordNotification } from '../../sql/notifications.ts';
import { findShipment } from '../../sql/shipments.ts';
import type { Step } from '../step.ts';

// Mail is sent before the notification is recorded, so a crash in between can send it twice; mail is
// the one effect where at-least-once is the acceptable side (a lost confirmation is worse).
export const notifyCustomer: Step<{ channel: string; recipient: string }> = {
  name: 'notify',
  endStatus: 'COMPLETED',
  async run({ db, mailer, order, finish }) {
    const recipient = (await findCustomerEmail(db, order.customer_id)) ?? 'unknown';
    const shipment = await findShipment(db, order.id);
    const tracking = shipment ? `${shipment.carrier} ${shipment.tracking_number}` : 'to follow';
    const subject = `Your order ${order.id.slice(0, 8)} is on its way`;
    const lines = order.items.map((i) => `  ${i.quantity} x ${i.name}`).join('\n');
    const body = `Thank you for your order.\n\n${lines}\n\nTracking: ${tracking}\n`;
    await mailer.send({ to: recipient, subject, body });
    return finish(async (tx) => {
      await recordNotification(tx, { orderId: order.id, kind: 'shipped', channel: 'email', recipient, subject, body });
      return { channel: 'email', recipient };
    });
  },
};
