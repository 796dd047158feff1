//! Webhook delivery state and idempotency keys on PostgreSQL.
//!
//! These tables are keyed by app. Only `delivery_cursors` carries a
//! row-level policy (an app's cursors are read across its organizations),
//! so its transactions name the app ([`PgStore::begin_app`]).

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgRow};
use sqlx::Row;

use super::rows::{corrupt, count, timestamp};
use super::{finish, PgStore};
use crate::error::Context;
use crate::*;

const BATCH_COLUMNS: &str =
    "app_id, webhook_id, body, ranges, records, attempts, next_attempt_at, created_at, last_error";
const DEAD_LETTER_COLUMNS: &str =
    "webhook_id, app_id, body, records, record_count, attempts, last_error, created_at, resent_at";

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("delivery state does not serialize: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("bad delivery state: {e}")))
}

/// Moves cursors forward only: a late or repeated move never goes back.
async fn move_cursors(conn: &mut PgConnection, app_id: &str, moves: &[CursorMove]) -> Result<(), StoreError> {
    for m in moves {
        sqlx::query(
            "UPDATE delivery_cursors SET delivered_seq = GREATEST(delivered_seq, $1) WHERE app_id = $2 AND org_id = $3",
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

async fn insert_attempt(conn: &mut PgConnection, app_id: &str, a: &DeliveryAttempt) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO delivery_attempts (app_id, webhook_id, attempt, at, status, outcome, error, duration_ms, record_count) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(app_id)
    .bind(&a.webhook_id)
    .bind(i64::from(a.attempt))
    .bind(a.at.as_microsecond())
    .bind(a.status.map(i32::from))
    .bind(&a.outcome)
    .bind(&a.error)
    .bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
    .bind(i64::from(a.record_count))
    .execute(&mut *conn)
    .await
    .context("logging a delivery attempt")?;
    Ok(())
}

/// Removes the batch from the pending table (once delivered or buried).
async fn close_batch(conn: &mut PgConnection, b: &PendingBatch) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM pending_batches WHERE app_id = $1 AND webhook_id = $2")
        .bind(&b.app_id)
        .bind(&b.webhook_id)
        .execute(&mut *conn)
        .await
        .context("closing a batch")?;
    Ok(())
}

fn batch_from_row(row: &PgRow) -> Result<PendingBatch, StoreError> {
    Ok(PendingBatch {
        app_id: row.try_get(0).map_err(corrupt)?,
        webhook_id: row.try_get(1).map_err(corrupt)?,
        body: row.try_get(2).map_err(corrupt)?,
        ranges: from_json(row.try_get(3).map_err(corrupt)?)?,
        records: from_json(row.try_get(4).map_err(corrupt)?)?,
        attempts: count(row.try_get(5).map_err(corrupt)?)?,
        next_attempt_at: timestamp(row.try_get(6).map_err(corrupt)?)?,
        created_at: timestamp(row.try_get(7).map_err(corrupt)?)?,
        last_error: row.try_get(8).map_err(corrupt)?,
    })
}

fn dead_letter_from_row(row: &PgRow) -> Result<DeadLetter, StoreError> {
    let resent: Option<i64> = row.try_get(8).map_err(corrupt)?;
    Ok(DeadLetter {
        webhook_id: row.try_get(0).map_err(corrupt)?,
        app_id: row.try_get(1).map_err(corrupt)?,
        body: row.try_get(2).map_err(corrupt)?,
        records: from_json(row.try_get(3).map_err(corrupt)?)?,
        record_count: count(row.try_get(4).map_err(corrupt)?)?,
        attempts: count(row.try_get(5).map_err(corrupt)?)?,
        last_error: row.try_get(6).map_err(corrupt)?,
        created_at: timestamp(row.try_get(7).map_err(corrupt)?)?,
        resent_at: resent.map(timestamp).transpose()?,
    })
}

fn attempt_from_row(r: &PgRow) -> Result<DeliveryAttempt, StoreError> {
    let status: Option<i32> = r.try_get(3).map_err(corrupt)?;
    Ok(DeliveryAttempt {
        webhook_id: r.try_get(0).map_err(corrupt)?,
        attempt: count(r.try_get(1).map_err(corrupt)?)?,
        at: timestamp(r.try_get(2).map_err(corrupt)?)?,
        status: status.map(|s| count(i64::from(s))).transpose()?,
        outcome: r.try_get(4).map_err(corrupt)?,
        error: r.try_get(5).map_err(corrupt)?,
        duration_ms: count(r.try_get(6).map_err(corrupt)?)?,
        record_count: count(r.try_get(7).map_err(corrupt)?)?,
    })
}

impl PgStore {
    pub(crate) async fn cursors_impl(&self, app_id: &str) -> Result<HashMap<String, i64>, StoreError> {
        let mut tx = self.begin_app(app_id).await?;
        let rows = sqlx::query("SELECT org_id, delivered_seq FROM delivery_cursors WHERE app_id = $1")
            .bind(app_id)
            .fetch_all(&mut *tx)
            .await
            .context("reading delivery cursors")?;
        finish(tx).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub(crate) async fn advance_cursors_impl(&self, app_id: &str, moves: &[CursorMove]) -> Result<(), StoreError> {
        let mut tx = self.begin_app(app_id).await?;
        move_cursors(&mut tx, app_id, moves).await?;
        tx.commit().await.context("moving delivery cursors")
    }

    pub(crate) async fn pending_batch_impl(&self, app_id: &str) -> Result<Option<PendingBatch>, StoreError> {
        let row = sqlx::query(&format!("SELECT {BATCH_COLUMNS} FROM pending_batches WHERE app_id = $1"))
            .bind(app_id)
            .fetch_optional(&self.pool)
            .await
            .context("reading a pending batch")?;
        row.as_ref().map(batch_from_row).transpose()
    }

    /// Saves a new batch, or the next attempt's schedule of the same batch;
    /// another batch of the app is never overwritten.
    pub(crate) async fn save_pending_batch_impl(&self, b: &PendingBatch) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO pending_batches (app_id, webhook_id, body, ranges, records, record_count, attempts, next_attempt_at, created_at, last_error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (app_id) DO UPDATE SET \
             attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at, last_error = excluded.last_error \
             WHERE pending_batches.webhook_id = excluded.webhook_id",
        )
        .bind(&b.app_id)
        .bind(&b.webhook_id)
        .bind(&b.body)
        .bind(json(&b.ranges)?)
        .bind(json(&b.records)?)
        .bind(b.records.len() as i64)
        .bind(i64::from(b.attempts))
        .bind(b.next_attempt_at.as_microsecond())
        .bind(b.created_at.as_microsecond())
        .bind(&b.last_error)
        .execute(&self.pool)
        .await
        .context("saving a pending batch")?;
        Ok(())
    }

    pub(crate) async fn record_attempt_impl(
        &self,
        b: &PendingBatch,
        attempt: &DeliveryAttempt,
        delivered: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_app(&b.app_id).await?;
        insert_attempt(&mut tx, &b.app_id, attempt).await?;
        if delivered {
            close_batch(&mut tx, b).await?;
            move_cursors(&mut tx, &b.app_id, &b.ranges).await?;
        }
        tx.commit().await.context("recording a delivery attempt")
    }

    pub(crate) async fn bury_batch_impl(&self, b: &PendingBatch) -> Result<(), StoreError> {
        let mut tx = self.begin_app(&b.app_id).await?;
        sqlx::query(&format!("INSERT INTO dead_letters ({DEAD_LETTER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) ON CONFLICT DO NOTHING"))
            .bind(&b.webhook_id)
            .bind(&b.app_id)
            .bind(&b.body)
            .bind(json(&b.records)?)
            .bind(b.records.len() as i64)
            .bind(i64::from(b.attempts))
            .bind(&b.last_error)
            .bind(jiff::Timestamp::now().as_microsecond())
            .execute(&mut *tx)
            .await
            .context("keeping a dead letter")?;
        close_batch(&mut tx, b).await?;
        move_cursors(&mut tx, &b.app_id, &b.ranges).await?;
        tx.commit().await.context("burying a batch")
    }

    pub(crate) async fn delivery_log_impl(&self, app_id: &str, limit: u32) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT webhook_id, attempt, at, status, outcome, error, duration_ms, record_count FROM delivery_attempts \
             WHERE app_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(app_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .context("reading the delivery log")?;
        rows.iter().map(attempt_from_row).collect()
    }

    pub(crate) async fn dead_letters_impl(&self, app_id: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE app_id = $1 ORDER BY created_at DESC"
        ))
        .bind(app_id)
        .fetch_all(&self.pool)
        .await
        .context("listing dead letters")?;
        rows.iter().map(dead_letter_from_row).collect()
    }

    pub(crate) async fn dead_letter_impl(
        &self,
        app_id: &str,
        webhook_id: &str,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DEAD_LETTER_COLUMNS} FROM dead_letters WHERE app_id = $1 AND webhook_id = $2"
        ))
        .bind(app_id)
        .bind(webhook_id)
        .fetch_optional(&self.pool)
        .await
        .context("reading a dead letter")?;
        row.as_ref().map(dead_letter_from_row).transpose()
    }

    pub(crate) async fn request_resend_impl(&self, app_id: &str, webhook_id: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE dead_letters SET resend_requested_at = $1 WHERE app_id = $2 AND webhook_id = $3")
                .bind(jiff::Timestamp::now().as_microsecond())
                .bind(app_id)
                .bind(webhook_id)
                .execute(&self.pool)
                .await
                .context("requesting a resend")?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes the oldest request in one statement; `SKIP LOCKED` lets two
    /// processes take two different requests instead of one twice.
    pub(crate) async fn take_resend_request_impl(&self, app_id: &str) -> Result<Option<DeadLetter>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE dead_letters SET resend_requested_at = NULL, resent_at = $2 WHERE webhook_id = ( \
               SELECT webhook_id FROM dead_letters WHERE app_id = $1 AND resend_requested_at IS NOT NULL \
               ORDER BY resend_requested_at, webhook_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {DEAD_LETTER_COLUMNS}"
        ))
        .bind(app_id)
        .bind(jiff::Timestamp::now().as_microsecond())
        .fetch_optional(&self.pool)
        .await
        .context("taking a resend request")?;
        row.as_ref().map(dead_letter_from_row).transpose()
    }

    pub(crate) async fn set_endpoint_disabled_impl(
        &self,
        app_id: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE apps SET endpoint_disabled = $1 WHERE id = $2")
            .bind(reason)
            .bind(app_id)
            .execute(&self.pool)
            .await
            .context("disabling an endpoint")?;
        Ok(())
    }

    pub(crate) async fn saved_response_impl(
        &self,
        app_id: &str,
        key: &str,
    ) -> Result<Option<SavedResponse>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, status, body, created_at FROM idempotency_keys WHERE app_id = $1 AND key = $2",
        )
        .bind(app_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .context("reading an idempotency key")?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SavedResponse {
            fingerprint: r.try_get(0).map_err(corrupt)?,
            status: count(i64::from(r.try_get::<i32, _>(1).map_err(corrupt)?))?,
            body: r.try_get(2).map_err(corrupt)?,
            created_at: timestamp(r.try_get(3).map_err(corrupt)?)?,
        }))
    }

    pub(crate) async fn save_response_impl(
        &self,
        app_id: &str,
        key: &str,
        s: &SavedResponse,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO idempotency_keys (app_id, key, fingerprint, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (app_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status, \
             body = excluded.body, created_at = excluded.created_at",
        )
        .bind(app_id)
        .bind(key)
        .bind(&s.fingerprint)
        .bind(i32::from(s.status))
        .bind(&s.body)
        .bind(s.created_at.as_microsecond())
        .execute(&self.pool)
        .await
        .context("saving an idempotency key")?;
        Ok(())
    }

    /// A mark is a row with status 0 and no body; see [`Store::claim_key`].
    pub(crate) async fn claim_key_impl(
        &self,
        app_id: &str,
        key: &str,
        stale_after: Duration,
        keep_for: Duration,
    ) -> Result<bool, StoreError> {
        let now = jiff::Timestamp::now().as_microsecond();
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2);
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys AS k (app_id, key, fingerprint, status, body, created_at) \
             VALUES ($1, $2, '', 0, ''::bytea, $3) \
             ON CONFLICT (app_id, key) DO UPDATE SET fingerprint = '', status = 0, body = ''::bytea, created_at = $3 \
             WHERE (k.status = 0 AND k.created_at < $3 - $4) OR (k.status <> 0 AND k.created_at < $3 - $5) \
             RETURNING k.key",
        )
        .bind(app_id)
        .bind(key)
        .bind(now)
        .bind(micros(stale_after))
        .bind(micros(keep_for))
        .fetch_optional(&self.pool)
        .await
        .context("claiming an idempotency key")?;
        Ok(claimed.is_some())
    }

    pub(crate) async fn release_key_impl(&self, app_id: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE app_id = $1 AND key = $2 AND status = 0")
            .bind(app_id)
            .bind(key)
            .execute(&self.pool)
            .await
            .context("releasing an idempotency key")?;
        Ok(())
    }
}
