import type { StepName } from '../../queues/pipeline.ts';
import type { Step } from '../step.ts';
import { authorizePayment } from './authorize-payment.ts';
import { checkInventory } from './check-inventory.ts';
import { createShipment } from './create-shipment.ts';
import { notifyCustomer } from './notify-customer.ts';
import { reserveStockAndCapture } from './reserve-stock.ts';
import { validateOrder } from './validate-order.ts';

export const steps: Record<StepName, Step> = {
  validate: validateOrder,
  'check-inventory': checkInventory,
  'authorize-payment': authorizePayment,
  reserve: reserveStockAndCapture,
  ship: createShipment,
  notify: notifyCustomer,
};

/** Compensations run in the reverse of pipeline order: label, then stock and capture, then authorization. */
export const compensationOrder: readonly Step[] = [createShipment, reserveStockAndCapture, authorizePayment];
