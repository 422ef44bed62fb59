-- Every stock change is a stock_movements row written in the same transaction as the change, so the
-- movements table is the outbox of inventory events: a relay publishes unpublished rows to a Redis
-- stream and marks them. Rows of one SKU are inserted while its inventory row is locked, so their ids
-- follow commit order and the relay publishes each SKU's events in order.
ALTER TABLE stock_movements
  ADD COLUMN available_after integer,
  ADD COLUMN published_at timestamptz;
-- Movements that existed before this migration are history, not events to publish.
UPDATE stock_movements SET published_at = now();
CREATE INDEX stock_movements_unpublished ON stock_movements (id) WHERE published_at IS NULL;

-- Sale windows declared by an operator: the SKUs are hot from starts_at to ends_at, whatever the sales.
CREATE TABLE flash_sales (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name            text NOT NULL,
  region          text NOT NULL,
  skus            text[] NOT NULL CHECK (cardinality(skus) > 0),
  starts_at       timestamptz NOT NULL,
  ends_at         timestamptz NOT NULL,
  purchase_limit  integer CHECK (purchase_limit > 0),
  ended_at        timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CHECK (ends_at > starts_at)
);
CREATE INDEX flash_sales_current ON flash_sales (ends_at) WHERE ended_at IS NULL;

