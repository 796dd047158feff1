//! `Idempotency-Key` answers and marks on SQLite: one row per app and key,
//! a mark (status 0) while its request runs, the saved answer after.

use std::time::Duration;

use sqlx::Row;

use super::rows::timestamp;
use super::SqliteStore;
use crate::error::Context;
use crate::*;

impl SqliteStore {
    pub(crate) async fn saved_response_impl(
        &self,
        app_id: &str,
        key: &str,
    ) -> Result<Option<SavedResponse>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, status, body, created_at FROM idempotency_keys WHERE app_id = ? AND key = ?",
        )
        .bind(app_id)
        .bind(key)
        .fetch_optional(&self.reader)
        .await
        .context("reading an idempotency key")?;
        row.map(|r| {
            Ok(SavedResponse {
                fingerprint: r.get(0),
                status: r.get::<i64, _>(1) as u16,
                body: r.get(2),
                created_at: timestamp(r.get(3))?,
            })
        })
        .transpose()
    }

    pub(crate) async fn save_response_impl(
        &self,
        app_id: &str,
        key: &str,
        saved: &SavedResponse,
    ) -> Result<(), StoreError> {
        let (app_id, key, s) = (app_id.to_string(), key.to_string(), saved.clone());
        self.writer
            .exec(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO idempotency_keys (app_id, key, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, ?, ?) \
                         ON CONFLICT (app_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status, \
                         body = excluded.body, created_at = excluded.created_at",
                    )
                    .bind(app_id)
                    .bind(key)
                    .bind(s.fingerprint)
                    .bind(s.status as i64)
                    .bind(s.body)
                    .bind(s.created_at.as_microsecond())
                    .execute(conn)
                    .await
                    .context("saving an idempotency key")?;
                    Ok(())
                })
            })
            .await
    }

    /// A mark is a row with status 0 and an empty body; see [`Store::claim_key`].
    /// It is kept in the file, not in memory, so that other processes on the
    /// same file see it too. A mark is worthless after a crash (its request
    /// died with the process), so it commits without waiting for the disk.
    pub(crate) async fn claim_key_impl(
        &self,
        app_id: &str,
        key: &str,
        stale_after: Duration,
        keep_for: Duration,
    ) -> Result<bool, StoreError> {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2);
        let (stale_after, keep_for) = (micros(stale_after), micros(keep_for));
        self.writer
            .exec_volatile(move |conn| {
                Box::pin(async move {
                    let now = jiff::Timestamp::now().as_microsecond();
                    let claimed = sqlx::query(
                        "INSERT INTO idempotency_keys AS k (app_id, key, fingerprint, status, body, created_at) \
                         VALUES (?1, ?2, '', 0, x'', ?3) \
                         ON CONFLICT (app_id, key) DO UPDATE SET fingerprint = '', status = 0, body = x'', created_at = ?3 \
                         WHERE (k.status = 0 AND k.created_at < ?3 - ?4) OR (k.status <> 0 AND k.created_at < ?3 - ?5) \
                         RETURNING app_id",
                    )
                    .bind(app_id)
                    .bind(key)
                    .bind(now)
                    .bind(stale_after)
                    .bind(keep_for)
                    .fetch_optional(conn)
                    .await
                    .context("claiming an idempotency key")?;
                    Ok(claimed.is_some())
                })
            })
            .await
    }

    pub(crate) async fn release_key_impl(&self, app_id: &str, key: &str) -> Result<(), StoreError> {
        let (app_id, key) = (app_id.to_string(), key.to_string());
        self.writer
            .exec_volatile(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM idempotency_keys WHERE app_id = ? AND key = ? AND status = 0")
                        .bind(app_id)
                        .bind(key)
                        .execute(conn)
                        .await
                        .context("releasing an idempotency key")?;
                    Ok(())
                })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::sqlite::SqliteStore;
    use crate::{SavedResponse, Store};

    const STALE: Duration = Duration::from_secs(120);
    const KEEP: Duration = Duration::from_secs(86_400);

    /// Idempotency marks live in the file, so two stores (two processes) on it
    /// see each other's: one request per key runs, wherever it arrives.
    #[tokio::test]
    async fn an_idempotency_key_marked_by_one_store_is_taken_for_another() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let (first, second) = (SqliteStore::open(&url).await.unwrap(), SqliteStore::open(&url).await.unwrap());

        assert!(first.claim_key("app", "k1", STALE, KEEP).await.unwrap());
        assert!(!second.claim_key("app", "k1", STALE, KEEP).await.unwrap(), "marked by the first");
        assert!(!first.claim_key("app", "k1", STALE, KEEP).await.unwrap(), "marked, even for the same store");
        assert!(second.claim_key("other-app", "k1", STALE, KEEP).await.unwrap(), "keys are per app");
        let mark = second.saved_response("app", "k1").await.unwrap().expect("the mark reads back");
        assert_eq!(mark.status, 0, "a mark is no answer");

        // A saved answer replaces the mark and holds the key while it is kept.
        let answer = SavedResponse {
            fingerprint: "f".into(),
            status: 201,
            body: b"{}".to_vec(),
            created_at: jiff::Timestamp::now(),
        };
        first.save_response("app", "k1", &answer).await.unwrap();
        assert!(!second.claim_key("app", "k1", STALE, KEEP).await.unwrap());
        assert_eq!(second.saved_response("app", "k1").await.unwrap().unwrap().status, 201);
        assert!(second.claim_key("app", "k1", STALE, Duration::ZERO).await.unwrap(), "an expired answer is free");

        // A released mark is free at once; a stale one is taken over.
        second.release_key("app", "k1").await.unwrap();
        assert!(first.claim_key("app", "k1", STALE, KEEP).await.unwrap());
        assert!(second.claim_key("app", "k1", Duration::ZERO, KEEP).await.unwrap(), "its request died");
        // Releasing never removes an answer.
        first.save_response("app", "k2", &answer).await.unwrap();
        first.release_key("app", "k2").await.unwrap();
        assert_eq!(second.saved_response("app", "k2").await.unwrap().unwrap().status, 201);

        first.close().await;
        second.close().await;
    }
}
