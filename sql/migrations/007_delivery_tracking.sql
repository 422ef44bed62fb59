-- Delivery tracking: orderflow polls the carrier for the events of every shipment still on its way
-- (workers/maintenance.ts, track-shipments). A return window starts at delivery, so delivered_at is
-- the delivered event's time as the carrier reports it; tracked_at is when the shipment was last
-- polled, so each run takes the ones polled least recently first.
ALTER TABLE shipments ADD COLUMN delivered_at timestamptz;
ALTER TABLE shipments ADD COLUMN tracked_at timestamptz;

-- The poll's queue: only shipments still on their way, least recently polled (never polled) first.
CREATE INDEX shipments_to_track ON shipments (tracked_at NULLS FIRST, id)
  WHERE delivered_at IS NULL AND cancelled_at IS NULL;
