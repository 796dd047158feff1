//! Webhook delivery state on SQLite: cursors, pending batches, the delivery log,
//! dead letters, and the delivery leases of the process holding the file's lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::rows::timestamp;
use super::SqliteStore;
use crate::error::Context;
use crate::*;

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("bad delivery state: {e}")))
}

async fn move_cursors(conn: &mut SqliteConnection, app_id: &str, moves: &[CursorMove]) -> Result<(), StoreError> {
    for m in moves {
        sqlx::query(
            "UPDATE delivery_cursors SET delivered_seq = max(delivered_seq, ?) WHERE app_id = ? AND org_id = ?",
        )
        .bind(m.to_seq)
        .bind(app_id)
        .bind(&m.org_id)
        .execute(&mut *conn)
        .await
        .context("moving a delivery cursor")?;
    }
    Ok(())
}

async fn insert_attempt(conn: &mut SqliteConnection, app_id: &str, a: &DeliveryAttempt) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO delivery_attempts (app_id, webhook_id, attempt, at, status, outcome, error, duration_ms, record_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(app_id)
    .bind(&a.webhook_id)
    .bind(a.attempt)
    .bind(a.at.as_microsecond())
    .bind(a.status)
    .bind(&a.outcome)
    .bind(&a.error)
    .bind(a.duration_ms as i64)
    .bind(a.record_count)
    .execute(&mut *conn)
    .await
    .context("logging a delivery attempt")?;
    Ok(())
}

fn batch_from_row(row: &SqliteRow) -> Result<PendingBatch, StoreError> {
    Ok(PendingBatch {
        app_id: row.get(0),
        webhook_id: row.get(1),
        body: row.get(2),
        ranges: from_json(row.get(3))?,
        records: from_json(row.get(4))?,
        attempts: row.get(5),
        next_attempt_at: timestamp(row.get(6))?,
        created_at: timestamp(row.get(7))?,
        last_error: row.get(8),
    })
}

fn dead_letter_from_row(row: &SqliteRow) -> Result<DeadLetter, StoreError> {
    let resent: Option<i64> = row.get(8);
    Ok(DeadLetter {
        webhook_id: row.get(0),
        app_id: row.get(1),
        body: row.get(2),
        records: from_json(row.get(3))?,
        record_count: row.get(4),
        attempts: row.get(5),
        last_error: row.get(6),
        created_at: timestamp(row.get(7))?,
        resent_at: resent.map(timestamp).transpose()?,
    })
}

const DEAD_LETTER_COLUMNS: &str =
    "webhook_id, app_id, body, records, record_count, attempts, last_error, created_at, resent_at";

impl SqliteStore {
    pub(crate) async fn cursors_impl(&self, app_id: &str) -> Result<HashMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT org_id, delivered_seq FROM delivery_cursors WHERE app_id = ?")
            .bind(app_id)
            .fetch_all(&self.reader)
            .await
            .context("reading delivery cursors")?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(crate) async fn advance_cursors_impl(&self, app_id: &str, moves: &[CursorMove]) -> Result<(), StoreError> {
        let (app_id, moves) = (app_id.to_string(), moves.to_vec());
        self.writer.exec(move |conn| Box::pin(async move { move_cursors(conn, &app_id, &moves).await })).await
    }

    pub(crate) async fn pending_batch_impl(&self, app_id: &str) -> Result<Option<PendingBatch>, StoreError> {
        let row = sqlx::query(
            "SELECT app_id, webhook_id, body, ranges, records, attempts, next_attempt_at, created_at, last_error FROM pending_batches WHERE app_id = ?",
        )
        .bind(app_id)
        .fetch_optional(&self.reader)
        .await
        .context("reading a pending batch")?;
        row.as_ref().map(batch_from_row).transpose()
    }

    pub(crate) async fn save_pending_batch_impl(&self, batch: &PendingBatch) -> Result<(), StoreError> {
        let b = batch.clone();
        self.writer
            .exec(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO pending_batches (app_id, webhook_id, body, ranges, records, record_count, attempts, next_attempt_at, created_at, last_error) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (app_id) DO UPDATE SET \
                         attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error \
                         WHERE pending_batches.webhook_id = excluded.webhook_id",
                    )
                    .bind(&b.app_id)
                    .bind(&b.webhook_id)
                    .bind(&b.body)
                    .bind(json(&b.ranges))
                    .bind(json(&b.records))
                    .bind(b.records.len() as i64)
                    .bind(b.attempts)
                    .bind(b.next_attempt_at.as_microsecond())
                    .bind(b.created_at.as_microsecond())
                    .bind(&b.last_error)
                    .execute(conn)
                    .await
                    .context("saving a pending batch")?;
                    Ok(())
                })
            })
            .await
    }

    pub(crate) async fn record_attempt_impl(
        &self,
        batch: &PendingBatch,
        attempt: &DeliveryAttempt,
        delivered: bool,
    ) -> Result<(), StoreError> {
        let (b, a) = (batch.clone(), attempt.clone());
        self.writer
            .exec(move |conn| {
                Box::pin(async move {
                    insert_attempt(conn, &b.app_id, &a).await?;
                    if !delivered {
                        return Ok(());
                    }
                    sqlx::query("DELETE FROM pending_batches WHERE app_id = ? AND webhook_id = ?")
                        .bind(&b.app_id)
                        .bind(&b.webhook_id)
                        .execute(&mut *conn)
                        .await
                        .context("closing a delivered batch")?;
                    move_cursors(conn, &b.app_id, &b.ranges).await
                })
            })
            .await
    }

    pub(crate) async fn bury_batch_impl(&self, batch: &PendingBatch) -> Result<(), StoreError> {
        let b = batch.clone();
        self.writer
            .exec(move |conn| {
                Box::pin(async move {
                    sqlx::query(&format!("INSERT INTO dead_letters ({DEAD_LETTER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING"))
                        .bind(&b.webhook_id)
                        .bind(&b.app_id)
                        .bind(&b.body)
                        .bind(json(&b.records))
                        .bind(b.records.len() as i64)
                        .bind(b.attempts)
                        .bind(&b.last_error)
                        .bind(jiff::Timestamp::now().as_microsecond())
                        .execute(&mut *conn)
                        .await
                        .context("keeping a dead letter")?;
                    sqlx::query("DELETE FROM pending_batches WHERE app_id = ? AND webhook_id = ?")
                        .bind(&b.app_id)
                        .bind(&b.webhook_id)
                        .execute(&mut *conn)
                        .await
                        .context("closing a dead batch")?;
                    move_cursors(conn, &b.app_id, &b.ranges).await
                })
            })
            .await
    }

    pub(crate) async fn delivery_log_impl(&self, app_id: &str, limit: u32) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT webhook_id, attempt, at, status, outcome, error, duration_ms, record_count FROM delivery_attempts WHERE app_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(app_id)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .context("reading the delivery log")?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryAttempt {
                    webhook_id: r.get(0),
                    attempt: r.get(1),
                    at: timestamp(r.get(2))?,
                    status: r.get(3),
                    outcome: r.get(4),
                    error: r.get(5),
                    duration_ms: r.get::<i64, _>(6) as u64,
                    record_count: r.get(7),
                })
            })
            .collect()
    }

    pub(crate) async fn dead_letters_impl(&self, app_id: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE app_id = ? ORDER BY created_at DESC"
        ))
        .bind(app_id)
        .fetch_all(&self.reader)
        .await
        .context("listing dead letters")?;
        rows.iter().map(dead_letter_from_row).collect()
    }

    pub(crate) async fn dead_letter_impl(
        &self,
        app_id: &str,
        webhook_id: &str,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let row =
            sqlx::query(&format!("SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE app_id = ? AND webhook_id = ?"))
                .bind(app_id)
                .bind(webhook_id)
                .fetch_optional(&self.reader)
                .await
                .context("reading a dead letter")?;
        row.as_ref().map(dead_letter_from_row).transpose()
    }

    pub(crate) async fn request_resend_impl(&self, app_id: &str, webhook_id: &str) -> Result<bool, StoreError> {
        let (app_id, webhook_id) = (app_id.to_string(), webhook_id.to_string());
        self.writer
            .exec(move |conn| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE dead_letters SET resend_requested_at = ? WHERE app_id = ? AND webhook_id = ?",
                    )
                    .bind(jiff::Timestamp::now().as_microsecond())
                    .bind(app_id)
                    .bind(webhook_id)
                    .execute(conn)
                    .await
                    .context("requesting a resend")?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    pub(crate) async fn take_resend_request_impl(&self, app_id: &str) -> Result<Option<DeadLetter>, StoreError> {
        let app_id = app_id.to_string();
        self.writer
            .exec(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(&format!(
                        "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE app_id = ? AND resend_requested_at IS NOT NULL ORDER BY resend_requested_at LIMIT 1"
                    ))
                    .bind(&app_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .context("reading a resend request")?;
                    let Some(letter) = row.as_ref().map(dead_letter_from_row).transpose()? else { return Ok(None) };
                    sqlx::query("UPDATE dead_letters SET resend_requested_at = NULL, resent_at = ? WHERE webhook_id = ?")
                        .bind(jiff::Timestamp::now().as_microsecond())
                        .bind(&letter.webhook_id)
                        .execute(&mut *conn)
                        .await
                        .context("taking a resend request")?;
                    Ok(Some(letter))
                })
            })
            .await
    }

    pub(crate) async fn set_endpoint_disabled_impl(
        &self,
        app_id: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let (id, reason) = (app_id.to_string(), reason.map(str::to_string));
        self.writer
            .exec(move |conn| {
                Box::pin(async move {
                    sqlx::query("UPDATE apps SET endpoint_disabled = ? WHERE id = ?")
                        .bind(reason)
                        .bind(id)
                        .execute(conn)
                        .await
                        .context("disabling an endpoint")?;
                    Ok(())
                })
            })
            .await
    }
}

/// Delivery leases of a SQLite store: app id -> (holder, expiry).
pub(crate) type Leases = Mutex<HashMap<String, (String, Instant)>>;

impl SqliteStore {
    /// Takes or renews an app's lease: false while another process delivers
    /// for this database, otherwise as on PostgreSQL, in memory.
    ///
    /// Several processes may open one SQLite file, but only the one holding
    /// the file's delivery lock ([`super::delivery_lock`]) delivers, so each
    /// claim first makes sure this store holds it (one `flock` call while it
    /// does not; the lock is kept once taken). A process that finds the lock
    /// held serves the API only, and keeps trying on every claim, so it takes
    /// over within its workers' poll interval once the delivering process
    /// stops or dies (the operating system drops its lock). The process that
    /// holds the lock is the only one that reads and writes the delivery
    /// state, so its leases need no table, which would only add writes to
    /// the one writer; they still behave as on PostgreSQL within the process
    /// (one holder at a time, expiry, release), so two delivery loops over
    /// one store never send the same app's batches at once.
    pub(crate) fn claim_app_impl(&self, app_id: &str, holder: &str, lease: Duration) -> Result<bool, StoreError> {
        if !self.delivery_lock.hold()? {
            return Ok(false);
        }
        let now = Instant::now();
        // A poisoned lock only means another claim panicked; the map is intact.
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let free = match leases.get(app_id) {
            Some((current, expires)) => current == holder || *expires < now,
            None => true,
        };
        if free {
            // An absurdly long lease is held for a day rather than overflowing.
            let expires = now.checked_add(lease).unwrap_or(now + Duration::from_secs(86_400));
            leases.insert(app_id.to_string(), (holder.to_string(), expires));
        }
        Ok(free)
    }

    /// Drops the lease if `holder` has it.
    pub(crate) fn release_app_impl(&self, app_id: &str, holder: &str) {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.get(app_id).is_some_and(|(current, _)| current == holder) {
            leases.remove(app_id);
        }
    }
}
