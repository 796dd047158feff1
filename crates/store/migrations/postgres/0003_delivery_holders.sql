-- The hub processes that deliver webhooks, so that they share the apps.
--
-- Each process announces itself every poll with an expiry (the same length
-- as a delivery lease) and retires on shutdown. A process takes a free app's
-- lease only while it holds fewer than its share (the leased apps divided by
-- the live processes, rounded up), and gives an idle app up when it holds
-- more; otherwise whoever starts first would deliver every app. Times are
-- BIGINT unix microseconds of the database's clock.
CREATE TABLE delivery_holders (
    holder      TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
