//! Reading rows of the SQLite tables into store types.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::tx::parse_uuid;
use crate::{StoreError, StoredRecord};

/// The columns [`record_from_row`] reads, in order.
pub(crate) const RECORD_COLUMNS: &str =
    "org_id, id, entity, data, version, content_hash, created_at, updated_at, archived";

pub(crate) fn record_from_row(row: &SqliteRow) -> Result<StoredRecord, StoreError> {
    let data: &str = row.get(3);
    let hash: Vec<u8> = row.get(5);
    Ok(StoredRecord {
        org_id: row.get(0),
        id: parse_uuid(row.get::<&str, _>(1))?,
        entity: row.get(2),
        data: serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("bad record data: {e}")))?,
        version: row.get(4),
        content_hash: hash.try_into().map_err(|_| StoreError::Corrupt("bad content hash".into()))?,
        created_at: timestamp(row.get(6))?,
        updated_at: timestamp(row.get(7))?,
        archived: row.get(8),
    })
}

/// A stored time (unix microseconds) as a timestamp.
pub(crate) fn timestamp(micros: i64) -> Result<jiff::Timestamp, StoreError> {
    jiff::Timestamp::from_microsecond(micros).map_err(|e| StoreError::Corrupt(format!("bad timestamp {micros}: {e}")))
}
