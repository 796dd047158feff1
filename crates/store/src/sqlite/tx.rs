//! The write rules' interface ([`WriteTx`]) on the SQLite write connection.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::rows::{record_from_row, RECORD_COLUMNS};
use crate::error::Context;
use crate::write::WriteTx;
use crate::{ChangeKind, StoreError, StoredRecord};

/// The SQLite JSON path of a field path: `$."email"."address"`. Keys were
/// checked to be `[A-Za-z0-9_]` before they get here.
pub(crate) fn json_path(keys: &[String]) -> String {
    let mut path = String::from("$");
    for key in keys {
        path.push_str(&format!(".\"{key}\""));
    }
    path
}

#[async_trait]
impl WriteTx for SqliteConnection {
    async fn load(&mut self, org_id: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE org_id = ? AND id = ?");
        let row = sqlx::query(&sql)
            .bind(org_id)
            .bind(id.to_string())
            .fetch_optional(&mut *self)
            .await
            .context("loading a record")?;
        row.map(|r| record_from_row(&r)).transpose()
    }

    async fn find_link(
        &mut self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let row = sqlx::query(
            "SELECT record_id FROM id_links WHERE org_id = ? AND entity = ? AND app_id = ? AND realm = ? AND external_id = ?",
        )
        .bind(org_id)
        .bind(entity)
        .bind(app_id)
        .bind(realm)
        .bind(external_id)
        .fetch_optional(&mut *self)
        .await
        .context("looking up an external id")?;
        row.map(|r| parse_uuid(r.get::<&str, _>(0))).transpose()
    }

    async fn add_link(
        &mut self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
        record_id: Uuid,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO id_links (org_id, entity, app_id, realm, external_id, record_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(org_id)
            .bind(entity)
            .bind(app_id)
            .bind(realm)
            .bind(external_id)
            .bind(record_id.to_string())
            .execute(&mut *self)
            .await
            .context("linking an external id")?;
        Ok(())
    }

    async fn find_matching(
        &mut self,
        org_id: &str,
        entity: &str,
        fields: &[(Vec<String>, Value)],
    ) -> Result<Option<Uuid>, StoreError> {
        let mut sql = String::from("SELECT id FROM records WHERE org_id = ? AND entity = ? AND archived = 0");
        for _ in fields {
            // Both sides go through json_extract so strings, numbers and
            // booleans compare as the same SQL types.
            sql.push_str(" AND json_extract(data, ?) = json_extract(?, '$')");
        }
        sql.push_str(" ORDER BY created_at, id LIMIT 1");
        let mut query = sqlx::query(&sql).bind(org_id).bind(entity);
        for (keys, value) in fields {
            query = query.bind(json_path(keys)).bind(value.to_string());
        }
        let row = query.fetch_optional(&mut *self).await.context("matching a record")?;
        row.map(|r| parse_uuid(r.get::<&str, _>(0))).transpose()
    }

    async fn find_singleton(&mut self, org_id: &str, entity: &str) -> Result<Option<Uuid>, StoreError> {
        let row = sqlx::query("SELECT id FROM records WHERE org_id = ? AND entity = ? ORDER BY created_at LIMIT 1")
            .bind(org_id)
            .bind(entity)
            .fetch_optional(&mut *self)
            .await
            .context("finding a singleton record")?;
        row.map(|r| parse_uuid(r.get::<&str, _>(0))).transpose()
    }

    async fn insert(&mut self, r: &StoredRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO records (org_id, id, entity, data, version, content_hash, created_at, updated_at, archived) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.org_id)
        .bind(r.id.to_string())
        .bind(&r.entity)
        .bind(r.data.to_string())
        .bind(r.version)
        .bind(&r.content_hash[..])
        .bind(r.created_at.as_microsecond())
        .bind(r.updated_at.as_microsecond())
        .bind(r.archived)
        .execute(&mut *self)
        .await
        .context("inserting a record")?;
        Ok(())
    }

    async fn update(&mut self, r: &StoredRecord) -> Result<(), StoreError> {
        sqlx::query("UPDATE records SET data = ?, version = ?, content_hash = ?, updated_at = ?, archived = ? WHERE org_id = ? AND id = ?")
            .bind(r.data.to_string())
            .bind(r.version)
            .bind(&r.content_hash[..])
            .bind(r.updated_at.as_microsecond())
            .bind(r.archived)
            .bind(&r.org_id)
            .bind(r.id.to_string())
            .execute(&mut *self)
            .await
            .context("updating a record")?;
        Ok(())
    }

    async fn log_change(&mut self, r: &StoredRecord, origin_app: &str, kind: ChangeKind) -> Result<i64, StoreError> {
        // The one writer connection makes "the last seq + 1" safe here, and
        // numbering in the insert itself saves a statement per change.
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO changes (org_id, seq, entity, record_id, version, origin_app, kind, at) \
             SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6, ?7 FROM changes WHERE org_id = ?1 RETURNING seq",
        )
        .bind(&r.org_id)
        .bind(&r.entity)
        .bind(r.id.to_string())
        .bind(r.version)
        .bind(origin_app)
        .bind(kind.as_str())
        .bind(r.updated_at.as_microsecond())
        .fetch_one(&mut *self)
        .await
        .context("logging a change")?;
        Ok(seq)
    }
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("bad record id {s:?} in the database: {e}")))
}
