-- Steps after fulfilment (notify): once the goods have shipped the order is fulfilled, so such a step
-- that fails for good completes the order anyway and parks a dead letter for the step alone, instead
-- of failing the order and undoing its capture and label. queues/order-workflow.ts declares which steps
-- these are (afterFulfilment); the runner passes it in the run as `afterFulfilment`.

-- kind: 'order', the order failed and its effects are undone (replay retries the order); 'step', the
-- order completed and only the step failed (replay runs that step again, alone).
ALTER TABLE dead_letters ADD COLUMN kind text NOT NULL DEFAULT 'order' CHECK (kind IN ('order', 'step'));

-- As in 003, plus: a step after fulfilment that succeeds (a replay) resolves its parked dead letter in
-- the same transaction as its ledger row.
CREATE OR REPLACE FUNCTION step_close(p_run jsonb, p_output jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
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
  IF (p_run ->> 'afterFulfilment')::boolean IS TRUE THEN
    UPDATE dead_letters SET status = 'resolved', note = 'the step succeeded when replayed', updated_at = clock_timestamp()
    WHERE order_id = v_order::text AND generation = (p_run ->> 'generation')::integer AND step = p_run ->> 'step'
      AND kind = 'step' AND status IN ('parked', 'replayed');
  END IF;
  RETURN jsonb_build_object('state', 'done', 'output', p_output, 'moved', v_moved);
END;
$$;

-- As in 003, plus the final failure of a step after fulfilment: p_from are then the statuses the
-- step's own status is legal from, the order moves there (COMPLETED: it did ship) with its history row,
-- and the step's dead letter is written parked, kind 'step', for an operator to replay; a replay that
-- fails for good again parks the same letter again. Nothing is undone, so no handler job is needed:
-- such a call returns parked, never endedOrder.
CREATE OR REPLACE FUNCTION step_fail(p_run jsonb, p_error jsonb, p_final boolean, p_from text[]) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  v_order uuid;
  v_generation integer := (p_run ->> 'generation')::integer;
  v_current integer;
  v_status text;
  v_ended boolean := false;
  v_parked boolean := false;
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
  IF p_final AND v_order IS NOT NULL AND v_current = v_generation
     AND (p_run ->> 'afterFulfilment')::boolean IS TRUE THEN
    PERFORM move_order(v_order, p_run ->> 'status', p_from, 'worker:' || (p_run ->> 'step'),
                       (p_run ->> 'step') || ' failed for good after shipment (parked): ' || (p_error ->> 'message'));
    SELECT status INTO v_status FROM orders WHERE id = v_order;
    IF v_status NOT IN ('FAILED', 'CANCELLED') THEN
      INSERT INTO dead_letters (order_id, generation, step, error_code, error_message, attempts, payload, status,
                                kind, note)
      VALUES (p_run ->> 'orderId', v_generation, p_run ->> 'step', p_error ->> 'code', p_error ->> 'message',
              (p_run ->> 'attempt')::integer, coalesce(p_run -> 'payload', 'null'), 'parked', 'step',
              'the order shipped and is completed; replay to run ' || (p_run ->> 'step') || ' again')
      ON CONFLICT (order_id, generation, step) DO UPDATE SET
        status = 'parked', error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message,
        attempts = EXCLUDED.attempts, note = 'the replay failed for good too; replay again or discard',
        updated_at = clock_timestamp()
      WHERE dead_letters.kind = 'step' AND dead_letters.status = 'replayed';
      v_parked := true;
    END IF;
  ELSIF p_final AND v_order IS NOT NULL AND v_current = v_generation THEN
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
  RETURN jsonb_build_object('endedOrder', v_ended, 'parked', v_parked);
END;
$$;
