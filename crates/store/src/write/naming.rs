//! How a write names records: the body's `id` (hub id, the caller's own
//! external id, or only other apps' entries), references to other records,
//! and the record a write is aimed at (by id, external id, matching fields or
//! the singleton).

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Caller, Target, WriteOp, WriteTx};
use crate::{StoreError, StoredRecord, WriteError};
use sharehub_model::{catalog, FieldError};

/// How the client named the record in the body's `id`.
#[derive(Debug, Clone)]
pub(crate) enum BodyId {
    Absent,
    Hub(Uuid),
    External(String),
    OthersOnly,
}

pub(super) fn invalid(path: &str, message: &str) -> WriteError {
    WriteError::Invalid(vec![FieldError::new(path, message)])
}

pub(super) fn read_body_id(body: &Map<String, Value>, caller: &crate::write::Caller) -> Result<BodyId, WriteError> {
    match body.get("id") {
        None | Some(Value::Null) => Ok(BodyId::Absent),
        Some(Value::String(s)) => {
            Uuid::parse_str(s).map(BodyId::Hub).map_err(|_| invalid("id", "expected a hub id (UUID) or an id array"))
        }
        Some(Value::Array(entries)) => read_id_entries(entries, caller),
        Some(_) => Err(invalid("id", "expected a hub id (UUID) or an id array")),
    }
}

pub(super) fn read_id_entries(entries: &[Value], caller: &Caller) -> Result<BodyId, WriteError> {
    read_id_array(entries, caller).map_err(|e| WriteError::Invalid(vec![e.under("id")]))
}

/// The id an id array names for `caller`, or what is wrong with it (at a
/// path within the array, such as `0/realm`).
fn read_id_array(entries: &[Value], caller: &Caller) -> Result<BodyId, FieldError> {
    let mut hub = None;
    let mut own: Option<String> = None;
    for (i, entry) in entries.iter().enumerate() {
        let field = |name: &str| entry.get(name).and_then(Value::as_str);
        if !entry.is_object() {
            return Err(FieldError::new(i.to_string(), "expected {\"provider\", \"realm\", \"id\"}"));
        }
        let Some(provider) = field("provider") else {
            return Err(FieldError::new(format!("{i}/provider"), "expected the name of the app's provider (a string)"));
        };
        let Some(id) = id_text(entry.get("id")) else {
            return Err(FieldError::new(format!("{i}/id"), id_problem(entry.get("id"))));
        };
        if provider == caller.provider {
            check_own_realm(entry, caller).map_err(|why| FieldError::new(format!("{i}/realm"), why))?;
            // Two ids of one app for one record: which one to keep is a guess.
            if own.as_ref().is_some_and(|first| *first != id) {
                return Err(FieldError::new(format!("{i}/id"), "a second id of your app; send one"));
            }
            own = Some(id);
        } else if provider == "connec" {
            hub = Uuid::parse_str(&id).ok().map(BodyId::Hub);
        }
    }
    Ok(own.map(BodyId::External).or(hub).unwrap_or(BodyId::OthersOnly))
}

/// An entry of the caller's provider under another realm would be dropped,
/// and the record created again, unlinked, on every send.
fn check_own_realm(entry: &Value, caller: &Caller) -> Result<(), String> {
    match entry.get("realm").filter(|r| !r.is_null()) {
        Some(realm) if realm.as_str() != Some(caller.realm.as_str()) => {
            Err(format!("this app's realm in this organization is {:?}: send it or leave realm out", caller.realm))
        }
        _ => Ok(()),
    }
}

/// The longest external id, in characters. Ids are indexed with their
/// organization, entity, app and realm, and PostgreSQL's index rows are
/// limited to about 2.7 kB; real apps' ids (numbers, UUIDs, paths) are far
/// shorter.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;

/// Why a value is no external id (see [`id_text`]).
fn id_problem(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(s)) if s.contains('\0') => "must not contain U+0000".into(),
        Some(Value::String(s)) if s.is_empty() => "must not be empty".into(),
        Some(Value::String(_) | Value::Number(_)) if is_too_long(value) => {
            format!("must be at most {MAX_EXTERNAL_ID_CHARS} characters")
        }
        _ => "expected the app's own id (a string or a whole number)".into(),
    }
}

fn is_too_long(value: Option<&Value>) -> bool {
    match value {
        Some(Value::String(s)) => s.chars().count() > MAX_EXTERNAL_ID_CHARS,
        Some(Value::Number(n)) => n.to_string().len() > MAX_EXTERNAL_ID_CHARS,
        _ => false,
    }
}

/// An external id as text: apps send their ids as strings or as whole
/// numbers (`1e3` or `1.5` names no row of theirs). Text with U+0000 is no id
/// (no backend can store it).
pub(super) fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if is_storable_id(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()).filter(|t| is_whole_number(t) && is_storable_id(t)),
        _ => None,
    }
}

fn is_whole_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_storable_id(s: &str) -> bool {
    !s.is_empty() && !s.contains('\0') && s.chars().count() <= MAX_EXTERNAL_ID_CHARS
}

pub(super) fn take_matching_fields(body: &mut Map<String, Value>, out: &mut Vec<String>) -> Result<(), WriteError> {
    let Some(opts) = body.get("opts") else { return Ok(()) };
    let Some(fields) = opts.get("matching_fields") else { return Ok(()) };
    let Some(fields) = fields.as_array() else {
        return Err(invalid("opts/matching_fields", "expected an array of field paths"));
    };
    for field in fields {
        match field.as_str() {
            Some(path) if valid_path(path) => out.push(path.to_string()),
            _ => return Err(invalid("opts/matching_fields", "expected field paths like \"email/address\"")),
        }
    }
    Ok(())
}

pub(super) fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

pub(super) async fn resolve_references<T: WriteTx + ?Sized>(
    tx: &mut T,
    op: &WriteOp,
    patch: &mut Value,
) -> Result<Result<(), WriteError>, StoreError> {
    let mut wanted = Vec::new();
    catalog::for_each_reference(op.entity, patch, |reference, path, value| {
        wanted.push((reference.target, path.to_string(), value.clone()));
    });

    let mut resolved = Vec::with_capacity(wanted.len());
    let mut errors = Vec::new();
    for (target, path, value) in wanted {
        match resolve_one(tx, op, target, &value).await? {
            Ok(id) => resolved.push((path, id)),
            Err(error) => errors.push(error.under(&path)),
        }
    }
    if !errors.is_empty() {
        return Ok(Err(WriteError::Invalid(errors)));
    }

    let mut resolved = resolved.into_iter();
    let rewrite = catalog::for_each_reference_mut(op.entity, patch, |_, _, value| {
        if let Some((_, id)) = resolved.next() {
            *value = Value::String(id.to_string());
        }
        Ok(())
    });
    Ok(rewrite.map_err(WriteError::Invalid))
}

/// The hub id a reference names, or what is wrong with it (at a path within
/// the reference, empty for the reference itself).
pub(super) async fn resolve_one<T: WriteTx + ?Sized>(
    tx: &mut T,
    op: &WriteOp,
    target: &str,
    value: &Value,
) -> Result<Result<Uuid, FieldError>, StoreError> {
    let not_an_id = || FieldError::new("", format!("expected a hub id of {target} or an id array"));
    let named = match value {
        Value::String(s) => Uuid::parse_str(s).map(BodyId::Hub).map_err(|_| not_an_id()),
        Value::Array(entries) => read_id_array(entries, &op.caller),
        _ => Err(not_an_id()),
    };
    let named = match named {
        Ok(named) => named,
        Err(error) => return Ok(Err(error)),
    };

    let found = match &named {
        BodyId::Hub(id) => tx.load(&op.org_id, *id).await?.filter(|r| r.entity == target).map(|r| r.id),
        BodyId::External(ext) => tx.find_link(&op.org_id, target, &op.caller.app_id, &op.caller.realm, ext).await?,
        BodyId::Absent | BodyId::OthersOnly => None,
    };
    Ok(found.ok_or_else(|| {
        let why = match named {
            BodyId::External(ext) => format!("no {target} record has your id {ext:?}"),
            BodyId::Hub(id) => format!("no {target} record {id} in this organization"),
            _ => format!("the id array holds neither your id nor a hub id of {target}"),
        };
        FieldError::new("", why)
    }))
}

pub(super) async fn find_target<T: WriteTx + ?Sized>(
    tx: &mut T,
    op: &WriteOp,
    body_id: &BodyId,
    patch: &Map<String, Value>,
) -> Result<Result<Option<StoredRecord>, WriteError>, StoreError> {
    let org = op.org_id.as_str();
    let entity = op.entity.name;
    let id = match (op.target, body_id) {
        (Target::Id(id), BodyId::Hub(named)) if *named != id => {
            return Ok(Err(WriteError::Conflict(format!(
                "the body's id {named} names another record than the URL's {id}"
            ))))
        }
        (Target::Id(id), _) => Some(id),
        (Target::New, BodyId::Hub(_)) => {
            return Ok(Err(WriteError::Conflict(format!(
                "a POST cannot name a hub id; update the record with PUT /{entity}/{{id}} or send your own id entry"
            ))))
        }
        (Target::Singleton, _) => tx.find_singleton(org, entity).await?,
        (Target::New, BodyId::External(ext)) => {
            match tx.find_link(org, entity, &op.caller.app_id, &op.caller.realm, ext).await? {
                Some(id) => Some(id),
                None => find_by_matching(tx, op, patch).await?,
            }
        }
        (Target::New, _) => find_by_matching(tx, op, patch).await?,
    };
    let Some(id) = id else { return Ok(Ok(None)) };
    let record = tx.load(org, id).await?.filter(|r| r.entity == entity);
    Ok(Ok(record))
}

pub(super) async fn find_by_matching<T: WriteTx + ?Sized>(
    tx: &mut T,
    op: &WriteOp,
    patch: &Map<String, Value>,
) -> Result<Option<Uuid>, StoreError> {
    if op.matching_fields.is_empty() {
        return Ok(None);
    }
    let mut fields = Vec::with_capacity(op.matching_fields.len());
    for path in &op.matching_fields {
        let keys: Vec<String> = path.split('/').map(str::to_string).collect();
        match lookup(patch, &keys) {
            Some(value) if !value.is_null() => fields.push((keys, value.clone())),
            // A record that lacks a matching field matches nothing: create it.
            _ => return Ok(None),
        }
    }
    tx.find_matching(&op.org_id, op.entity.name, &fields).await
}

pub(super) fn lookup<'a>(object: &'a Map<String, Value>, keys: &[String]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let value = object.get(first)?;
    if rest.is_empty() {
        return Some(value);
    }
    lookup(value.as_object()?, rest)
}
