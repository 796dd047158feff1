//! The reads the write rules need, on any SQLite executor: the write
//! connection (through [`super::buffer::BufferedTx`], which answers what its
//! job already wrote itself) or the read pool.

use serde_json::Value;
use sqlx::{Executor, Row, Sqlite};
use uuid::Uuid;

use super::rows::{record_from_row, RECORD_COLUMNS};
use crate::error::Context;
use crate::{StoreError, StoredRecord};

/// The SQLite JSON path of a field path: `$."email"."address"`. Keys were
/// checked to be `[A-Za-z0-9_]` before they get here.
pub(crate) fn json_path(keys: &[String]) -> String {
    let mut path = String::from("$");
    for key in keys {
        path.push_str(&format!(".\"{key}\""));
    }
    path
}

pub(crate) async fn load<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    org_id: &str,
    id: Uuid,
) -> Result<Option<StoredRecord>, StoreError> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE org_id = ? AND id = ?");
    let row =
        sqlx::query(&sql).bind(org_id).bind(id.to_string()).fetch_optional(db).await.context("loading a record")?;
    row.map(|r| record_from_row(&r)).transpose()
}

/// The record an app's own id names.
pub(crate) async fn find_link<'e>(
    db: impl Executor<'e, Database = Sqlite>,
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
    .fetch_optional(db)
    .await
    .context("looking up an external id")?;
    row.map(|r| parse_uuid(r.get::<&str, _>(0))).transpose()
}

/// A live record of `entity` whose fields at the given paths equal the values.
pub(crate) async fn find_matching<'e>(
    db: impl Executor<'e, Database = Sqlite>,
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
    let row = query.fetch_optional(db).await.context("matching a record")?;
    row.map(|r| parse_uuid(r.get::<&str, _>(0))).transpose()
}

pub(crate) async fn find_singleton<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    org_id: &str,
    entity: &str,
) -> Result<Option<Uuid>, StoreError> {
    let row = sqlx::query("SELECT id FROM records WHERE org_id = ? AND entity = ? ORDER BY created_at LIMIT 1")
        .bind(org_id)
        .bind(entity)
        .fetch_optional(db)
        .await
        .context("finding a singleton record")?;
    row.map(|r| parse_uuid(r.get::<&str, _>(0))).transpose()
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("bad record id {s:?} in the database: {e}")))
}
