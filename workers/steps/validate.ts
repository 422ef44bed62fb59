import { commits } from '../../sql/step-runtime.ts';
import { createStep, StepResponse } from '../step.ts';

// The API has already checked the request; this re-checks the order against the catalog as it is now,
// since the order may have waited in the queue (a SKU withdrawn, a region no longer served). The check
// is a read inside the step's commit (stage_validate), which refuses with invalid_order.
export const validate = createStep<'validate', { items: number; totalCents: number }>({
  name: 'validate',
  async invoke() {
    return StepResponse.committedBy(commits.validate);
  },
});
