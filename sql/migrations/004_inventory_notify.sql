-- Wakes the outbox relay as soon as a stock movement commits, instead of leaving it to poll: every
-- statement that inserts stock_movements rows (move_stock is the one writer) notifies the
-- inventory_events channel. PostgreSQL delivers a notification only when its transaction commits, and
-- folds identical ones within a transaction, so a transaction that moves many SKUs sends one. The
-- payload is empty: the relay reads the rows themselves, so a notification lost (a relay not listening
-- at the time) costs only latency, never an event; its fallback poll publishes the row anyway.
CREATE FUNCTION notify_inventory_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('inventory_events', '');
  RETURN NULL;
END;
$$;

CREATE TRIGGER stock_movements_notify
  AFTER INSERT ON stock_movements
  FOR EACH STATEMENT EXECUTE FUNCTION notify_inventory_events();
