//! What an application adapter implements: the app's side of the bridge.
//!
//! Records cross this boundary as JSON objects in the app's own shape; the
//! [`crate::mapping`] turns them into hub records and back.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Result;

/// One record of the app, as the app stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppRecord {
    /// The app's own id of the record (its key, as text).
    pub id: String,
    /// When the app last changed it.
    pub updated_at: Timestamp,
    /// The record's fields in the app's shape (child rows as arrays).
    pub fields: Map<String, Value>,
    /// Whether the app marks it inactive (deleted, archived): the hub
    /// record of its primary targets is then archived.
    pub inactive: bool,
    /// Why the adapter could not read all of the record (a column in an
    /// encoding it cannot decode, say). Such a record is recorded as failing
    /// and not shared; the records after it are.
    pub unreadable: Option<String>,
}

/// Where a listing of changed records resumes: after this updated-at and,
/// among records sharing it, after this id (keyset order `(updated_at, id)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub updated_at: Timestamp,
    pub id: String,
}

/// A page of changed records in `(updated_at, id)` order.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<AppRecord>,
    /// Whether more records follow the last one.
    pub has_more: bool,
}

/// An application as the connector sees it. One adapter serves one
/// organization's app instance (one database, one API account).
#[async_trait]
pub trait AppAdapter: Send + Sync {
    /// Records of `entity` changed after `after` (all of them when `None`),
    /// in `(updated_at, id)` order, at most `limit`.
    async fn list_changed(&self, entity: &str, after: Option<&Cursor>, limit: usize) -> Result<Page>;

    /// One record by the app's id; `None` when it does not exist.
    async fn fetch(&self, entity: &str, id: &str) -> Result<Option<AppRecord>>;

    /// Creates a record from `fields`; answers it as stored (with its new id).
    async fn create(&self, entity: &str, fields: Map<String, Value>) -> Result<AppRecord>;

    /// Merges `fields` into an existing record; answers it as stored.
    async fn update(&self, entity: &str, id: &str, fields: Map<String, Value>) -> Result<AppRecord>;

    /// Marks a record inactive (the hub archived it). Apps without such a
    /// notion may do nothing: nothing is ever deleted by the connector.
    async fn mark_inactive(&self, entity: &str, id: &str) -> Result<()>;

    /// How many hub records the connector may apply to this app at once
    /// (each a `fetch`, `create` or `update` call of its own). The default,
    /// one, suits an app that cannot take concurrent writes (a SQLite file);
    /// an app behind a connection pool or an API with parallel requests
    /// answers more, and imports into it go that much faster.
    fn concurrent_writes(&self) -> usize {
        1
    }
}
