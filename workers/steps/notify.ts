import { commits } from '../../sql/step-runtime.ts';
import { createStep, type OutputOf, StepResponse } from '../step.ts';
import type { ship } from './ship.ts';

// Mail is sent before the notification is recorded, so a crash in between can send it twice; mail is
// the one effect where at-least-once is the acceptable side (a lost confirmation is worse).
export const notify = createStep<'notify', { channel: string; recipient: string }, { ship: OutputOf<typeof ship> }>({
  name: 'notify',
  needs: ['ship'],
  async invoke({ mailer, order, inputs }) {
    const recipient = order.customerEmail;
    const subject = `Your order ${order.id.slice(0, 8)} is on its way`;
    const lines = order.items.map((i) => `  ${i.quantity} x ${i.name}`).join('\n');
    const body = `Thank you for your order.\n\n${lines}\n\nTracking: ${inputs.ship.carrier} ${inputs.ship.trackingNumber}\n`;
    await mailer.send({ to: recipient, subject, body });
    return new StepResponse(
      { channel: 'email', recipient },
      commits.notify({ kind: 'shipped', channel: 'email', recipient, subject, body }),
    );
  },
});
