// Which catalog item a customer means by "volume 5", "Berserk 42" or "ONEPIECE-105": a SKU named outright
// wins; otherwise every item whose name has the volume number and each title word given. Pure, so the
// template responder and the stock tool resolve names the same way.

export type Product = { sku: string; name: string };

const STOP_WORDS = new Set(
  'a an and any are can check do does get have i in is it me my of on or please still stock stocked the there this to vol volume volumes you available availability got'.split(
    ' ',
  ),
);

export function findProducts(catalog: readonly Product[], phrase: string): Product[] {
  const upper = phrase.toUpperCase();
  const bySku = catalog.filter((p) => new RegExp(`(^|[^A-Z0-9-])${escapeRegExp(p.sku)}($|[^A-Z0-9-])`).test(upper));
  if (bySku.length > 0) return bySku;
  const volume = /\bvol(?:ume|\.)?\s*#?\s*(\d{1,4})\b/i.exec(phrase)?.[1] ?? /\b(\d{1,4})\b/.exec(phrase)?.[1];
  const words = (phrase.toLowerCase().match(/[a-z]+/g) ?? []).filter((w) => w.length > 1 && !STOP_WORDS.has(w));
  if (volume === undefined && words.length === 0) return [];
  return catalog.filter((p) => {
    const name = p.name.toLowerCase();
    if (volume !== undefined && !new RegExp(`\\bvol\\.\\s*${Number(volume)}\\b`).test(name)) return false;
    return words.every((w) => name.includes(w));
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
