import { releaseStock } from '../../sql/inventory.ts';
import { commits } from '../../sql/step-runtime.ts';
import { createStep, StepResponse } from '../step.ts';

// Sets the goods aside: every line or none, in the step's commit (stage_reserve), which refuses with
// out_of_stock. The conditional update behind it is what makes oversell impossible, whatever
// check-inventory saw. The customer is charged after this (capture), once the goods are there.
export const reserve = createStep<'reserve', { lines: number }>({
  name: 'reserve',
  async invoke() {
    return StepResponse.committedBy(commits.reserve);
  },

  async compensate({ db }, order) {
    const released = await db.transaction((tx) =>
      releaseStock(tx, { orderId: order.id, generation: order.generation }),
    );
    return released > 0 ? `released ${released} line(s)` : undefined;
  },
});
