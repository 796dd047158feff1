//! The connector's own SQLite file: the id map (app id <-> hub id per
//! organization and entity), cursors, import progress, per-organization
//! status, failing records and the webhook ids already handled. Nothing here
//! is kept in memory only, so a restart loses nothing.

use jiff::Timestamp;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use crate::convert::format_timestamp;
use crate::error::Result;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS id_map (
    group_id TEXT NOT NULL, app_entity TEXT NOT NULL, app_id TEXT NOT NULL,
    hub_entity TEXT NOT NULL, hub_id TEXT NOT NULL,
    hub_version INTEGER NOT NULL DEFAULT 0, fingerprint TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (group_id, app_entity, hub_entity, app_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS id_map_by_hub ON id_map (group_id, hub_entity, hub_id);
CREATE TABLE IF NOT EXISTS cursors (
    group_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (group_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS org_status (
    group_id TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
    last_success TEXT, last_error TEXT, last_error_at TEXT
);
CREATE TABLE IF NOT EXISTS record_errors (
    group_id TEXT NOT NULL, side TEXT NOT NULL, entity TEXT NOT NULL, record_id TEXT NOT NULL,
    error TEXT NOT NULL, attempts INTEGER NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (group_id, side, entity, record_id)
);
CREATE TABLE IF NOT EXISTS webhooks_seen (webhook_id TEXT PRIMARY KEY, at TEXT NOT NULL);
"#;

/// One link of the id map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub app_entity: String,
    pub app_id: String,
    pub hub_entity: String,
    pub hub_id: String,
    /// The hub version last written or applied; older events are stale.
    pub hub_version: i64,
    /// [`crate::mapping::Target::fingerprint`] of what was last shared.
    pub fingerprint: String,
}

/// An organization's sync status, as the status endpoint and CLI show it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct OrgStatus {
    pub group_id: String,
    pub paused: bool,
    pub failures: i64,
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub failing_records: i64,
}

/// A record that failed to sync, with why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecordError {
    pub side: String,
    pub entity: String,
    pub record_id: String,
    pub error: String,
    pub attempts: i64,
}

/// The state database.
#[derive(Clone)]
pub struct State {
    /// Reads, several at a time.
    pool: SqlitePool,
    /// Writes, on one connection: concurrent writers on a SQLite file wait
    /// in its busy handler (sleeps of up to 100 ms), queued here they don't.
    writer: SqlitePool,
}

impl State {
    /// Opens (creating if needed) the state file at `path`.
    pub async fn open(path: &std::path::Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::raw_sql(SCHEMA).execute(&writer).await?;
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        Ok(Self { pool, writer })
    }

    pub async fn link_by_app(
        &self,
        group: &str,
        app_entity: &str,
        hub_entity: &str,
        app_id: &str,
    ) -> Result<Option<Link>> {
        let row =
            sqlx::query("SELECT * FROM id_map WHERE group_id = ? AND app_entity = ? AND hub_entity = ? AND app_id = ?")
                .bind(group)
                .bind(app_entity)
                .bind(hub_entity)
                .bind(app_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| link(&r)))
    }

    /// Every app record linked to one hub record (several customers may share
    /// one company).
    pub async fn links_by_hub(&self, group: &str, hub_entity: &str, hub_id: &str) -> Result<Vec<Link>> {
        // Named: without statistics SQLite prefers the primary key's
        // `group_id` prefix, a scan of the whole organization.
        let sql = "SELECT * FROM id_map INDEXED BY id_map_by_hub WHERE group_id = ? AND hub_entity = ? AND hub_id = ?";
        let rows = sqlx::query(sql).bind(group).bind(hub_entity).bind(hub_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(link).collect())
    }

    pub async fn save_link(&self, group: &str, link: &Link) -> Result<()> {
        sqlx::query(
            "INSERT INTO id_map (group_id, app_entity, app_id, hub_entity, hub_id, hub_version, fingerprint)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (group_id, app_entity, hub_entity, app_id) DO UPDATE SET
               hub_id = excluded.hub_id, hub_version = max(hub_version, excluded.hub_version),
               fingerprint = excluded.fingerprint",
        )
        .bind(group)
        .bind(&link.app_entity)
        .bind(&link.app_id)
        .bind(&link.hub_entity)
        .bind(&link.hub_id)
        .bind(link.hub_version)
        .bind(&link.fingerprint)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn count_links(&self, group: &str, hub_entity: &str) -> Result<i64> {
        let row = sqlx::query("SELECT count(*) FROM id_map WHERE group_id = ? AND hub_entity = ?")
            .bind(group)
            .bind(hub_entity)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get(0))
    }

    /// A named cursor of an organization (JSON text), if saved.
    pub async fn cursor(&self, group: &str, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM cursors WHERE group_id = ? AND name = ?")
            .bind(group)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn save_cursor(&self, group: &str, name: &str, value: &str) -> Result<()> {
        sqlx::query("INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value = excluded.value")
            .bind(group)
            .bind(name)
            .bind(value)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Remembers a webhook id; answers false when it was already handled.
    pub async fn first_sight_of_webhook(&self, webhook_id: &str) -> Result<bool> {
        let done = sqlx::query("INSERT INTO webhooks_seen VALUES (?, ?) ON CONFLICT DO NOTHING")
            .bind(webhook_id)
            .bind(now())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets a webhook id whose handling failed, so its retry is handled.
    pub async fn forget_webhook(&self, webhook_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM webhooks_seen WHERE webhook_id = ?").bind(webhook_id).execute(&self.writer).await?;
        Ok(())
    }

    pub async fn record_failure(&self, group: &str, side: &str, entity: &str, id: &str, error: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO record_errors VALUES (?, ?, ?, ?, ?, 1, ?)
             ON CONFLICT DO UPDATE SET error = excluded.error, attempts = attempts + 1, at = excluded.at",
        )
        .bind(group)
        .bind(side)
        .bind(entity)
        .bind(id)
        .bind(error)
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn clear_failure(&self, group: &str, side: &str, entity: &str, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM record_errors WHERE group_id = ? AND side = ? AND entity = ? AND record_id = ?")
            .bind(group)
            .bind(side)
            .bind(entity)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn record_errors(&self, group: &str) -> Result<Vec<RecordError>> {
        let rows = sqlx::query("SELECT * FROM record_errors WHERE group_id = ? ORDER BY at")
            .bind(group)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| RecordError {
                side: r.get("side"),
                entity: r.get("entity"),
                record_id: r.get("record_id"),
                error: r.get("error"),
                attempts: r.get("attempts"),
            })
            .collect())
    }

    pub async fn status(&self, group: &str) -> Result<OrgStatus> {
        let row =
            sqlx::query("SELECT * FROM org_status WHERE group_id = ?").bind(group).fetch_optional(&self.pool).await?;
        let failing: i64 = sqlx::query("SELECT count(*) FROM record_errors WHERE group_id = ?")
            .bind(group)
            .fetch_one(&self.pool)
            .await?
            .get(0);
        let mut status = OrgStatus { group_id: group.to_string(), failing_records: failing, ..OrgStatus::default() };
        if let Some(r) = row {
            status.paused = r.get::<i64, _>("paused") != 0;
            status.failures = r.get("failures");
            status.last_success = r.get("last_success");
            status.last_error = r.get("last_error");
            status.last_error_at = r.get("last_error_at");
        }
        Ok(status)
    }

    /// A sync step of the organization succeeded: its failure count restarts.
    pub async fn note_success(&self, group: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO org_status (group_id, last_success) VALUES (?, ?)
             ON CONFLICT DO UPDATE SET last_success = excluded.last_success, failures = 0",
        )
        .bind(group)
        .bind(now())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A sync step failed; answers the number of failures in a row.
    pub async fn note_failure(&self, group: &str, error: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO org_status (group_id, failures, last_error, last_error_at) VALUES (?, 1, ?, ?)
             ON CONFLICT DO UPDATE SET failures = failures + 1, last_error = excluded.last_error,
               last_error_at = excluded.last_error_at
             RETURNING failures",
        )
        .bind(group)
        .bind(error)
        .bind(now())
        .fetch_one(&self.writer)
        .await?;
        Ok(row.get(0))
    }

    pub async fn set_paused(&self, group: &str, paused: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO org_status (group_id, paused) VALUES (?, ?)
             ON CONFLICT DO UPDATE SET paused = excluded.paused, failures = CASE WHEN excluded.paused THEN failures ELSE 0 END",
        )
        .bind(group)
        .bind(paused)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}

fn link(row: &sqlx::sqlite::SqliteRow) -> Link {
    Link {
        app_entity: row.get("app_entity"),
        app_id: row.get("app_id"),
        hub_entity: row.get("hub_entity"),
        hub_id: row.get("hub_id"),
        hub_version: row.get("hub_version"),
        fingerprint: row.get("fingerprint"),
    }
}

fn now() -> String {
    format_timestamp(Timestamp::now())
}
