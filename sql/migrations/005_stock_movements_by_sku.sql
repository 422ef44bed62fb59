-- The flash-sale controller re-seeds a hot SKU's admission counter every few seconds from one snapshot:
-- the SKU's available units with the id of its last stock movement, so the counter can tell which of the
-- inventory events it has yet to apply are older than the snapshot. That last id per SKU is one index
-- probe with this index, instead of a scan of the whole movements table.
CREATE INDEX stock_movements_by_sku ON stock_movements (sku, region, id);
