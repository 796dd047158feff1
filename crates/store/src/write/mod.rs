//! The rules of a write, once for every backend.
//!
//! A [`WriteOp`] is one create, update, link or archive asked by one app. It
//! runs inside a backend transaction through [`WriteTx`]: the record, its
//! external-id links and its change-log entry are written together or not at
//! all. An op that breaks a rule answers a [`WriteError`] and writes nothing.

use async_trait::async_trait;
use serde_json::{Map, Value};
use sharehub_model::catalog::EntityDef;
use sharehub_model::{merge, schema, totals};
use uuid::Uuid;

use crate::{ChangeKind, StoreError, StoredRecord, WriteError};

pub(crate) mod buffer;
mod naming;

pub(crate) use naming::BodyId;
use naming::{find_target, invalid, read_body_id, resolve_references, take_matching_fields};

/// The app asking for a write, as seen in the organization it writes to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub app_id: String,
    pub provider: String,
    pub realm: String,
}

/// Which record a write is aimed at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A POST: a new record, or the one its external id or matching fields find.
    New,
    /// A PUT or DELETE of a record by hub id.
    Id(Uuid),
    /// The organization's one record of a singleton entity (`company`).
    Singleton,
}

/// One write asked by one app.
#[derive(Debug, Clone)]
pub struct WriteOp {
    pub org_id: String,
    pub caller: Caller,
    pub entity: &'static EntityDef,
    pub target: Target,
    /// The object the client sent (with its `id` array, if any).
    pub body: Map<String, Value>,
    /// `opts/matching_fields`: merge into a record whose listed fields are equal.
    pub matching_fields: Vec<String>,
    /// The version the client last read (`If-Match`).
    pub if_match: Option<i64>,
    /// Archive the record instead of writing fields (`DELETE`).
    pub archive: bool,
}

/// What a write did.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    Created(StoredRecord),
    Updated(StoredRecord),
    /// Nothing changed: no new version, no notification.
    Unchanged(StoredRecord),
}

impl WriteOutcome {
    pub fn record(&self) -> &StoredRecord {
        match self {
            WriteOutcome::Created(r) | WriteOutcome::Updated(r) | WriteOutcome::Unchanged(r) => r,
        }
    }

    pub fn into_record(self) -> StoredRecord {
        match self {
            WriteOutcome::Created(r) | WriteOutcome::Updated(r) | WriteOutcome::Unchanged(r) => r,
        }
    }
}

/// What the write rules need from a backend transaction.
#[async_trait]
pub trait WriteTx: Send {
    async fn load(&mut self, org_id: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError>;
    async fn find_link(
        &mut self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
    ) -> Result<Option<Uuid>, StoreError>;
    async fn add_link(
        &mut self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
        record_id: Uuid,
    ) -> Result<(), StoreError>;
    /// A live record of `entity` whose fields at the given paths equal the values.
    async fn find_matching(
        &mut self,
        org_id: &str,
        entity: &str,
        fields: &[(Vec<String>, Value)],
    ) -> Result<Option<Uuid>, StoreError>;
    async fn find_singleton(&mut self, org_id: &str, entity: &str) -> Result<Option<Uuid>, StoreError>;
    async fn insert(&mut self, record: &StoredRecord) -> Result<(), StoreError>;
    async fn update(&mut self, record: &StoredRecord) -> Result<(), StoreError>;
    /// Appends the change to the organization's log; returns its seq.
    async fn log_change(
        &mut self,
        record: &StoredRecord,
        origin_app: &str,
        kind: ChangeKind,
    ) -> Result<i64, StoreError>;
}

type OpResult = Result<Result<WriteOutcome, WriteError>, StoreError>;

/// A write op after the checks that need no database, done before it
/// reaches the write transaction (whose one connection is the bottleneck of
/// a busy hub): the `id` it names is read, the meta fields are gone from its
/// body and the rest is normalised. An op that failed them is kept with its
/// error, answered in its place.
#[derive(Debug, Clone)]
pub struct PreparedOp {
    pub(crate) op: WriteOp,
    pub(crate) checked: Result<BodyId, WriteError>,
}

impl PreparedOp {
    pub fn org_id(&self) -> &str {
        &self.op.org_id
    }
}

/// Runs the checks of `op` that need no database (see [`PreparedOp`]).
pub fn prepare(mut op: WriteOp) -> PreparedOp {
    let checked = check_body(&mut op);
    PreparedOp { op, checked }
}

fn check_body(op: &mut WriteOp) -> Result<BodyId, WriteError> {
    let body_id = read_body_id(&op.body, &op.caller)?;
    let matching = take_matching_fields(&mut op.body, &mut op.matching_fields);
    merge::strip_meta(&mut op.body);
    matching?;

    let mut patch = Value::Object(std::mem::take(&mut op.body));
    let normalized = schema::normalize(op.entity, &mut patch).map_err(WriteError::Invalid);
    if let Value::Object(patch) = patch {
        op.body = patch;
    }
    normalized.map(|()| body_id)
}

/// Prepares the ops of one call (see [`PreparedOp`]). A big call is split
/// across the cores (the write transaction waits for this; with one call in
/// flight, nothing else runs meanwhile).
pub fn prepare_all(ops: Vec<WriteOp>) -> Vec<PreparedOp> {
    sharehub_model::parallel::map_split(ops, prepare)
}

/// Runs one write.
pub async fn apply<T: WriteTx + ?Sized>(tx: &mut T, prepared: PreparedOp, now: jiff::Timestamp) -> OpResult {
    let PreparedOp { mut op, checked } = prepared;
    let body_id = match checked {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };

    let mut patch = Value::Object(std::mem::take(&mut op.body));
    if let Err(e) = resolve_references(tx, &op, &mut patch).await? {
        return Ok(Err(e));
    }
    let Value::Object(patch) = patch else {
        return Ok(Err(invalid("", "expected an object")));
    };

    let existing = match find_target(tx, &op, &body_id, &patch).await? {
        Ok(found) => found,
        Err(e) => return Ok(Err(e)),
    };
    let external_id = match body_id {
        BodyId::External(ext) => Some(ext),
        _ => None,
    };

    match existing {
        Some(record) => update_existing(tx, &op, record, patch, external_id, now).await,
        None if op.archive || matches!(op.target, Target::Id(_)) => Ok(Err(WriteError::NotFound)),
        None => create(tx, &op, patch, external_id, now).await,
    }
}

async fn create<T: WriteTx + ?Sized>(
    tx: &mut T,
    op: &WriteOp,
    patch: Map<String, Value>,
    external_id: Option<String>,
    now: jiff::Timestamp,
) -> OpResult {
    let mut data = patch;
    merge::drop_null_members(&mut data);
    let mut data = Value::Object(data);
    if let Err(errors) = totals::fill_amounts(op.entity, &mut data) {
        return Ok(Err(WriteError::Invalid(errors)));
    }
    if let Err(errors) = schema::validate(op.entity, &data) {
        return Ok(Err(WriteError::Invalid(errors)));
    }

    let record = StoredRecord {
        org_id: op.org_id.clone(),
        entity: op.entity.name.to_string(),
        id: sharehub_model::ids::new_record_id(),
        content_hash: merge::content_hash(&data),
        data,
        version: 1,
        created_at: now,
        updated_at: now,
        archived: false,
    };
    tx.insert(&record).await?;
    if let Some(ext) = external_id {
        tx.add_link(&op.org_id, op.entity.name, &op.caller.app_id, &op.caller.realm, &ext, record.id).await?;
    }
    tx.log_change(&record, &op.caller.app_id, ChangeKind::Created).await?;
    Ok(Ok(WriteOutcome::Created(record)))
}

async fn update_existing<T: WriteTx + ?Sized>(
    tx: &mut T,
    op: &WriteOp,
    old: StoredRecord,
    patch: Map<String, Value>,
    external_id: Option<String>,
    now: jiff::Timestamp,
) -> OpResult {
    // Every check comes before the first write, so a refused op has written
    // nothing and needs no rollback of its own.
    if let Some(expected) = op.if_match {
        if expected != old.version {
            return Ok(Err(WriteError::StaleVersion { current: old.version }));
        }
    }
    let new_link = match &external_id {
        Some(ext) => match check_link(tx, op, &old, ext).await? {
            Ok(new_link) => new_link.then_some(ext.as_str()),
            Err(e) => return Ok(Err(e)),
        },
        None => None,
    };
    let next = match next_state(op, &old, patch, now) {
        Ok(next) => next,
        Err(e) => return Ok(Err(e)),
    };

    if let Some(ext) = new_link {
        tx.add_link(&op.org_id, &old.entity, &op.caller.app_id, &op.caller.realm, ext, old.id).await?;
    }
    let Some((record, kind)) = next else {
        return Ok(Ok(WriteOutcome::Unchanged(old)));
    };
    tx.update(&record).await?;
    tx.log_change(&record, &op.caller.app_id, kind).await?;
    Ok(Ok(WriteOutcome::Updated(record)))
}

/// Whether `ext` still has to be linked to `record` (false: already is).
async fn check_link<T: WriteTx + ?Sized>(
    tx: &mut T,
    op: &WriteOp,
    record: &StoredRecord,
    ext: &str,
) -> Result<Result<bool, WriteError>, StoreError> {
    let linked = tx.find_link(&op.org_id, &record.entity, &op.caller.app_id, &op.caller.realm, ext).await?;
    Ok(match linked {
        Some(id) if id == record.id => Ok(false),
        Some(other) => Err(WriteError::Conflict(format!("your id {ext:?} is already linked to record {other}"))),
        None => Ok(true),
    })
}

/// The record after the op, or `None` when the op changes nothing.
fn next_state(
    op: &WriteOp,
    old: &StoredRecord,
    mut patch: Map<String, Value>,
    now: jiff::Timestamp,
) -> Result<Option<(StoredRecord, ChangeKind)>, WriteError> {
    if op.archive {
        if old.archived {
            return Ok(None);
        }
        let record = StoredRecord { version: old.version + 1, updated_at: now, archived: true, ..old.clone() };
        return Ok(Some((record, ChangeKind::Archived)));
    }

    totals::forget_echoed_totals(op.entity, &old.data, &mut patch);
    let mut data = old.data.as_object().cloned().unwrap_or_default();
    // New lines make the old amount stale: unless the same write sends an
    // amount, it is computed again from the new lines.
    if op.entity.lines && patch.contains_key("lines") && !patch.contains_key("amount") {
        data.shift_remove("amount");
    }
    merge::merge_patch(&mut data, patch);
    let mut data = Value::Object(data);
    totals::fill_amounts(op.entity, &mut data).map_err(WriteError::Invalid)?;
    schema::validate(op.entity, &data).map_err(WriteError::Invalid)?;

    let hash = merge::content_hash(&data);
    if hash == old.content_hash && !old.archived {
        return Ok(None);
    }
    // A write to an archived record brings it back: the app that wrote it
    // still has it, so it exists again for everyone.
    let record = StoredRecord {
        data,
        content_hash: hash,
        version: old.version + 1,
        updated_at: now,
        archived: false,
        ..old.clone()
    };
    Ok(Some((record, ChangeKind::Updated)))
}
