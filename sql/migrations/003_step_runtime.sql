-- The step runtime's writes, one call per step (see workers/run-step.ts). A step's database work (its
-- effect, its ledger row, the order's status change and history row) was a dozen statements in two
-- transactions; here it is one function call, so one round trip and one commit.
--
-- Lock order, everywhere: the order's row first, then inventory rows in SKU order. A step that inserted
-- its ledger or payment row first took a share lock on the order through the foreign key, and the
-- parallel step doing the same then asking for the row FOR UPDATE deadlocked with it.
--
-- A run is passed as jsonb: {orderId, generation, step, attempt, worker, startedAt (ms since epoch),
-- status (the status a success moves the order to, or null), from (the statuses that move is legal
-- from; the state machine lives in domain/order-status.ts, not here)}.

-- One stock change of one SKU and its movement row (the inventory event). An order's movement is made
-- once: it is looked for under the inventory row's lock. Returns 'moved', 'done' (made before) or
-- 'short' (a reservation finding too little stock, or a SKU not stocked in the region).
CREATE FUNCTION move_stock(p_kind text, p_sku text, p_region text, p_quantity integer, p_order uuid,
                           p_generation integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_available integer;
BEGIN
  PERFORM 1 FROM inventory WHERE sku = p_sku AND region = p_region FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'short';
  END IF;
  IF p_order IS NOT NULL AND EXISTS (
    SELECT 1 FROM stock_movements
    WHERE order_id = p_order AND generation = p_generation AND sku = p_sku AND region = p_region AND kind = p_kind
  ) THEN
    RETURN 'done';
  END IF;
  UPDATE inventory SET
    on_hand = on_hand + CASE WHEN p_kind IN ('restock', 'adjust') THEN p_quantity ELSE 0 END,
    available = available + CASE WHEN p_kind IN ('restock', 'adjust', 'release') THEN p_quantity
                                 WHEN p_kind = 'reserve' THEN -p_quantity ELSE 0 END,
    reserved = reserved + CASE WHEN p_kind IN ('reserve', 'unship') THEN p_quantity
                               WHEN p_kind IN ('release', 'ship') THEN -p_quantity ELSE 0 END,
    shipped = shipped + CASE WHEN p_kind = 'ship' THEN p_quantity WHEN p_kind = 'unship' THEN -p_quantity ELSE 0 END,
    updated_at = now()
  WHERE sku = p_sku AND region = p_region AND (p_kind <> 'reserve' OR available >= p_quantity)
  RETURNING available INTO v_available;
  IF NOT FOUND THEN
    RETURN 'short';
  END IF;
  INSERT INTO stock_movements (order_id, generation, sku, region, kind, quantity, available_after)
  VALUES (p_order, p_generation, p_sku, p_region, p_kind, p_quantity, v_available);
  RETURN 'moved';
END;
$$;

-- Moves an order to p_to when its status is one of p_from, with the history row; otherwise only marks
-- it touched (the reconciler tells a quiet order from a stuck one by updated_at). Locks the row.
CREATE FUNCTION move_order(p_order uuid, p_to text, p_from text[], p_actor text, p_reason text,
                           p_failure_reason text DEFAULT NULL, p_failed_step text DEFAULT NULL)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  v_from text;
BEGIN
  SELECT status INTO v_from FROM orders WHERE id = p_order FOR UPDATE;
  IF p_to IS NULL OR v_from IS NULL OR NOT (v_from = ANY (p_from)) THEN
    UPDATE orders SET updated_at = now() WHERE id = p_order;
    RETURN false;
  END IF;
  UPDATE orders SET status = p_to, updated_at = now(), failure_reason = p_failure_reason, failed_step = p_failed_step
  WHERE id = p_order;
  INSERT INTO order_history (order_id, from_status, to_status, actor, reason)
  VALUES (p_order, v_from, p_to, p_actor, p_reason);
  RETURN true;
END;
$$;

-- What the steps know of an order: it does not change once placed (only its status and generation do).
CREATE FUNCTION order_snapshot(p_order uuid) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'id', o.id, 'customerId', o.customer_id, 'customerEmail', c.email, 'region', o.region,
    'currency', o.currency, 'totalCents', o.total_cents, 'shippingAddress', o.shipping_address,
    'paymentToken', o.payment_token,
    'items', (SELECT jsonb_agg(jsonb_build_object('sku', i.sku, 'name', i.name, 'quantity', i.quantity,
                                                  'unitPriceCents', i.unit_price_cents) ORDER BY i.sku)
              FROM order_items i WHERE i.order_id = o.id))
  FROM orders o JOIN customers c ON c.id = o.customer_id
  WHERE o.id = p_order;
$$;

-- Opens a step's commit: locks the order row, then says whether the step may record its success.
-- NULL: go on. Otherwise the answer to return: the order is gone or has ended (failed, cancelled, or
-- retried as a newer generation), or an earlier attempt of the step succeeded (its output stands).
CREATE FUNCTION step_open(p_run jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_order uuid := (p_run ->> 'orderId')::uuid;
  v_generation integer := (p_run ->> 'generation')::integer;
  v_status text;
  v_current integer;
  v_output jsonb;
BEGIN
  SELECT status, generation INTO v_status, v_current FROM orders WHERE id = v_order FOR UPDATE;
  IF NOT FOUND THEN
    RETURN jsonb_build_object('state', 'missing');
  END IF;
  IF v_current <> v_generation OR v_status IN ('FAILED', 'CANCELLED') THEN
    RETURN jsonb_build_object('state', 'ended', 'status', v_status);
  END IF;
  SELECT output INTO v_output FROM step_attempts
  WHERE order_id = v_order AND generation = v_generation AND step = p_run ->> 'step' AND outcome = 'succeeded';
  IF FOUND THEN
    INSERT INTO step_attempts (order_id, generation, step, attempt, worker, started_at, finished_at, outcome,
                               error_code, error_message)
    VALUES (v_order, v_generation, p_run ->> 'step', (p_run ->> 'attempt')::integer, p_run ->> 'worker',
            to_timestamp((p_run ->> 'startedAt')::double precision / 1000), clock_timestamp(), 'skipped',
            'duplicate', 'another attempt finished first');
    RETURN jsonb_build_object('state', 'done', 'output', v_output, 'moved', false);
  END IF;
  RETURN NULL;
END;
$$;

-- Closes a step's commit: the succeeded ledger row and the order's status change.
CREATE FUNCTION step_close(p_run jsonb, p_output jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_order uuid := (p_run ->> 'orderId')::uuid;
  v_moved boolean;
BEGIN
  INSERT INTO step_attempts (order_id, generation, step, attempt, worker, started_at, finished_at, outcome, output)
  VALUES (v_order, (p_run ->> 'generation')::integer, p_run ->> 'step', (p_run ->> 'attempt')::integer,
          p_run ->> 'worker', to_timestamp((p_run ->> 'startedAt')::double precision / 1000), clock_timestamp(),
          'succeeded', p_output);
  v_moved := move_order(v_order, p_run ->> 'status', ARRAY(SELECT jsonb_array_elements_text(p_run -> 'from')),
                        'worker:' || (p_run ->> 'step'), (p_run ->> 'step') || ' succeeded');
  RETURN jsonb_build_object('state', 'done', 'output', p_output, 'moved', v_moved);
END;
$$;

-- A step with no writes of its own.
CREATE FUNCTION finish_step(p_run jsonb, p_output jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  RETURN coalesce(step_open(p_run), step_close(p_run, p_output));
END;
$$;

-- validate: the order against the catalog as it is now (a SKU withdrawn, a region no longer served,
-- lines that do not add up), since it may have waited in the queue.
CREATE FUNCTION finish_validate(p_run jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_order uuid := (p_run ->> 'orderId')::uuid;
  v_answer jsonb := step_open(p_run);
  v_problems jsonb;
  v_items integer;
  v_total integer;
BEGIN
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  SELECT jsonb_agg(jsonb_build_object('sku', i.sku, 'problem',
           CASE WHEN c.sku IS NULL THEN 'no longer in the catalog' ELSE 'not sold in region ' || o.region END)
           ORDER BY i.sku)
  INTO v_problems
  FROM order_items i JOIN orders o ON o.id = i.order_id
  LEFT JOIN catalog c ON c.sku = i.sku
  LEFT JOIN inventory s ON s.sku = i.sku AND s.region = o.region
  WHERE i.order_id = v_order AND (c.sku IS NULL OR s.sku IS NULL);
  SELECT count(*), sum(quantity * unit_price_cents) INTO v_items, v_total FROM order_items WHERE order_id = v_order;
  IF v_total IS DISTINCT FROM (SELECT total_cents FROM orders WHERE id = v_order) THEN
    v_problems := coalesce(v_problems, '[]'::jsonb)
      || jsonb_build_object('sku', '*', 'problem', 'order total does not match its lines');
  END IF;
  IF v_problems IS NOT NULL THEN
    RETURN jsonb_build_object('state', 'rejected', 'code', 'invalid_order', 'details', v_problems);
  END IF;
  RETURN step_close(p_run, jsonb_build_object('items', v_items, 'totalCents', v_total));
END;
$$;

-- check-inventory: a read, not a reservation; it fails fast when the stock is plainly not there.
CREATE FUNCTION finish_check_inventory(p_run jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_answer jsonb := step_open(p_run);
  v_levels jsonb;
BEGIN
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  SELECT jsonb_agg(jsonb_build_object('sku', i.sku, 'requested', i.quantity, 'available', coalesce(s.available, 0))
                   ORDER BY i.sku)
  INTO v_levels
  FROM order_items i JOIN orders o ON o.id = i.order_id
  LEFT JOIN inventory s ON s.sku = i.sku AND s.region = o.region
  WHERE i.order_id = (p_run ->> 'orderId')::uuid;
  IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_levels) l WHERE (l ->> 'available')::int < (l ->> 'requested')::int) THEN
    RETURN jsonb_build_object('state', 'rejected', 'code', 'out_of_stock', 'details',
      (SELECT jsonb_agg(l) FROM jsonb_array_elements(v_levels) l WHERE (l ->> 'available')::int < (l ->> 'requested')::int));
  END IF;
  RETURN step_close(p_run, jsonb_build_object('levels', v_levels));
END;
$$;

-- authorize-payment and capture: the gateway's answer, recorded once (unique idempotency key; one
-- capture per order, one authorization per generation).
-- The money moved whatever the order's state: on an ended order the payment is still recorded (not the
-- step's success), so that the compensation and the reconciler find it and give it back.
CREATE FUNCTION finish_payment(p_run jsonb, p_output jsonb, p_payment jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_answer jsonb := step_open(p_run);
BEGIN
  IF v_answer IS NULL OR v_answer ->> 'state' = 'ended' THEN
    INSERT INTO payments (order_id, generation, kind, status, idempotency_key, gateway_id, amount_cents)
    VALUES ((p_run ->> 'orderId')::uuid, (p_run ->> 'generation')::integer, p_payment ->> 'kind',
            p_payment ->> 'status', p_payment ->> 'idempotencyKey', p_payment ->> 'gatewayId',
            (p_payment ->> 'amountCents')::integer)
    ON CONFLICT DO NOTHING;
  END IF;
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  RETURN step_close(p_run, p_output);
END;
$$;

-- reserve: every line or none. The inventory rows are locked in SKU order and checked before any moves,
-- so a short line leaves nothing reserved; the conditional UPDATE in move_stock and the CHECKs on the
-- table make oversell impossible whatever happens here.
CREATE FUNCTION finish_reserve(p_run jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_order uuid := (p_run ->> 'orderId')::uuid;
  v_generation integer := (p_run ->> 'generation')::integer;
  v_answer jsonb := step_open(p_run);
  v_short jsonb;
  v_line record;
BEGIN
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  PERFORM 1 FROM inventory s JOIN order_items i ON i.sku = s.sku JOIN orders o ON o.id = i.order_id AND o.region = s.region
  WHERE i.order_id = v_order ORDER BY s.sku FOR UPDATE OF s;
  SELECT jsonb_agg(jsonb_build_object('sku', i.sku, 'requested', i.quantity) ORDER BY i.sku) INTO v_short
  FROM order_items i JOIN orders o ON o.id = i.order_id
  LEFT JOIN inventory s ON s.sku = i.sku AND s.region = o.region
  WHERE i.order_id = v_order AND coalesce(s.available, 0) < i.quantity
    AND NOT EXISTS (SELECT 1 FROM stock_movements m WHERE m.order_id = v_order AND m.generation = v_generation
                      AND m.sku = i.sku AND m.kind = 'reserve');
  IF v_short IS NOT NULL THEN
    RETURN jsonb_build_object('state', 'rejected', 'code', 'out_of_stock', 'details', v_short);
  END IF;
  FOR v_line IN SELECT i.sku, o.region, i.quantity FROM order_items i JOIN orders o ON o.id = i.order_id
                WHERE i.order_id = v_order ORDER BY i.sku LOOP
    PERFORM move_stock('reserve', v_line.sku, v_line.region, v_line.quantity, v_order, v_generation);
  END LOOP;
  RETURN step_close(p_run, jsonb_build_object('lines', (SELECT count(*) FROM order_items WHERE order_id = v_order)));
END;
$$;

-- ship: the carrier's label and its tracking events, and the reserved units moved to shipped. Like a
-- payment, a label booked for an order that ended meanwhile is recorded, so that it gets cancelled.
CREATE FUNCTION finish_ship(p_run jsonb, p_output jsonb, p_shipment jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_order uuid := (p_run ->> 'orderId')::uuid;
  v_generation integer := (p_run ->> 'generation')::integer;
  v_answer jsonb := step_open(p_run);
  v_shipment bigint;
  v_line record;
BEGIN
  IF v_answer IS NOT NULL AND v_answer ->> 'state' <> 'ended' THEN
    RETURN v_answer;
  END IF;
  INSERT INTO shipments (order_id, carrier, carrier_shipment_id, tracking_number, label_url, status)
  VALUES (v_order, p_shipment ->> 'carrier', p_shipment ->> 'carrierShipmentId', p_shipment ->> 'trackingNumber',
          p_shipment ->> 'labelUrl', 'label_created')
  ON CONFLICT (order_id) DO UPDATE SET order_id = EXCLUDED.order_id
  RETURNING id INTO v_shipment;
  INSERT INTO tracking_events (shipment_id, status, description, at)
  SELECT v_shipment, e ->> 'status', e ->> 'description', (e ->> 'at')::timestamptz
  FROM jsonb_array_elements(coalesce(p_shipment -> 'events', '[]'::jsonb)) e
  ON CONFLICT DO NOTHING;
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  FOR v_line IN SELECT sku, region, quantity FROM stock_movements
                WHERE order_id = v_order AND generation = v_generation AND kind = 'reserve' ORDER BY sku LOOP
    PERFORM move_stock('ship', v_line.sku, v_line.region, v_line.quantity, v_order, v_generation);
  END LOOP;
  RETURN step_close(p_run, p_output);
END;
$$;

-- notify: the confirmation that was sent.
CREATE FUNCTION finish_notify(p_run jsonb, p_output jsonb, p_notification jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_answer jsonb := step_open(p_run);
BEGIN
  IF v_answer IS NOT NULL THEN
    RETURN v_answer;
  END IF;
  INSERT INTO notifications (order_id, kind, channel, recipient, subject, body)
  VALUES ((p_run ->> 'orderId')::uuid, p_notification ->> 'kind', p_notification ->> 'channel',
          p_notification ->> 'recipient', p_notification ->> 'subject', p_notification ->> 'body')
  ON CONFLICT (order_id, kind) DO NOTHING;
  RETURN step_close(p_run, p_output);
END;
$$;

-- A failed attempt: its ledger row and, when the failure is final and the order still in this
-- generation's progress, FAILED with its history row and the dead letter, all in this one transaction
-- (so a crash right after cannot lose the dead letter: the reconciler enqueues dead letters left
-- unhandled). p_from: the statuses FAILED is legal from. A job whose order does not exist (a poison
-- job) gets its dead letter too. Returns whether this call ended the order.
CREATE FUNCTION step_fail(p_run jsonb, p_error jsonb, p_final boolean, p_from text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_order uuid;
  v_generation integer := (p_run ->> 'generation')::integer;
  v_current integer;
  v_ended boolean := false;
BEGIN
  IF p_run ->> 'orderUuid' IS NOT NULL THEN
    SELECT id, generation INTO v_order, v_current FROM orders WHERE id = (p_run ->> 'orderUuid')::uuid FOR UPDATE;
  END IF;
  IF v_order IS NOT NULL THEN
    INSERT INTO step_attempts (order_id, generation, step, attempt, worker, started_at, finished_at, outcome,
                               error_code, error_message)
    VALUES (v_order, v_generation, p_run ->> 'step', (p_run ->> 'attempt')::integer, p_run ->> 'worker',
            to_timestamp((p_run ->> 'startedAt')::double precision / 1000), clock_timestamp(), 'failed',
            p_error ->> 'code', p_error ->> 'message');
  END IF;
  IF p_final AND v_order IS NOT NULL AND v_current = v_generation THEN
    v_ended := move_order(v_order, 'FAILED', p_from, 'worker:' || (p_run ->> 'step'), p_error ->> 'message',
                          p_error ->> 'code', p_run ->> 'step');
  ELSIF p_final AND v_order IS NULL THEN
    v_ended := true;
  ELSIF v_order IS NOT NULL THEN
    UPDATE orders SET updated_at = now() WHERE id = v_order;
  END IF;
  IF v_ended THEN
    INSERT INTO dead_letters (order_id, generation, step, error_code, error_message, attempts, payload, status)
    VALUES (p_run ->> 'orderId', coalesce(v_generation, 0), p_run ->> 'step', p_error ->> 'code',
            p_error ->> 'message', (p_run ->> 'attempt')::integer, coalesce(p_run -> 'payload', 'null'), 'received')
    ON CONFLICT (order_id, generation, step) DO NOTHING;
  END IF;
  RETURN jsonb_build_object('endedOrder', v_ended);
END;
$$;
