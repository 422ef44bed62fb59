-- orderflow schema, version 1. Forward-only: never edit a migration once it has landed; add a new one.

CREATE TABLE customers (
  id          text PRIMARY KEY,
  name        text NOT NULL,
  email       text NOT NULL UNIQUE,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Keys are 32 random bytes, so a SHA-256 of the key is enough (no slow hash needed) and lets us look
-- the key up by its hash. Only the hash and a short prefix (to recognise a key in a list) are kept.
CREATE TABLE api_keys (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name         text NOT NULL,
  key_hash     text NOT NULL UNIQUE,
  key_prefix   text NOT NULL,
  role         text NOT NULL CHECK (role IN ('customer', 'admin')),
  customer_id  text REFERENCES customers (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  revoked_at   timestamptz,
  CHECK ((role = 'customer') = (customer_id IS NOT NULL))
);

CREATE TABLE catalog (
  sku          text PRIMARY KEY,
  name         text NOT NULL,
  price_cents  integer NOT NULL CHECK (price_cents >= 0),
  currency     char(3) NOT NULL,
  final_sale   boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now()
);

-- on_hand counts every unit ever received; it is split, at every moment, into available (can be sold),
-- reserved (sold, waiting for shipment) and shipped. The CHECKs make oversell and lost units impossible
-- by construction: a reservation is a conditional UPDATE that would violate available >= 0 otherwise.
CREATE TABLE inventory (
  sku           text NOT NULL REFERENCES catalog (sku),
  region        text NOT NULL,
  on_hand       integer NOT NULL CHECK (on_hand >= 0),
  available     integer NOT NULL CHECK (available >= 0),
  reserved      integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  shipped       integer NOT NULL DEFAULT 0 CHECK (shipped >= 0),
  restock_date  date,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (sku, region),
  CHECK (on_hand = available + reserved + shipped)
);

CREATE TABLE orders (
  id                uuid PRIMARY KEY,
  customer_id       text NOT NULL REFERENCES customers (id),
  status            text NOT NULL CHECK (status IN ('PENDING', 'VALIDATING', 'INVENTORY_CHECK', 'PAYMENT_PROCESSING',
                      'RESERVED', 'FULFILLMENT', 'COMPLETED', 'FAILED', 'CANCELLED')),
  region            text NOT NULL,
  currency          char(3) NOT NULL,
  total_cents       integer NOT NULL CHECK (total_cents >= 0),
  shipping_address  jsonb NOT NULL,
  payment_token     text NOT NULL,
  failure_reason    text,
  failed_step       text,
  -- A retry after a failure that can pass (out of stock until restock) is a new generation: its steps,
  -- stock movements and payment operations are new, keyed by generation, so nothing of the failed one
  -- is mistaken for done.
  generation        integer NOT NULL DEFAULT 1,
  -- Bumped each time the reconciler re-enqueues the order, so its new jobs never collide with old ones.
  enqueue_round     integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_recent ON orders (customer_id, created_at DESC);
CREATE INDEX orders_not_terminal ON orders (updated_at) WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED');

CREATE TABLE order_items (
  order_id          uuid NOT NULL REFERENCES orders (id),
  sku               text NOT NULL REFERENCES catalog (sku),
  name              text NOT NULL,
  quantity          integer NOT NULL CHECK (quantity > 0),
  unit_price_cents  integer NOT NULL CHECK (unit_price_cents >= 0),
  final_sale        boolean NOT NULL,
  PRIMARY KEY (order_id, sku)
);

-- Every status change, written in the same transaction as the change. Append-only (trigger below).
CREATE TABLE order_history (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id     uuid NOT NULL REFERENCES orders (id),
  from_status  text,
  to_status    text NOT NULL,
  actor        text NOT NULL,
  reason       text NOT NULL,
  at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX order_history_order ON order_history (order_id, id);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER order_history_append_only BEFORE UPDATE OR DELETE ON order_history
  FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- The per-step ledger: one row per attempt. At most one succeeded attempt per (order, step): a retry
-- after a crash finds it and returns its stored output instead of doing the work again.
CREATE TABLE step_attempts (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id       uuid NOT NULL REFERENCES orders (id),
  generation     integer NOT NULL,
  step           text NOT NULL,
  attempt        integer NOT NULL,
  worker         text NOT NULL,
  started_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at    timestamptz,
  outcome        text NOT NULL DEFAULT 'running'
                   CHECK (outcome IN ('running', 'succeeded', 'failed', 'skipped')),
  error_code     text,
  error_message  text,
  output         jsonb
);
CREATE INDEX step_attempts_order ON step_attempts (order_id, id);
CREATE UNIQUE INDEX step_attempts_one_success ON step_attempts (order_id, generation, step) WHERE outcome = 'succeeded';

-- Every movement of stock, keyed so that the same order can reserve, release or ship a SKU only once.
CREATE TABLE stock_movements (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sku         text NOT NULL,
  region      text NOT NULL,
  order_id    uuid REFERENCES orders (id),
  generation  integer,
  kind        text NOT NULL CHECK (kind IN ('reserve', 'release', 'ship', 'unship', 'restock', 'adjust')),
  quantity    integer NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  FOREIGN KEY (sku, region) REFERENCES inventory (sku, region)
);
CREATE UNIQUE INDEX stock_movements_once_per_order ON stock_movements (order_id, generation, sku, region, kind)
  WHERE order_id IS NOT NULL;

-- Money movements at the gateway. One capture per order, whatever the generation, is the "never two
-- captures" guarantee on our side; the gateway idempotency key is the guarantee on theirs.
CREATE TABLE payments (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id         uuid NOT NULL REFERENCES orders (id),
  generation       integer NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('authorization', 'capture', 'void', 'refund')),
  status           text NOT NULL,
  idempotency_key  text NOT NULL UNIQUE,
  gateway_id       text,
  amount_cents     integer NOT NULL CHECK (amount_cents >= 0),
  decline_code     text,
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX payments_one_capture_per_order ON payments (order_id) WHERE kind = 'capture';
CREATE UNIQUE INDEX payments_once_per_generation ON payments (order_id, generation, kind) WHERE kind <> 'refund';

CREATE TABLE shipments (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id             uuid NOT NULL UNIQUE REFERENCES orders (id),
  carrier              text NOT NULL,
  carrier_shipment_id  text NOT NULL,
  tracking_number      text NOT NULL,
  label_url            text NOT NULL,
  status               text NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
  cancelled_at         timestamptz
);

CREATE TABLE tracking_events (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  shipment_id  bigint NOT NULL REFERENCES shipments (id),
  status       text NOT NULL,
  description  text NOT NULL,
  at           timestamptz NOT NULL,
  UNIQUE (shipment_id, status, at)
);

CREATE TABLE notifications (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id    uuid NOT NULL REFERENCES orders (id),
  kind        text NOT NULL,
  channel     text NOT NULL,
  recipient   text NOT NULL,
  subject     text NOT NULL,
  body        text NOT NULL,
  sent_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (order_id, kind)
);

-- Compensations already carried out, so that running them again (a retried dead letter, a cancellation
-- racing a failure) does nothing twice.
CREATE TABLE compensations (
  order_id    uuid NOT NULL REFERENCES orders (id),
  generation  integer NOT NULL,
  step        text NOT NULL,
  outcome     text NOT NULL CHECK (outcome IN ('done', 'failed')),
  detail      text,
  updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (order_id, generation, step)
);

-- Jobs that failed for good, for operators: what failed, why, and what was done about it. order_id is
-- text, not a reference: a poison job may carry an id that is no order at all.
CREATE TABLE dead_letters (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  order_id       text NOT NULL,
  generation     integer NOT NULL,
  step           text NOT NULL,
  error_code     text NOT NULL,
  error_message  text NOT NULL,
  attempts       integer NOT NULL,
  payload        jsonb NOT NULL,
  -- retry_scheduled: the order will be retried (retry_at, tries so far in retries); parked: nothing will
  -- happen without an operator; compensation_failed: undoing an effect keeps failing; then replayed or
  -- discarded by an operator, or resolved when it needed nothing more.
  status         text NOT NULL CHECK (status IN ('received', 'retry_scheduled', 'parked', 'compensation_failed',
                   'resolved', 'replayed', 'discarded')),
  retries        integer NOT NULL DEFAULT 0,
  retry_at       timestamptz,
  note           text,
  created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  UNIQUE (order_id, generation, step)
);
CREATE INDEX dead_letters_open ON dead_letters (status, created_at);

-- Idempotency-Key of POST requests, scoped to the API key that sent it.
CREATE TABLE idempotency_keys (
  api_key_id       bigint NOT NULL REFERENCES api_keys (id),
  key              text NOT NULL,
  request_hash     text NOT NULL,
  state            text NOT NULL CHECK (state IN ('in_flight', 'done')),
  response_status  integer,
  response_body    jsonb,
  locked_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (api_key_id, key)
);
