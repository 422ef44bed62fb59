-- A batch of step commits (sql/group-commit.ts) closes its steps together. Until now each call wrote its
-- own ledger row, status change and history row: five statements per step (the ledger insert, then
-- move_order's lock, update and history insert, and the array it was called with). PostgreSQL pays a
-- fixed price for each statement (executor start, the table's CHECKs and partial index predicates read
-- and prepared again, locks looked up). Now each call stages its close and close_steps writes the
-- closes of the whole batch in four statements whatever its size (five when a step after fulfilment,
-- notify, is among them). Measured: `npm run bench` (PostgreSQL 18 with pg_stat_statements), 78 nested
-- statements per order instead of 108 and 3.7-4.0 ms of PostgreSQL CPU per order instead of 4.2-4.4;
-- on PostgreSQL 15 without pg_stat_statements, 10,000 steps in batches of eight cost the backend 5%
-- less CPU, and a step committed alone about 50 us more (its close is a function call of its own).
--
-- The per-step functions keep their bodies under new names (stage_*): they lock the order row, check
-- the step may record its success, write the step's effect, and end with step_close, which now only
-- says what to close. The old names stay, for the workers of the previous version that still run while
-- the new ones start (a rolling upgrade): each stages its step and closes it alone, as it did before.
-- A later migration can drop them once no such worker is left.
ALTER FUNCTION finish_step(jsonb, jsonb) RENAME TO stage_step;
ALTER FUNCTION finish_validate(jsonb) RENAME TO stage_validate;
ALTER FUNCTION finish_check_inventory(jsonb) RENAME TO stage_check_inventory;
ALTER FUNCTION finish_reserve(jsonb) RENAME TO stage_reserve;
ALTER FUNCTION finish_payment(jsonb, jsonb, jsonb) RENAME TO stage_payment;
ALTER FUNCTION finish_ship(jsonb, jsonb, jsonb) RENAME TO stage_ship;
ALTER FUNCTION finish_notify(jsonb, jsonb, jsonb) RENAME TO stage_notify;

-- The last word of every stage_* function when the step may record its success: what close_steps is
-- to write for it.
CREATE OR REPLACE FUNCTION step_close(p_run jsonb, p_output jsonb) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('state', 'close', 'run', p_run, 'output', p_output);
$$;

-- Writes the closes among a batch's staged answers (in the batch's order, each from a stage_* call of
-- the same statement, so their order rows are locked) and answers for every call, in the same order: a
-- close becomes {state: done, output, moved}; any other answer stands as staged. For each close: the
-- succeeded ledger row, and the order moved to the run's status when its status is one of the run's
-- `from` (with its history row), otherwise only touched (the reconciler tells a quiet order from a
-- stuck one by updated_at); a step after fulfilment also resolves its parked dead letter. Two closes
-- of one order (the parallel pair in one batch) move it one after the other, in the batch's order.
CREATE FUNCTION close_steps(p_staged jsonb[]) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  v_status jsonb;
  v_staged jsonb;
  v_run jsonb;
  v_order text;
  v_from text;
  v_moved boolean;
  v_answers jsonb := '[]';
  v_attempts jsonb := '[]';
  v_history jsonb := '[]';
  v_resolved jsonb := '[]';
  v_touched jsonb := '{}';
BEGIN
  SELECT jsonb_object_agg(id::text, status) INTO v_status FROM orders
  WHERE id = ANY(ARRAY(SELECT (s -> 'run' ->> 'orderId')::uuid FROM unnest(p_staged) s WHERE s ->> 'state' = 'close'));
  FOREACH v_staged IN ARRAY p_staged LOOP
    IF v_staged ->> 'state' IS DISTINCT FROM 'close' THEN
      v_answers := v_answers || jsonb_build_array(v_staged);
      CONTINUE;
    END IF;
    v_run := v_staged -> 'run';
    v_order := (v_run ->> 'orderId')::uuid::text;
    v_from := v_status ->> v_order;
    v_moved := v_run ->> 'status' IS NOT NULL AND v_from IS NOT NULL AND (v_run -> 'from') ? v_from;
    v_attempts := v_attempts || jsonb_build_array(jsonb_build_object('run', v_run, 'output', v_staged -> 'output'));
    IF v_moved THEN
      v_history := v_history || jsonb_build_array(jsonb_build_object(
        'order_id', v_order, 'from_status', v_from, 'to_status', v_run ->> 'status',
        'actor', 'worker:' || (v_run ->> 'step'), 'reason', (v_run ->> 'step') || ' succeeded'));
      v_status := jsonb_set(v_status, ARRAY[v_order], to_jsonb(v_run ->> 'status'));
    END IF;
    v_touched := jsonb_set(v_touched, ARRAY[v_order], to_jsonb(v_moved OR coalesce((v_touched ->> v_order)::boolean, false)));
    IF (v_run ->> 'afterFulfilment')::boolean IS TRUE THEN
      v_resolved := v_resolved || jsonb_build_array(v_run);
    END IF;
    v_answers := v_answers || jsonb_build_array(jsonb_build_object('state', 'done', 'output', v_staged -> 'output',
                                                                  'moved', v_moved));
  END LOOP;
  IF v_attempts = '[]' THEN
    RETURN v_answers;
  END IF;

  INSERT INTO step_attempts (order_id, generation, step, attempt, worker, started_at, finished_at, outcome, output)
  SELECT (a -> 'run' ->> 'orderId')::uuid, (a -> 'run' ->> 'generation')::integer, a -> 'run' ->> 'step',
         (a -> 'run' ->> 'attempt')::integer, a -> 'run' ->> 'worker',
         to_timestamp((a -> 'run' ->> 'startedAt')::double precision / 1000), clock_timestamp(), 'succeeded',
         a -> 'output'
  FROM jsonb_array_elements(v_attempts) a;

  UPDATE orders o SET
    status = v_status ->> o.id::text,
    updated_at = now(),
    failure_reason = CASE WHEN (v_touched ->> o.id::text)::boolean THEN NULL ELSE o.failure_reason END,
    failed_step = CASE WHEN (v_touched ->> o.id::text)::boolean THEN NULL ELSE o.failed_step END
  WHERE o.id = ANY(ARRAY(SELECT k::uuid FROM jsonb_object_keys(v_touched) k));

  IF v_history <> '[]' THEN
    INSERT INTO order_history (order_id, from_status, to_status, actor, reason)
    SELECT (h ->> 'order_id')::uuid, h ->> 'from_status', h ->> 'to_status', h ->> 'actor', h ->> 'reason'
    FROM jsonb_array_elements(v_history) WITH ORDINALITY AS e(h, n)
    ORDER BY e.n;
  END IF;

  IF v_resolved <> '[]' THEN
    UPDATE dead_letters d SET status = 'resolved', note = 'the step succeeded when replayed',
      updated_at = clock_timestamp()
    FROM jsonb_array_elements(v_resolved) r
    WHERE d.order_id = ANY(ARRAY(SELECT (e ->> 'orderId')::uuid::text FROM jsonb_array_elements(v_resolved) e))
      AND d.order_id = (r ->> 'orderId')::uuid::text AND d.generation = (r ->> 'generation')::integer
      AND d.step = r ->> 'step' AND d.kind = 'step' AND d.status IN ('parked', 'replayed');
  END IF;
  RETURN v_answers;
END;
$$;

-- Every row close_steps reads or changes is found by key: a batch's few orders among all of them. Its
-- plans are made once per connection and kept until the table is analyzed again, and to the planner
-- `id = ANY(...)` is an array of unknown length, ten rows: on a small table (a new deployment, a test
-- database) reading it whole costs less, and that plan would read every order for each batch as the
-- table grows (EXPLAIN of the generic plan: a sequential scan on an empty orders table, an index scan
-- on one of 40,000 rows).
ALTER FUNCTION close_steps(jsonb[]) SET enable_seqscan = off;

-- The previous version's names (see the top of this file).
CREATE FUNCTION finish_step(p_run jsonb, p_output jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT close_steps(ARRAY[stage_step(p_run, p_output)]) -> 0;
$$;
CREATE FUNCTION finish_validate(p_run jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT close_steps(ARRAY[stage_validate(p_run)]) -> 0;
$$;
CREATE FUNCTION finish_check_inventory(p_run jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT close_steps(ARRAY[stage_check_inventory(p_run)]) -> 0;
$$;
CREATE FUNCTION finish_reserve(p_run jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT close_steps(ARRAY[stage_reserve(p_run)]) -> 0;
$$;
CREATE FUNCTION finish_payment(p_run jsonb, p_output jsonb, p_payment jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT close_steps(ARRAY[stage_payment(p_run, p_output, p_payment)]) -> 0;
$$;
CREATE FUNCTION finish_ship(p_run jsonb, p_output jsonb, p_shipment jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT close_steps(ARRAY[stage_ship(p_run, p_output, p_shipment)]) -> 0;
$$;
CREATE FUNCTION finish_notify(p_run jsonb, p_output jsonb, p_notification jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT close_steps(ARRAY[stage_notify(p_run, p_output, p_notification)]) -> 0;
$$;
