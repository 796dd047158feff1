//! Reading rows of the PostgreSQL tables into store types.

use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::{Change, ChangeKind, StoreError, StoredRecord};

/// The columns [`record_from_row`] reads, in order.
pub(crate) const RECORD_COLUMNS: &str =
    "org_id, id, entity, data, version, content_hash, created_at, updated_at, archived";

/// The columns [`change_from_row`] reads, in order.
pub(crate) const CHANGE_COLUMNS: &str = "org_id, seq, entity, record_id, version, origin_app, kind, at";

pub(crate) fn record_from_row(row: &PgRow) -> Result<StoredRecord, StoreError> {
    let data: &str = row.try_get(3).map_err(corrupt)?;
    let hash: Vec<u8> = row.try_get(5).map_err(corrupt)?;
    Ok(StoredRecord {
        org_id: row.try_get(0).map_err(corrupt)?,
        id: parse_uuid(row.try_get(1).map_err(corrupt)?)?,
        entity: row.try_get(2).map_err(corrupt)?,
        data: serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("bad record data: {e}")))?,
        version: row.try_get(4).map_err(corrupt)?,
        content_hash: hash.try_into().map_err(|_| StoreError::Corrupt("bad content hash".into()))?,
        created_at: timestamp(row.try_get(6).map_err(corrupt)?)?,
        updated_at: timestamp(row.try_get(7).map_err(corrupt)?)?,
        archived: row.try_get(8).map_err(corrupt)?,
    })
}

pub(crate) fn change_from_row(row: &PgRow) -> Result<Change, StoreError> {
    let kind: &str = row.try_get(6).map_err(corrupt)?;
    Ok(Change {
        org_id: row.try_get(0).map_err(corrupt)?,
        seq: row.try_get(1).map_err(corrupt)?,
        entity: row.try_get(2).map_err(corrupt)?,
        record_id: parse_uuid(row.try_get(3).map_err(corrupt)?)?,
        version: row.try_get(4).map_err(corrupt)?,
        origin_app: row.try_get(5).map_err(corrupt)?,
        kind: ChangeKind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("bad change kind {kind:?}")))?,
        at: timestamp(row.try_get(7).map_err(corrupt)?)?,
    })
}

/// A column that does not decode as the schema says.
pub(crate) fn corrupt(e: sqlx::Error) -> StoreError {
    StoreError::Corrupt(format!("unexpected column: {e}"))
}

/// A stored time (unix microseconds) as a timestamp.
pub(crate) fn timestamp(micros: i64) -> Result<jiff::Timestamp, StoreError> {
    jiff::Timestamp::from_microsecond(micros).map_err(|e| StoreError::Corrupt(format!("bad timestamp {micros}: {e}")))
}

pub(crate) fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("bad record id {s:?} in the database: {e}")))
}

/// A stored count that must fit the type the store answers.
pub(crate) fn count<T: TryFrom<i64>>(value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt(format!("count {value} out of range")))
}
