import { z } from 'zod';
import { type InventoryEvent, stockMovementKinds } from '../domain/stock-movements.ts';

// How an InventoryEvent travels on the Redis stream: flat field/value pairs, all strings. `orderId`
// is an empty string when the change belongs to no order (a restock, an adjustment).

export function toStreamFields(event: InventoryEvent): string[] {
  return [
    'id',
    event.id,
    'sku',
    event.sku,
    'region',
    event.region,
    'kind',
    event.kind,
    'quantity',
    String(event.quantity),
    'availableAfter',
    String(event.availableAfter),
    'orderId',
    event.orderId ?? '',
    'at',
    event.at,
  ];
}

const streamEvent = z.object({
  id: z.string().regex(/^\d+$/),
  sku: z.string().min(1),
  region: z.string().min(1),
  kind: z.enum(stockMovementKinds),
  quantity: z.coerce.number().int(),
  availableAfter: z.coerce.number().int(),
  orderId: z.string().transform((s) => (s === '' ? null : s)),
  at: z.iso.datetime({ offset: true }),
});

/** The event in a stream entry's fields, or null when they are not one (the caller logs and skips it). */
export function fromStreamFields(fields: readonly string[]): InventoryEvent | null {
  const record: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!;
  const parsed = streamEvent.safeParse(record);
  return parsed.success ? parsed.data : null;
}
