-- sharehub on PostgreSQL: the first schema. Released migrations are never
-- edited; changes come as new files.
--
-- Types: ids are TEXT; times are BIGINT unix microseconds (as on SQLite);
-- record data is TEXT holding the exact JSON the hub wrote (jsonb would
-- reorder keys), read as data::jsonb where a query needs its fields.
--
-- Row-level security is a second wall behind the store's own WHERE clauses:
-- the tenant tables show only the rows of the organization named by
-- set_config('sharehub.org_id', ..., true) in the current transaction.
-- FORCE applies the policies to the tables' owner as well; only superusers
-- and BYPASSRLS roles pass through, so the hub must not connect as one.

-- Customer organizations (tenants). last_seq numbers their change log; a
-- write transaction locks its organization's row until it commits.
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    last_seq    BIGINT NOT NULL DEFAULT 0
);

-- Applications registered on the developer platform.
CREATE TABLE apps (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    provider          TEXT NOT NULL UNIQUE,
    api_key           TEXT NOT NULL,  -- kept readable: webhooks send it back (HTTP Basic), as Connec! did
    webhook_secret    TEXT NOT NULL,
    notification_url  TEXT,
    endpoint_disabled TEXT,           -- why deliveries are stopped, NULL when they run
    created_at        BIGINT NOT NULL
);

-- What each app reads, writes and wants webhooks for.
CREATE TABLE app_entities (
    app_id     TEXT NOT NULL REFERENCES apps(id),
    entity     TEXT NOT NULL,
    can_read   BOOLEAN NOT NULL,
    can_write  BOOLEAN NOT NULL,
    subscribed BOOLEAN NOT NULL,
    PRIMARY KEY (app_id, entity)
);

-- An app installed in an organization.
CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    app_id      TEXT NOT NULL REFERENCES apps(id),
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    realm       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (app_id, org_id)
);

-- One row per business object. data holds the fields without the meta
-- fields; references inside it are hub ids. Ids collate byte-wise, as
-- $filter compares them.
CREATE TABLE records (
    org_id       TEXT NOT NULL,
    id           TEXT COLLATE "C" NOT NULL,
    entity       TEXT NOT NULL,
    data         TEXT NOT NULL,
    version      BIGINT NOT NULL,
    content_hash BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    archived     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (org_id, id)
);
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
);
CREATE INDEX id_links_by_record ON id_links (org_id, record_id);

-- The change log: one row per committed change, seq dense per organization
-- and in commit order (taken from orgs.last_seq under the row lock).
CREATE TABLE changes (
    org_id      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    entity      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    version     BIGINT NOT NULL,
    origin_app  TEXT,
    kind        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    PRIMARY KEY (org_id, seq)
);

-- Per app and organization: the last change delivered by webhook.
CREATE TABLE delivery_cursors (
    app_id        TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    delivered_seq BIGINT NOT NULL,
    PRIMARY KEY (app_id, org_id)
);

-- The batch an app's worker is delivering. Kept until a 2xx so that a retry,
-- even after a restart, sends the same webhook-id and the same body.
CREATE TABLE pending_batches (
    app_id          TEXT PRIMARY KEY,
    webhook_id      TEXT NOT NULL,
    body            BYTEA NOT NULL,
    ranges          TEXT NOT NULL,   -- JSON [{"org_id", "to_seq"}]: cursors after a 2xx
    records         TEXT NOT NULL,   -- JSON [{"org_id", "entity", "id"}]: what the body holds
    record_count    BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_error      TEXT
);

-- Every attempt to deliver a batch, for the delivery log.
CREATE TABLE delivery_attempts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    app_id       TEXT NOT NULL,
    webhook_id   TEXT NOT NULL,
    attempt      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    status       INTEGER,
    outcome      TEXT NOT NULL,      -- delivered | failed | gone
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    record_count BIGINT NOT NULL
);
CREATE INDEX delivery_attempts_by_app ON delivery_attempts (app_id, id);

-- Batches refused until the last retry: kept for resending by hand.
CREATE TABLE dead_letters (
    webhook_id   TEXT PRIMARY KEY,
    app_id       TEXT NOT NULL,
    body         BYTEA NOT NULL,
    records      TEXT NOT NULL,
    record_count BIGINT NOT NULL,
    attempts     BIGINT NOT NULL,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    resend_requested_at BIGINT,      -- an administrator asked for a resend
    resent_at    BIGINT
);
CREATE INDEX dead_letters_by_app ON dead_letters (app_id, created_at);

-- Answers replayed for a repeated Idempotency-Key.
CREATE TABLE idempotency_keys (
    app_id       TEXT NOT NULL,
    key          TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (app_id, key)
);

-- The tenant wall. current_setting(..., true) is NULL when unset, and a
-- comparison with NULL selects nothing: a transaction that forgot to name
-- its organization sees no tenant rows and cannot write any.
ALTER TABLE records ENABLE ROW LEVEL SECURITY;
ALTER TABLE records FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON records
    USING (org_id = current_setting('sharehub.org_id', true));

ALTER TABLE id_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE id_links FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON id_links
    USING (org_id = current_setting('sharehub.org_id', true));

ALTER TABLE changes ENABLE ROW LEVEL SECURITY;
ALTER TABLE changes FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON changes
    USING (org_id = current_setting('sharehub.org_id', true));

-- A delivery worker reads all cursors of its app at once (they hold seqs,
-- no business data), so naming the app is enough here.
ALTER TABLE delivery_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE delivery_cursors FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON delivery_cursors
    USING (org_id = current_setting('sharehub.org_id', true)
           OR app_id = current_setting('sharehub.app_id', true));
