//! The records and platform objects the store keeps.
//!
//! Times serialise the way the API shows every time: UTC, RFC 3339, `Z`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A customer organization (tenant).
#[derive(Debug, Clone, Serialize)]
pub struct Org {
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "utc")]
    pub created_at: jiff::Timestamp,
}

/// What an app may do with one shared entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityAccess {
    pub entity: String,
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
    /// Send webhooks for this entity (only when it may also read it).
    #[serde(default)]
    pub subscribe: bool,
}

/// An application registered on the developer platform.
#[derive(Clone, Serialize)]
pub struct App {
    pub id: String,
    pub name: String,
    pub provider: String,
    #[serde(skip)]
    pub api_key: String,
    #[serde(skip)]
    pub webhook_secret: String,
    pub notification_url: Option<String>,
    /// Why webhooks to this app are stopped (e.g. its endpoint answered 410).
    pub endpoint_disabled: Option<String>,
    pub entities: Vec<EntityAccess>,
    #[serde(serialize_with = "utc")]
    pub created_at: jiff::Timestamp,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("notification_url", &self.notification_url)
            .finish_non_exhaustive()
    }
}

impl App {
    pub fn access(&self, entity: &str) -> Option<&EntityAccess> {
        self.entities.iter().find(|e| e.entity == entity)
    }

    pub fn can_read(&self, entity: &str) -> bool {
        self.access(entity).is_some_and(|a| a.read)
    }

    pub fn can_write(&self, entity: &str) -> bool {
        self.access(entity).is_some_and(|a| a.write)
    }

    /// Whether webhooks for `entity` go to this app.
    pub fn wants(&self, entity: &str) -> bool {
        self.access(entity).is_some_and(|a| a.read && a.subscribe)
    }
}

/// A new app, as an administrator registers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApp {
    pub name: String,
    pub provider: String,
    #[serde(default)]
    pub notification_url: Option<String>,
    #[serde(default)]
    pub entities: Vec<EntityAccess>,
}

/// Why an endpoint is disabled when an administrator stopped it.
pub(crate) const STOPPED_BY_ADMIN: &str = "stopped by an administrator";

/// Changes to an app; fields left out stay as they are. A field it does not
/// have (`provider`, which never changes, or a misspelling) is refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppUpdate {
    pub name: Option<String>,
    /// `Some(None)` clears the URL.
    #[serde(default, with = "double_option")]
    pub notification_url: Option<Option<String>>,
    pub entities: Option<Vec<EntityAccess>>,
    /// `true` resumes deliveries stopped by a 410 or by hand; `false` stops them.
    pub endpoint_enabled: Option<bool>,
}

impl AppUpdate {
    /// A new URL, or an endpoint turned back on, is a reason to try a batch
    /// waiting for its retry at once rather than when its delay ends (up to
    /// a day, or what the receiver's Retry-After asked).
    pub fn brings_delivery_forward(&self) -> bool {
        self.notification_url.as_ref().is_some_and(Option::is_some) || self.endpoint_enabled == Some(true)
    }
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// The secrets of a new or rotated app, shown once.
#[derive(Debug, Clone, Serialize)]
pub struct AppSecrets {
    pub api_id: String,
    pub api_key: String,
    pub webhook_secret: String,
}

/// An app installed in an organization.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub id: String,
    pub app_id: String,
    pub org_id: String,
    /// The app's account in the organization: the realm of its id entries.
    pub realm: String,
    #[serde(serialize_with = "utc")]
    pub created_at: jiff::Timestamp,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub org_id: String,
    pub entity: String,
    pub id: Uuid,
    pub data: Value,
    pub version: i64,
    pub content_hash: [u8; 32],
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    pub archived: bool,
}

impl StoredRecord {
    pub fn view(&self) -> sharehub_model::view::RecordView<'_> {
        sharehub_model::view::RecordView {
            id: self.id,
            org_id: &self.org_id,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            archived: self.archived,
            data: &self.data,
        }
    }
}

/// What a change did to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
    Archived,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "created" => Some(ChangeKind::Created),
            "updated" => Some(ChangeKind::Updated),
            "archived" => Some(ChangeKind::Archived),
            _ => None,
        }
    }
}

/// One entry of an organization's change log.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub org_id: String,
    pub seq: i64,
    pub entity: String,
    pub record_id: Uuid,
    pub version: i64,
    pub origin_app: Option<String>,
    pub kind: ChangeKind,
    pub at: jiff::Timestamp,
}

/// A page of records of one entity of one organization.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub org_id: String,
    pub entity: String,
    pub filter: Option<sharehub_model::filter::Expr>,
    pub order_by: Vec<sharehub_model::filter::OrderKey>,
    pub top: u32,
    pub skip: u64,
}

/// An answer saved under an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct SavedResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub created_at: jiff::Timestamp,
}

/// Where a delivered batch leaves an organization's cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorMove {
    pub org_id: String,
    pub to_seq: i64,
}

/// A record carried by a webhook batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRecord {
    pub org_id: String,
    pub entity: String,
    pub id: Uuid,
}

/// A webhook batch waiting for a 2xx.
#[derive(Debug, Clone)]
pub struct PendingBatch {
    pub app_id: String,
    pub webhook_id: String,
    pub body: Vec<u8>,
    pub ranges: Vec<CursorMove>,
    pub records: Vec<BatchRecord>,
    pub attempts: u32,
    pub next_attempt_at: jiff::Timestamp,
    pub created_at: jiff::Timestamp,
    pub last_error: Option<String>,
}

/// One attempt in the delivery log.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryAttempt {
    pub webhook_id: String,
    pub attempt: u32,
    #[serde(serialize_with = "utc")]
    pub at: jiff::Timestamp,
    pub status: Option<u16>,
    pub outcome: String,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub record_count: u32,
}

/// A batch set aside after its last retry.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub webhook_id: String,
    pub app_id: String,
    #[serde(skip)]
    pub body: Vec<u8>,
    pub records: Vec<BatchRecord>,
    pub record_count: u32,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[serde(serialize_with = "utc")]
    pub created_at: jiff::Timestamp,
    #[serde(serialize_with = "utc_opt")]
    pub resent_at: Option<jiff::Timestamp>,
}

fn utc<S: serde::Serializer>(ts: &jiff::Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&sharehub_model::view::format_timestamp(*ts))
}

fn utc_opt<S: serde::Serializer>(ts: &Option<jiff::Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => utc(ts, s),
        None => s.serialize_none(),
    }
}
