-- Delivery leases: which hub process delivers an app's webhooks.
--
-- Several processes share one database; only the holder of an app's lease
-- sends its batches, so a receiver never gets two processes' batches at once
-- and per-record order holds. A lease expires unless renewed, so a process
-- that died hands its apps over after at most one lease length. Times are
-- BIGINT unix microseconds of the database's clock (one clock for every
-- process, whatever their hosts' clocks say).
CREATE TABLE delivery_leases (
    app_id      TEXT PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
