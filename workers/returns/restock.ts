import { restockReturn } from '../../sql/return-steps.ts';
import type { ReturnStep } from './return-step.ts';

/**
 * Puts the units received with disposition `restock` back on sale (damaged and missing ones are not),
 * apart from the refund: a refund that waits for an operator does not hold the stock back.
 */
export const restock: ReturnStep = {
  kind: 'restock',
  async run(deps, record, ledger) {
    if (record.status !== 'received' && record.status !== 'closed') {
      return { skipped: `the return is ${record.status}` };
    }
    return { restockedUnits: await restockReturn(deps.db, ledger, record) };
  },
};
