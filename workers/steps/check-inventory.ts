import { commits } from '../../sql/step-runtime.ts';
import { createStep, StepResponse } from '../step.ts';

// A read, not a reservation: it fails fast (out_of_stock) when the stock is plainly not there, while the
// payment is authorised in parallel. The reservation itself (reserve) is what guarantees no oversell.
export const checkInventory = createStep<
  'check-inventory',
  { levels: Array<{ sku: string; requested: number; available: number }> }
>({
  name: 'check-inventory',
  async invoke() {
    return StepResponse.committedBy(commits.checkInventory);
  },
});
