//! The write rules' interface ([`WriteTx`]) on a PostgreSQL connection.
//!
//! These run inside the transaction [`PgStore::write`](super::PgStore) opened,
//! which already locked the organization's row and named it for the
//! row-level policies; the queries still say `org_id = $1` themselves.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::Row;
use uuid::Uuid;

use super::rows::{parse_uuid, record_from_row, RECORD_COLUMNS};
use crate::error::Context;
use crate::write::WriteTx;
use crate::{ChangeKind, StoreError, StoredRecord};

#[async_trait]
impl WriteTx for PgConnection {
    async fn load(&mut self, org_id: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE org_id = $1 AND id = $2");
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
        let id: Option<String> = sqlx::query_scalar(
            "SELECT record_id FROM id_links WHERE org_id = $1 AND entity = $2 AND app_id = $3 AND realm = $4 AND external_id = $5",
        )
        .bind(org_id)
        .bind(entity)
        .bind(app_id)
        .bind(realm)
        .bind(external_id)
        .fetch_optional(&mut *self)
        .await
        .context("looking up an external id")?;
        id.as_deref().map(parse_uuid).transpose()
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
        sqlx::query(
            "INSERT INTO id_links (org_id, entity, app_id, realm, external_id, record_id) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
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
        let sql = matching_sql(fields);
        let mut query = sqlx::query(&sql).bind(org_id).bind(entity);
        for (keys, value) in fields {
            for key in keys {
                query = query.bind(key);
            }
            query = query.bind(value.to_string());
        }
        let row = query.fetch_optional(&mut *self).await.context("matching a record")?;
        row.map(|r| parse_uuid(r.get::<&str, _>(0))).transpose()
    }

    async fn find_singleton(&mut self, org_id: &str, entity: &str) -> Result<Option<Uuid>, StoreError> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM records WHERE org_id = $1 AND entity = $2 ORDER BY created_at, id LIMIT 1",
        )
        .bind(org_id)
        .bind(entity)
        .fetch_optional(&mut *self)
        .await
        .context("finding a singleton record")?;
        id.as_deref().map(parse_uuid).transpose()
    }

    async fn insert(&mut self, r: &StoredRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO records (org_id, id, entity, data, version, content_hash, created_at, updated_at, archived) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
        sqlx::query("UPDATE records SET data = $1, version = $2, content_hash = $3, updated_at = $4, archived = $5 WHERE org_id = $6 AND id = $7")
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
        // The row is locked since the transaction began, so no other
        // transaction of this organization takes a seq before this one commits.
        let seq: i64 = sqlx::query_scalar("UPDATE orgs SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq")
            .bind(&r.org_id)
            .fetch_one(&mut *self)
            .await
            .context("numbering a change")?;
        sqlx::query("INSERT INTO changes (org_id, seq, entity, record_id, version, origin_app, kind, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&r.org_id)
            .bind(seq)
            .bind(&r.entity)
            .bind(r.id.to_string())
            .bind(r.version)
            .bind(origin_app)
            .bind(kind.as_str())
            .bind(r.updated_at.as_microsecond())
            .execute(&mut *self)
            .await
            .context("logging a change")?;
        Ok(seq)
    }
}

/// The query of [`WriteTx::find_matching`]: each field's keys and value are
/// bound in order after `$1` (org) and `$2` (entity). jsonb equality
/// compares numbers as decimals and objects member by member.
fn matching_sql(fields: &[(Vec<String>, Value)]) -> String {
    let mut sql = String::from("SELECT id FROM records WHERE org_id = $1 AND entity = $2 AND NOT archived");
    let mut next = 3;
    for (keys, _) in fields {
        let mut path = String::new();
        for _ in keys {
            path.push_str(&format!(" -> ${next}::text"));
            next += 1;
        }
        sql.push_str(&format!(" AND (data::jsonb{path}) = ${next}::jsonb"));
        next += 1;
    }
    sql.push_str(" ORDER BY created_at, id LIMIT 1");
    sql
}
