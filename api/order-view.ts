import { AppError } from '../domain/errors.ts';
import type { Db } from '../sql/database.ts';
import { loadOrderGroups } from '../sql/order-view.ts';

/** Everything about an order straight from PostgreSQL (for answers to writes); null if the caller may not see it. */
export async function loadOrderView(db: Db, orderId: string, customerId?: string) {
  const groups = await loadOrderGroups(db, orderId, ['placed', 'status', 'tracking']).catch((error) => {
    if (error instanceof AppError && error.code === 'not_found') return null;
    throw error;
  });
  if (!groups?.placed || (customerId !== undefined && groups.placed.customerId !== customerId)) return null;
  return { ...groups.placed, ...groups.status, ...groups.tracking };
}
