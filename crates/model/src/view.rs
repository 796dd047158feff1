//! How one record is shown to one app.
//!
//! Records are stored with references as plain hub ids. Each reader sees them
//! in its own view: with `CONNEC-EXTERNAL-IDS: true`, the record's `id` and
//! every reference become id arrays holding the hub's own entry and one entry
//! per app that linked its own id; otherwise they stay plain hub ids.

use std::collections::HashMap;

use jiff::fmt::temporal::DateTimePrinter;
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::catalog::{self, EntityDef};

/// One app's own id for a record: an entry of an id array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub provider: String,
    pub realm: String,
    pub id: String,
}

/// The stored parts of a record that a view needs.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    pub id: Uuid,
    pub org_id: &'a str,
    pub version: i64,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
    pub archived: bool,
    pub data: &'a Value,
}

/// Who is reading: the group (app in organization) and the id form it asked for.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub group_id: &'a str,
    pub external_ids: bool,
}

/// Links of the records a view touches (the record and what it references).
pub type LinkMap = HashMap<Uuid, Vec<Link>>;

/// Formats a timestamp the way the API shows every time: UTC, RFC 3339, `Z`,
/// with milliseconds so that records written within one second stay ordered.
pub fn format_timestamp(ts: jiff::Timestamp) -> String {
    // jiff's RFC 3339 printer, not strftime: this runs twice for every record
    // shown, and strftime reads its format string every time.
    const PRINTER: DateTimePrinter = DateTimePrinter::new().precision(Some(3));
    PRINTER.timestamp_to_string(&ts)
}

/// The time of a write, to the millisecond the API shows: a record's
/// `updated_at` read back then filters equal to itself (`updated_at eq '…'`).
pub fn write_time() -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)
}

/// Renders `record` of entity `def` for `viewer`.
pub fn render(def: &EntityDef, record: &RecordView<'_>, viewer: &Viewer<'_>, links: &LinkMap) -> Value {
    render_data(def, record, record.data.clone(), viewer, links)
}

/// [`render`] with the record's data given by value (`record.data` is not
/// read), for a caller that owns it and need not copy it.
pub fn render_data(
    def: &EntityDef,
    record: &RecordView<'_>,
    mut data: Value,
    viewer: &Viewer<'_>,
    links: &LinkMap,
) -> Value {
    if viewer.external_ids {
        rewrite_references(def, &mut data, record.org_id, links);
    }
    let id = id_value(record.id, record.org_id, viewer.external_ids, links);

    let mut out = Map::new();
    out.insert("id".into(), id);
    out.insert("group_id".into(), Value::String(viewer.group_id.to_string()));
    out.insert("channel_id".into(), Value::String(record.org_id.to_string()));
    out.insert("resource_type".into(), Value::String(def.name.to_string()));
    out.insert("version".into(), json!(record.version));
    out.insert("created_at".into(), Value::String(format_timestamp(record.created_at)));
    out.insert("updated_at".into(), Value::String(format_timestamp(record.updated_at)));
    if record.archived {
        out.insert("archived".into(), Value::Bool(true));
    }
    if let Value::Object(fields) = data {
        for (key, value) in fields {
            out.entry(key).or_insert(value);
        }
    }
    Value::Object(out)
}

/// The `id` of a record: the hub id, or the id array with every link.
pub fn id_value(id: Uuid, org_id: &str, external_ids: bool, links: &LinkMap) -> Value {
    if !external_ids {
        return Value::String(id.to_string());
    }
    let mut entries = vec![json!({"provider": "connec", "realm": org_id, "id": id.to_string()})];
    for link in links.get(&id).into_iter().flatten() {
        entries.push(json!({"provider": link.provider, "realm": link.realm, "id": link.id}));
    }
    Value::Array(entries)
}

fn rewrite_references(def: &EntityDef, data: &mut Value, org_id: &str, links: &LinkMap) {
    // A reference that does not hold a hub id (old data, free-form entities)
    // is shown as stored rather than failing the whole read.
    let _ = catalog::for_each_reference_mut(def, data, |_, _, value| {
        if let Some(id) = value.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
            *value = id_value(id, org_id, true, links);
        }
        Ok(())
    });
}

/// The hub ids that `data` references, so callers can load their links in one query.
pub fn referenced_ids(def: &EntityDef, data: &Value) -> Vec<Uuid> {
    let mut ids = Vec::new();
    catalog::for_each_reference(def, data, |_, _, value| {
        if let Some(id) = value.as_str().and_then(|s| Uuid::parse_str(s).ok()) {
            ids.push(id);
        }
    });
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_show_in_utc_with_three_fraction_digits_and_z() {
        let cases = [
            ("2024-02-29T23:59:59.999999999Z", "2024-02-29T23:59:59.999Z"),
            ("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00.000Z"),
            ("1970-01-01T00:00:00.0005Z", "1970-01-01T00:00:00.000Z"),
            ("2026-12-04T11:30:05.120Z", "2026-12-04T11:30:05.120Z"),
        ];
        for (input, shown) in cases {
            let ts: jiff::Timestamp = input.parse().unwrap();
            assert_eq!(format_timestamp(ts), shown, "{input}");
            // The same text as the strftime format it replaced.
            assert_eq!(format_timestamp(ts), ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(), "{input}");
        }
    }
}
