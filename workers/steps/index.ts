import type { StepName } from '../../queues/order-workflow.ts';
import type { Step } from '../step.ts';
import { authorizePayment } from './authorize-payment.ts';
import { capture } from './capture.ts';
import { checkInventory } from './check-inventory.ts';
import { notify } from './notify.ts';
import { reserve } from './reserve.ts';
import { ship } from './ship.ts';
import { validate } from './validate.ts';

/** Each step of the workflow (queues/order-workflow.ts), by name: one file per step, named after it. */
export const steps: { [Name in StepName]: Step<Name, unknown, never> } = {
  validate,
  'check-inventory': checkInventory,
  'authorize-payment': authorizePayment,
  reserve,
  capture,
  ship,
  notify,
};
