import { BusinessError } from '../../domain/errors.ts';
import { getStockLevels } from '../../sql/inventory.ts';
import type { Step } from '../step.ts';

// A read, not a reservation: it fails fast when the stock is plainly not there, while the payment is
// authorised in parallel. The reservation itself (reserve-stock) is what guarantees no oversell.
export const checkInventory: Step<{ levels: Array<{ sku: string; available: number }> }> = {
  name: 'check-inventory',
  startStatus: 'INVENTORY_CHECK',
  async run({ db, order, finish }) {
    const levels = new Map(
      (
        await getStockLevels(
          db,
          order.region,
          order.items.map((i) => i.sku),
        )
      ).map((l) => [l.sku, l]),
    );
    const short = order.items
      .map((i) => ({ sku: i.sku, requested: i.quantity, available: levels.get(i.sku)?.available ?? 0 }))
      .filter((l) => l.available < l.requested);
    if (short.length > 0) {
      throw new BusinessError('out_of_stock', `Not enough stock for ${short.map((s) => s.sku).join(', ')}`, short);
    }
    return finish(async () => ({
      levels: order.items.map((i) => ({ sku: i.sku, available: levels.get(i.sku)?.available ?? 0 })),
    }));
  },
};
