//! The write connection's side of [`BufferedTx`](crate::write::buffer::BufferedTx)
//! on SQLite: reads through [`super::tx`], and multi-row inserts.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::error::Context;
use crate::write::buffer::{LinkKey, LinkScope, PendingChange, RecordRow, WriteConn};
use crate::{StoreError, StoredRecord};

/// Rows per multi-row statement: a batch of 500 records is one statement
/// per table; 500 rows of 9 columns stay far under SQLite's limit of 32,766
/// bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

#[async_trait]
impl WriteConn for SqliteConnection {
    async fn load(&mut self, org_id: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError> {
        super::tx::load(self, org_id, id).await
    }

    async fn find_link(&mut self, key: &LinkKey) -> Result<Option<Uuid>, StoreError> {
        let (org, entity, app, realm, ext) = key;
        super::tx::find_link(self, org, entity, app, realm, ext).await
    }

    async fn find_links(&mut self, scope: &LinkScope, names: &[String]) -> Result<Vec<(String, Uuid)>, StoreError> {
        let (org, entity, app, realm) = scope;
        let mut found = Vec::new();
        for chunk in names.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new("SELECT external_id, record_id FROM id_links WHERE org_id = ");
            q.push_bind(org.clone()).push(" AND entity = ").push_bind(entity.clone());
            q.push(" AND app_id = ").push_bind(app.clone()).push(" AND realm = ").push_bind(realm.clone());
            q.push(" AND external_id IN (");
            let mut list = q.separated(", ");
            for ext in chunk {
                list.push_bind(ext.clone());
            }
            q.push(")");
            let rows = q.build().fetch_all(&mut *self).await.context("reading external ids ahead")?;
            for row in &rows {
                let (ext, id): (String, String) = (row.get(0), row.get(1));
                found.push((ext, super::tx::parse_uuid(&id)?));
            }
        }
        Ok(found)
    }

    async fn find_matching(
        &mut self,
        org_id: &str,
        entity: &str,
        fields: &[(Vec<String>, Value)],
    ) -> Result<Option<Uuid>, StoreError> {
        super::tx::find_matching(self, org_id, entity, fields).await
    }

    async fn find_singleton(&mut self, org_id: &str, entity: &str) -> Result<Option<Uuid>, StoreError> {
        super::tx::find_singleton(self, org_id, entity).await
    }

    async fn last_seq(&mut self, org_id: &str) -> Result<i64, StoreError> {
        // The one writer connection makes "the last seq + 1" safe.
        sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(seq), 0) FROM changes WHERE org_id = ?")
            .bind(org_id)
            .fetch_one(self)
            .await
            .context("numbering a change")
    }

    async fn write_records(&mut self, _org_id: &str, records: &[RecordRow]) -> Result<(), StoreError> {
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO records (org_id, id, entity, data, version, content_hash, created_at, updated_at, archived) ");
            q.push_values(chunk, |mut row, r| {
                row.push_bind(r.org_id.as_str())
                    .push_bind(r.id.to_string())
                    .push_bind(r.entity.as_str())
                    .push_bind(r.data.as_str())
                    .push_bind(r.version)
                    .push_bind(&r.content_hash[..])
                    .push_bind(r.created_at)
                    .push_bind(r.updated_at)
                    .push_bind(r.archived);
            });
            q.push(
                " ON CONFLICT (org_id, id) DO UPDATE SET data = excluded.data, version = excluded.version, \
                 content_hash = excluded.content_hash, updated_at = excluded.updated_at, archived = excluded.archived",
            );
            q.build().execute(&mut *self).await.context("writing records")?;
        }
        Ok(())
    }

    async fn write_links(&mut self, _org_id: &str, links: &[(LinkKey, Uuid)]) -> Result<(), StoreError> {
        for chunk in links.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO id_links (org_id, entity, app_id, realm, external_id, record_id) ",
            );
            q.push_values(chunk, |mut row, ((org, entity, app, realm, ext), record)| {
                row.push_bind(org.clone())
                    .push_bind(entity.clone())
                    .push_bind(app.clone())
                    .push_bind(realm.clone())
                    .push_bind(ext.clone())
                    .push_bind(record.to_string());
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *self).await.context("linking external ids")?;
        }
        Ok(())
    }

    async fn write_changes(&mut self, _org_id: &str, changes: &[PendingChange]) -> Result<(), StoreError> {
        for chunk in changes.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO changes (org_id, seq, entity, record_id, version, origin_app, kind, at) ",
            );
            q.push_values(chunk, |mut row, c| {
                row.push_bind(c.org_id.clone())
                    .push_bind(c.seq)
                    .push_bind(c.entity.clone())
                    .push_bind(c.record_id.to_string())
                    .push_bind(c.version)
                    .push_bind(c.origin_app.clone())
                    .push_bind(c.kind.as_str())
                    .push_bind(c.at);
            });
            q.build().execute(&mut *self).await.context("logging changes")?;
        }
        Ok(())
    }
}
