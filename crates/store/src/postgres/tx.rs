//! The write connection's side of [`BufferedTx`](crate::write::buffer::BufferedTx)
//! on PostgreSQL: reads, and one `INSERT … SELECT FROM unnest(…)` per table.
//!
//! These run inside the transaction the [writer](super::writer) opened, which
//! already locked the organizations' rows; each call first names its
//! organization for the row-level policies (once, until another organization
//! comes), and the queries still say `org_id = $1` themselves.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::PgConnection;
use sqlx::Row;
use uuid::Uuid;

use super::rows::{parse_uuid, record_from_row, RECORD_COLUMNS};
use super::set_scope;
use crate::error::Context;
use crate::write::buffer::{LinkKey, LinkScope, PendingChange, RecordRow, WriteConn};
use crate::{StoreError, StoredRecord};

/// A write transaction's connection and the organization it is scoped to.
pub(crate) struct PgWriteConn<'c> {
    conn: &'c mut PgConnection,
    scope: Option<String>,
}

impl<'c> PgWriteConn<'c> {
    pub(crate) fn new(conn: &'c mut PgConnection) -> Self {
        Self { conn, scope: None }
    }

    /// The connection, scoped to `org_id`.
    async fn scoped(&mut self, org_id: &str) -> Result<&mut PgConnection, StoreError> {
        if self.scope.as_deref() != Some(org_id) {
            set_scope(&mut *self.conn, "sharehub.org_id", org_id).await?;
            self.scope = Some(org_id.to_string());
        }
        Ok(&mut *self.conn)
    }
}

#[async_trait]
impl WriteConn for PgWriteConn<'_> {
    async fn load(&mut self, org_id: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE org_id = $1 AND id = $2");
        let query = sqlx::query(&sql).bind(org_id).bind(id.to_string());
        let row = query.fetch_optional(self.scoped(org_id).await?).await.context("loading a record")?;
        row.map(|r| record_from_row(&r)).transpose()
    }

    async fn find_link(&mut self, key: &LinkKey) -> Result<Option<Uuid>, StoreError> {
        let (org, entity, app, realm, ext) = key;
        let query = sqlx::query_scalar::<_, String>(
            "SELECT record_id FROM id_links WHERE org_id = $1 AND entity = $2 AND app_id = $3 AND realm = $4 AND external_id = $5",
        )
        .bind(org)
        .bind(entity)
        .bind(app)
        .bind(realm)
        .bind(ext);
        let id = query.fetch_optional(self.scoped(org).await?).await.context("looking up an external id")?;
        id.as_deref().map(parse_uuid).transpose()
    }

    async fn find_links(&mut self, scope: &LinkScope, names: &[String]) -> Result<Vec<(String, Uuid)>, StoreError> {
        let (org, entity, app, realm) = scope;
        // One primary-key lookup per name. `external_id = ANY($5)` reads the
        // same, but on a table not yet analyzed the planner takes the array
        // as a filter over every link of the app: 70 ms per call at 70k links.
        // The lateral subquery (kept apart by `OFFSET 0`) can only be an
        // index lookup on all the key's columns.
        let query = sqlx::query_as::<_, (String, String)>(
            "SELECT l.external_id, l.record_id FROM unnest($5::text[]) AS wanted(ext) CROSS JOIN LATERAL \
             (SELECT external_id, record_id FROM id_links \
              WHERE org_id = $1 AND entity = $2 AND app_id = $3 AND realm = $4 AND external_id = wanted.ext OFFSET 0) l",
        )
        .bind(org)
        .bind(entity)
        .bind(app)
        .bind(realm)
        .bind(names);
        let rows = query.fetch_all(self.scoped(org).await?).await.context("reading external ids ahead")?;
        rows.into_iter().map(|(ext, id)| Ok((ext, parse_uuid(&id)?))).collect()
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
        let row = query.fetch_optional(self.scoped(org_id).await?).await.context("matching a record")?;
        row.map(|r| parse_uuid(r.get::<&str, _>(0))).transpose()
    }

    async fn find_singleton(&mut self, org_id: &str, entity: &str) -> Result<Option<Uuid>, StoreError> {
        let query = sqlx::query_scalar::<_, String>(
            "SELECT id FROM records WHERE org_id = $1 AND entity = $2 ORDER BY created_at, id LIMIT 1",
        )
        .bind(org_id)
        .bind(entity);
        let id = query.fetch_optional(self.scoped(org_id).await?).await.context("finding a singleton record")?;
        id.as_deref().map(parse_uuid).transpose()
    }

    async fn last_seq(&mut self, org_id: &str) -> Result<i64, StoreError> {
        // The writer locked this row when the transaction began.
        let query = sqlx::query_scalar("SELECT last_seq FROM orgs WHERE id = $1").bind(org_id);
        query.fetch_one(&mut *self.conn).await.context("numbering a change")
    }

    async fn write_records(&mut self, org_id: &str, records: &[RecordRow]) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO records (org_id, id, entity, data, version, content_hash, created_at, updated_at, archived) \
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::int8[], $6::bytea[], $7::int8[], $8::int8[], $9::bool[]) \
             ON CONFLICT (org_id, id) DO UPDATE SET data = excluded.data, version = excluded.version, \
             content_hash = excluded.content_hash, updated_at = excluded.updated_at, archived = excluded.archived",
        )
        .bind(org_id)
        .bind(records.iter().map(|r| r.id.to_string()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.entity.as_str()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.data.as_str()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.version).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.content_hash.to_vec()).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.updated_at).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.archived).collect::<Vec<_>>());
        query.execute(self.scoped(org_id).await?).await.context("writing records")?;
        Ok(())
    }

    async fn write_links(&mut self, org_id: &str, links: &[(LinkKey, Uuid)]) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO id_links (org_id, entity, app_id, realm, external_id, record_id) \
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(org_id)
        .bind(links.iter().map(|(k, _)| k.1.clone()).collect::<Vec<_>>())
        .bind(links.iter().map(|(k, _)| k.2.clone()).collect::<Vec<_>>())
        .bind(links.iter().map(|(k, _)| k.3.clone()).collect::<Vec<_>>())
        .bind(links.iter().map(|(k, _)| k.4.clone()).collect::<Vec<_>>())
        .bind(links.iter().map(|(_, id)| id.to_string()).collect::<Vec<_>>());
        query.execute(self.scoped(org_id).await?).await.context("linking external ids")?;
        Ok(())
    }

    async fn write_changes(&mut self, org_id: &str, changes: &[PendingChange]) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO changes (org_id, seq, entity, record_id, version, origin_app, kind, at) \
             SELECT $1, * FROM unnest($2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::text[], $8::int8[])",
        )
        .bind(org_id)
        .bind(changes.iter().map(|c| c.seq).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.entity.clone()).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.record_id.to_string()).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.version).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.origin_app.clone()).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>())
        .bind(changes.iter().map(|c| c.at).collect::<Vec<_>>());
        query.execute(self.scoped(org_id).await?).await.context("logging changes")?;

        let last = changes.iter().map(|c| c.seq).max().unwrap_or_default();
        let query =
            sqlx::query("UPDATE orgs SET last_seq = GREATEST(last_seq, $2) WHERE id = $1").bind(org_id).bind(last);
        query.execute(&mut *self.conn).await.context("numbering changes")?;
        Ok(())
    }
}

/// The query of [`WriteConn::find_matching`]: each field's keys and value are
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
