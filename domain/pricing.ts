// Prices come from the catalog, never from the client. Pure: the caller loads the catalog rows.

export type CatalogEntry = { sku: string; name: string; price_cents: number; currency: string; final_sale: boolean };
export type PricedLine = { sku: string; name: string; quantity: number; unit_price_cents: number; final_sale: boolean };
export type PricingProblem = { field: string; message: string };

export type PricedOrder =
  | { ok: true; lines: PricedLine[]; totalCents: number; currency: string }
  | { ok: false; problems: PricingProblem[] };

export function priceOrder(
  items: ReadonlyArray<{ sku: string; quantity: number }>,
  catalog: ReadonlyArray<CatalogEntry>,
): PricedOrder {
  const bySku = new Map(catalog.map((c) => [c.sku, c]));
  const problems: PricingProblem[] = [];
  const lines: PricedLine[] = [];
  items.forEach((item, i) => {
    const entry = bySku.get(item.sku);
    if (!entry) {
      problems.push({ field: `items[${i}].sku`, message: `unknown SKU "${item.sku}"` });
      return;
    }
    lines.push({
      sku: entry.sku,
      name: entry.name,
      quantity: item.quantity,
      unit_price_cents: entry.price_cents,
      final_sale: entry.final_sale,
    });
  });
  const currencies = new Set(lines.map((l) => bySku.get(l.sku)?.currency));
  if (currencies.size > 1) problems.push({ field: 'items', message: 'items are priced in different currencies' });
  if (lines.length === 0 && problems.length === 0)
    problems.push({ field: 'items', message: 'at least one item is required' });
  if (problems.length > 0) return { ok: false, problems };
  const totalCents = lines.reduce((sum, l) => sum + l.quantity * l.unit_price_cents, 0);
  return { ok: true, lines, totalCents, currency: bySku.get(lines[0]!.sku)!.currency };
}
