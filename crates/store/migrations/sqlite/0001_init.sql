-- sharehub on SQLite: the first schema. Released migrations are never edited;
-- changes come as new files.

-- Customer organizations (tenants).
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- Applications registered on the developer platform.
CREATE TABLE apps (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    provider          TEXT NOT NULL UNIQUE,
    api_key           TEXT NOT NULL,  -- kept readable: webhooks send it back (HTTP Basic), as Connec! did
    webhook_secret    TEXT NOT NULL,
    notification_url  TEXT,
    endpoint_disabled TEXT,           -- why deliveries are stopped, NULL when they run
    created_at        INTEGER NOT NULL
) STRICT;

-- What each app reads, writes and wants webhooks for.
CREATE TABLE app_entities (
    app_id     TEXT NOT NULL REFERENCES apps(id),
    entity     TEXT NOT NULL,
    can_read   INTEGER NOT NULL,
    can_write  INTEGER NOT NULL,
    subscribed INTEGER NOT NULL,
    PRIMARY KEY (app_id, entity)
) STRICT;

-- An app installed in an organization.
CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES apps(id),
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    realm       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (app_id, org_id)
) STRICT;

-- One row per business object. data holds the fields without the meta
-- fields; references inside it are hub ids.
CREATE TABLE records (
    org_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    entity       TEXT NOT NULL,
    data         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    content_hash BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    archived     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX records_by_entity ON records (org_id, entity, archived, created_at, id);

-- Each app's own id of a record, per realm (its account in the organization).
CREATE TABLE id_links (
    org_id      TEXT NOT NULL,
    entity      TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    realm       TEXT NOT NULL,
    external_id TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    PRIMARY KEY (org_id, entity, app_id, realm, external_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX id_links_by_record ON id_links (org_id, record_id);

-- The change log: one row per committed change, seq dense per organization
-- (numbered by the one writer as the last seq + 1).
CREATE TABLE changes (
    org_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    entity      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    origin_app  TEXT,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (org_id, seq)
) STRICT, WITHOUT ROWID;

-- Per app and organization: the last change delivered by webhook.
CREATE TABLE delivery_cursors (
    app_id        TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    delivered_seq INTEGER NOT NULL,
    PRIMARY KEY (app_id, org_id)
) STRICT, WITHOUT ROWID;

-- The batch an app's worker is delivering. Kept until a 2xx so that a retry,
-- even after a restart, sends the same webhook-id and the same body.
CREATE TABLE pending_batches (
    app_id          TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL,
    body            BLOB NOT NULL,
    ranges          TEXT NOT NULL,   -- JSON [{"org_id", "to_seq"}]: cursors after a 2xx
    records         TEXT NOT NULL,   -- JSON [{"org_id", "entity", "id"}]: what the body holds
    record_count    INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    last_error      TEXT
) STRICT;

-- Every attempt to deliver a batch, for the delivery log.
CREATE TABLE delivery_attempts (
    id           INTEGER PRIMARY KEY,
    app_id       TEXT NOT NULL,
    webhook_id   TEXT NOT NULL,
    attempt      INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    status       INTEGER,
    outcome      TEXT NOT NULL,      -- delivered | failed | gone
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    record_count INTEGER NOT NULL
) STRICT;
CREATE INDEX delivery_attempts_by_app ON delivery_attempts (app_id, id);

-- Batches refused until the last retry: kept for resending by hand.
CREATE TABLE dead_letters (
    webhook_id   TEXT PRIMARY KEY,
    app_id       TEXT NOT NULL,
    body         BLOB NOT NULL,
    records      TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    resend_requested_at INTEGER,     -- an administrator asked for a resend
    resent_at    INTEGER
) STRICT;

-- Answers replayed for a repeated Idempotency-Key.
CREATE TABLE idempotency_keys (
    app_id       TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (app_id, key)
) STRICT;
