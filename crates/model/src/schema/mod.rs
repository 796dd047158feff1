//! JSON Schemas of the shared entities, normalisation of the values clients send and
//! validation of whole records.
//!
//! Each schema lives in `crates/model/schemas/{entity}.json` (draft 2020-12). Blocks
//! shared by several entities (address, phone, price, lines, ...) and the meta fields
//! the hub sets (`created_at`, `version`, ...) live once in `schemas/common.json` and
//! are merged into every entity schema when it is loaded, so each served schema is
//! self-contained. Every schema allows extra properties: Connec! apps send fields
//! nobody documented.
//!
//! Three custom formats drive [`normalize`] and [`validate`]:
//! * `decimal` on `{"type": ["number", "string"]}`: money, rates, quantities;
//! * `date-time`: RFC 3339 with an explicit offset, stored in UTC (and compared as
//!   instants by `$filter` / `$orderby`: [`date_time_fields`]);
//! * `date`: `YYYY-MM-DD`, or a date-time (Chinook gives `1962-02-18T00:00:00Z`).

mod formats;
mod normalize;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::catalog::{self, EntityDef};
use crate::filter::DateTimeFields;

pub use formats::canonical_date_time;
pub(crate) use formats::{decimal_to_json, parse_decimal};
pub use normalize::{normalize, nul_characters};
pub use validate::{prepare, validate};

/// The JSON Schema dialect of every schema.
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

const COMMON: &str = include_str!("../../schemas/common.json");

/// Embeds `schemas/{name}.json` for each entity name given.
macro_rules! schema_files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../schemas/", $name, ".json")))),*]
    };
}

/// Entity schema files, by entity name.
const FILES: &[(&str, &str)] = schema_files![
    "accounts",
    "company",
    "credit_notes",
    "employees",
    "invoices",
    "items",
    "organizations",
    "payments",
    "people",
    "purchase_orders",
    "quotes",
    "sales_orders",
    "tax_codes",
];

/// Every entity's schema, built once.
static SCHEMAS: LazyLock<HashMap<&'static str, Value>> = LazyLock::new(|| {
    let common: Value =
        serde_json::from_str(COMMON).unwrap_or_else(|e| panic!("embedded schemas/common.json is not JSON: {e}"));
    catalog::all().iter().map(|def| (def.name, build_schema(def, &common))).collect()
});

/// The JSON Schema served at `GET /api/v2/json_schema/{entity}`: the entity's schema
/// (with `$id` and `title`), or `{"type": "object", "title": ...}` for free-form entities.
pub fn json_schema(def: &EntityDef) -> &'static Value {
    // Callers may build an EntityDef of their own; anything unknown is free-form.
    static UNKNOWN: LazyLock<Value> =
        LazyLock::new(|| serde_json::json!({"$schema": DIALECT, "title": "unknown entity", "type": "object"}));
    SCHEMAS.get(def.name).unwrap_or(&UNKNOWN)
}

/// The date-time fields of `def` (`"format": "date-time"` in its schema) that a
/// `$filter` or `$orderby` can name, such as an invoice's `transaction_date`:
/// their stored values are all in UTC, and they compare as instants. None for
/// free-form entities (whose fields compare as text) or entities outside the
/// catalogue.
pub fn date_time_fields(def: &EntityDef) -> &'static DateTimeFields {
    static FIELDS: LazyLock<HashMap<&'static str, DateTimeFields>> = LazyLock::new(|| {
        catalog::all().iter().map(|def| (def.name, DateTimeFields::new(normalize::date_time_paths(def)))).collect()
    });
    static NONE: LazyLock<DateTimeFields> = LazyLock::new(DateTimeFields::default);
    FIELDS.get(def.name).unwrap_or(&NONE)
}

fn schema_id(name: &str) -> String {
    format!("urn:sharehub:json_schema:{name}")
}

fn build_schema(def: &EntityDef, common: &Value) -> Value {
    let Some((_, text)) = FILES.iter().find(|(name, _)| *name == def.name) else {
        return free_form(def);
    };
    if !def.has_schema {
        return free_form(def);
    }
    let file: Map<String, Value> = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("embedded schemas/{}.json is not a JSON object: {e}", def.name));

    let mut schema = Map::new();
    schema.insert("$schema".into(), DIALECT.into());
    schema.insert("$id".into(), schema_id(def.name).into());
    schema.insert("title".into(), def.name.into());
    schema.extend(file);
    merge_missing(&mut schema, "$defs", &common["$defs"]);
    merge_missing(&mut schema, "properties", &common["meta_properties"]);
    Value::Object(schema)
}

/// Adds the entries of `extra` to the object at `schema[key]` where it has none of
/// that name, so an entity's own definitions win over the common ones.
fn merge_missing(schema: &mut Map<String, Value>, key: &str, extra: &Value) {
    let Some(extra) = extra.as_object() else {
        return;
    };
    let target = schema.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if let Some(target) = target.as_object_mut() {
        for (name, value) in extra {
            target.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
}

fn free_form(def: &EntityDef) -> Value {
    let mut schema = Map::new();
    schema.insert("$schema".into(), DIALECT.into());
    schema.insert("$id".into(), schema_id(def.name).into());
    schema.insert("title".into(), def.name.into());
    schema.insert("type".into(), "object".into());
    Value::Object(schema)
}
