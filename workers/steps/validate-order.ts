import { BusinessError } from '../../domain/errors.ts';
import { findCatalogItems } from '../../sql/catalog.ts';
import { getStockLevels } from '../../sql/inventory.ts';
import type { Step } from '../step.ts';

// The API has already checked the request; this re-checks the order against the catalog as it is now,
// since the order may have waited in the queue (a SKU withdrawn, a region no longer served).
export const validateOrder: Step<{ items: number; totalCents: number }> = {
  name: 'validate',
  startStatus: 'VALIDATING',
  async run({ db, order, finish }) {
    const skus = order.items.map((i) => i.sku);
    const catalog = new Map((await findCatalogItems(db, skus)).map((c) => [c.sku, c]));
    const stocked = new Set((await getStockLevels(db, order.region, skus)).map((s) => s.sku));
    const problems: Array<{ sku: string; problem: string }> = [];
    for (const item of order.items) {
      if (!catalog.has(item.sku)) problems.push({ sku: item.sku, problem: 'no longer in the catalog' });
      else if (!stocked.has(item.sku)) problems.push({ sku: item.sku, problem: `not sold in region ${order.region}` });
    }
    const total = order.items.reduce((sum, i) => sum + i.quantity * i.unit_price_cents, 0);
    if (total !== order.total_cents) problems.push({ sku: '*', problem: 'order total does not match its lines' });
    if (problems.length > 0) {
      throw new BusinessError('invalid_order', problems.map((p) => `${p.sku}: ${p.problem}`).join('; '), problems);
    }
    return finish(async () => ({ items: order.items.length, totalCents: total }));
  },
};
