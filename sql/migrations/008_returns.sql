-- Returns (SPEC §5): a quote answers with a single-use token, the token creates a return, the return is a
-- saga (label, receipt, refund, restock) whose steps write their ledger rows to step_attempts under the
-- step names return-label:<rma>, return-refund:<rma> and return-restock:<rma>.

-- A quote's confirmation token. A row, not an HMAC: single use and expiry need state anyway, and every
-- API process sees the row. Only the token's SHA-256 is kept (32 random bytes, as for API keys). The row
-- binds what the return will be: customer, order, items with quantities and the refund computed then.
CREATE TABLE return_quotes (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_hash    text NOT NULL UNIQUE,
  customer_id   text NOT NULL REFERENCES customers (id),
  order_id      uuid NOT NULL REFERENCES orders (id),
  -- [{ sku, quantity, refundCents }]
  items         jsonb NOT NULL,
  reason        text NOT NULL,
  refund_cents  integer NOT NULL CHECK (refund_cents >= 0),
  created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at    timestamptz NOT NULL,
  used_at       timestamptz,
  return_id     bigint
);

-- requested (created, no label yet) → awaiting_receipt (label booked) → received (an operator recorded
-- what arrived) → closed (refund paid and restock done). requested and awaiting_receipt may also end as
-- cancelled (by the customer) or expired (nothing arrived within RETURN_RECEIPT_DAYS).
CREATE TABLE returns (
  id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rma                    text NOT NULL UNIQUE,
  order_id               uuid NOT NULL REFERENCES orders (id),
  customer_id            text NOT NULL REFERENCES customers (id),
  status                 text NOT NULL CHECK (status IN ('requested', 'awaiting_receipt', 'received', 'closed',
                           'cancelled', 'expired')),
  reason                 text NOT NULL,
  -- What the quote promised for every item, and what was paid for what arrived.
  quoted_cents           integer NOT NULL CHECK (quoted_cents >= 0),
  refunded_cents         integer,
  label_carrier          text,
  label_tracking_number  text,
  label_url              text,
  created_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
  received_at            timestamptz,
  refunded_at            timestamptz,
  restocked_at           timestamptz,
  ended_at               timestamptz
);
CREATE INDEX returns_by_order ON returns (order_id, id);
CREATE INDEX returns_by_status ON returns (status, created_at);
ALTER TABLE return_quotes ADD FOREIGN KEY (return_id) REFERENCES returns (id);

-- An order item is the order's SKU (order_items' key is (order_id, sku)). `active` is the return's
-- "not cancelled nor expired", copied here because a partial index cannot look at another table: it is
-- cleared in the transaction that cancels or expires the return. The unique index is SPEC invariant 5,
-- at most one return per order item: of two concurrent returns of an item, the second insert fails here.
CREATE TABLE return_items (
  return_id          bigint NOT NULL REFERENCES returns (id),
  order_id           uuid NOT NULL,
  sku                text NOT NULL,
  quantity           integer NOT NULL CHECK (quantity > 0),
  refund_cents       integer NOT NULL CHECK (refund_cents >= 0),
  active             boolean NOT NULL DEFAULT true,
  -- Recorded at receipt: how many units of `quantity` arrived, and what becomes of them.
  received_quantity  integer CHECK (received_quantity >= 0 AND received_quantity <= quantity),
  disposition        text CHECK (disposition IN ('restock', 'damaged', 'missing')),
  PRIMARY KEY (return_id, sku),
  FOREIGN KEY (order_id, sku) REFERENCES order_items (order_id, sku)
);
CREATE UNIQUE INDEX return_items_one_active ON return_items (order_id, sku) WHERE active;

-- A refund paid for a return names it; its row is written (pending) before the gateway is called.
ALTER TABLE payments ADD COLUMN return_id bigint REFERENCES returns (id);

-- Restocked return units: a movement of their own kind, from shipped back to available (on hand is
-- unchanged, so on_hand = available + reserved + shipped still holds).
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_kind_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_kind_check
  CHECK (kind IN ('reserve', 'release', 'ship', 'unship', 'restock', 'adjust', 'return'));

-- Refunds never exceed captures (SPEC invariant 2), enforced here rather than only by the code that
-- computes amounts: a refund row that is not failed counts (pending ones too, as their money may be on
-- its way), and the order's row is locked first so that two refunds of one order are checked one after
-- the other.
CREATE FUNCTION refunds_within_captures() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  v_captured bigint;
  v_refunded bigint;
BEGIN
  IF NEW.kind <> 'refund' OR NEW.status = 'failed' THEN
    RETURN NEW;
  END IF;
  PERFORM 1 FROM orders WHERE id = NEW.order_id FOR UPDATE;
  SELECT coalesce(sum(amount_cents), 0) INTO v_captured FROM payments
  WHERE order_id = NEW.order_id AND kind = 'capture' AND status = 'captured';
  SELECT coalesce(sum(amount_cents), 0) INTO v_refunded FROM payments
  WHERE order_id = NEW.order_id AND kind = 'refund' AND status <> 'failed' AND id <> NEW.id;
  IF v_refunded + NEW.amount_cents > v_captured THEN
    RAISE EXCEPTION 'refunds of order % would exceed its captures: % + % > %', NEW.order_id, v_refunded,
      NEW.amount_cents, v_captured
      USING ERRCODE = 'check_violation', CONSTRAINT = 'refunds_within_captures';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER payments_refunds_within_captures BEFORE INSERT OR UPDATE OF kind, status, amount_cents ON payments
  FOR EACH ROW EXECUTE FUNCTION refunds_within_captures();
