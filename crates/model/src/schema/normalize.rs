//! Normalisation of a partial record: walks the entity schema alongside the data and
//! rewrites the values of the custom formats into their canonical form.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::formats::{self, DATE_MESSAGE, DATE_TIME_MESSAGE, DECIMAL_MESSAGE};
use super::json_schema;
use crate::catalog::EntityDef;
use crate::filter::FieldPath;
use crate::FieldError;

/// Deeper than any schema of ours nests; guards against a `$ref` cycle.
const MAX_DEPTH: usize = 64;

/// Most keys in a date-time field's path looked for: deeper than any schema
/// of ours nests objects, and a bound on a schema whose objects recurse.
const MAX_FIELD_KEYS: usize = 16;

/// Normalises a partial record a client sent (a patch: any subset of fields; JSON
/// `null` means "clear this field" and is always allowed).
///
/// * `decimal` fields: a JSON number or a string holding a decimal becomes a JSON
///   number whose text is the canonical decimal (`"0.30"` -> `0.30`, `1e2` -> `100`;
///   see the `formats` rules); anything else is an error "expected a decimal number".
/// * `date-time` fields: RFC 3339 with an offset, rewritten in UTC
///   (`2024-01-01T10:00:00+02:00` -> `2024-01-01T08:00:00Z`), fractional digits kept.
/// * `date` fields: `YYYY-MM-DD` as written, or a date-time as above.
///
/// Other fields are left byte for byte as sent; types are checked later by
/// [`validate`](super::validate). Reference fields of the catalogue are skipped (the
/// caller resolves them), and required fields are not checked. Free-form entities
/// are left untouched. Any string or key holding U+0000 is refused, on every entity.
pub fn normalize(def: &EntityDef, patch: &mut Value) -> Result<(), Vec<FieldError>> {
    if !patch.is_object() {
        return Err(vec![FieldError::new("", "expected a JSON object")]);
    }
    let root = json_schema(def);
    let mut walker = Walker { root, references: def.references.iter().map(|r| r.path).collect(), errors: Vec::new() };
    if contains_nul(patch) {
        find_nul_characters(patch, &mut Path::default(), &mut walker.errors);
    }
    walker.node(root, patch, &mut Path::default(), 0);
    if walker.errors.is_empty() {
        Ok(())
    } else {
        Err(walker.errors)
    }
}

/// The paths of `def`'s fields that [`normalize`] rewrites as date-times (in
/// UTC), through objects only: a `$filter` path never indexes an array. The
/// schema is walked as [`normalize`] walks a record: `$ref`, every `allOf`,
/// the first `anyOf` / `oneOf` branch taking the value's kind, `properties`;
/// reference fields are skipped. Free-form entities have none.
pub(crate) fn date_time_paths(def: &EntityDef) -> Vec<FieldPath> {
    date_time_paths_in(json_schema(def), def.references.iter().map(|r| r.path).collect())
}

pub(super) fn date_time_paths_in(root: &Value, references: Vec<&'static str>) -> Vec<FieldPath> {
    let walker = Walker { root, references, errors: Vec::new() };
    let mut paths = Vec::new();
    walker.date_time_paths(&[root], &mut Vec::new(), &mut paths);
    paths
}

/// Every string and key of `value` holding U+0000, by path: for bodies that
/// are not records (the platform API's) and get no [`normalize`].
pub fn nul_characters(value: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if contains_nul(value) {
        find_nul_characters(value, &mut Path::default(), &mut errors);
    }
    errors
}

/// Whether any string or key of `value` holds U+0000: the cheap check that
/// nearly every record passes, before the walk that names the paths.
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Object(fields) => fields.iter().any(|(key, field)| key.contains('\0') || contains_nul(field)),
        Value::Array(elements) => elements.iter().any(contains_nul),
        _ => false,
    }
}

/// Reports every string and key holding U+0000. PostgreSQL cannot hold that
/// character in `jsonb` or text, and few applications survive it; refusing it
/// on every backend keeps the two backends storing the same records.
fn find_nul_characters(value: &Value, path: &mut Path, errors: &mut Vec<FieldError>) {
    const MESSAGE: &str = "must not contain the character U+0000";
    match value {
        Value::String(text) if text.contains('\0') => errors.push(FieldError::new(path.concrete.clone(), MESSAGE)),
        Value::Object(fields) => {
            for (key, field) in fields {
                let mark = path.push_key(key);
                if key.contains('\0') {
                    errors.push(FieldError::new(path.concrete.clone(), MESSAGE));
                }
                find_nul_characters(field, path, errors);
                path.pop(mark);
            }
        }
        Value::Array(elements) => {
            for (index, element) in elements.iter().enumerate() {
                let mark = path.push_index(index);
                find_nul_characters(element, path, errors);
                path.pop(mark);
            }
        }
        _ => {}
    }
}

/// Where the walk is: the concrete path (`lines/1/quantity`) for errors, and the
/// pattern without indexes (`lines/quantity`) to recognise reference fields.
/// One pair of buffers for the whole walk: a child's segment is pushed on the
/// way down and cut off on the way back (this runs for every field written).
#[derive(Default)]
struct Path {
    concrete: String,
    pattern: String,
}

/// The lengths a [`Path`] goes back to after a child.
#[derive(Clone, Copy)]
struct Mark(usize, usize);

impl Path {
    fn push_key(&mut self, key: &str) -> Mark {
        let mark = Mark(self.concrete.len(), self.pattern.len());
        push_segment(&mut self.concrete, key);
        push_segment(&mut self.pattern, key);
        mark
    }

    fn push_index(&mut self, index: usize) -> Mark {
        let mark = Mark(self.concrete.len(), self.pattern.len());
        push_segment(&mut self.concrete, &index.to_string());
        mark
    }

    fn pop(&mut self, mark: Mark) {
        self.concrete.truncate(mark.0);
        self.pattern.truncate(mark.1);
    }
}

fn push_segment(path: &mut String, segment: &str) {
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(segment);
}

struct Walker<'s> {
    root: &'s Value,
    references: Vec<&'static str>,
    errors: Vec<FieldError>,
}

impl<'s> Walker<'s> {
    /// Applies the schema node to the value: its `$ref`, combinators, format,
    /// properties and items.
    fn node(&mut self, schema: &'s Value, value: &mut Value, path: &mut Path, depth: usize) {
        if value.is_null() || depth > MAX_DEPTH || self.references.contains(&path.pattern.as_str()) {
            return;
        }
        let Some(schema) = schema.as_object() else {
            return;
        };

        if let Some(target) = schema.get("$ref").and_then(Value::as_str).and_then(|r| self.resolve(r)) {
            self.node(target, value, path, depth + 1);
        }
        for branch in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.node(branch, value, path, depth + 1);
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branch) = self.matching_branch(schema.get(key), value) {
                self.node(branch, value, path, depth + 1);
            }
        }
        if let Some(format) = schema.get("format").and_then(Value::as_str) {
            self.format(format, value, path);
        }
        self.children(schema, value, path, depth);
    }

    /// Walks into the object's properties and the array's items the schema declares.
    fn children(
        &mut self,
        schema: &'s serde_json::Map<String, Value>,
        value: &mut Value,
        path: &mut Path,
        depth: usize,
    ) {
        match value {
            Value::Object(fields) => {
                let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                    return;
                };
                for (key, field) in fields.iter_mut() {
                    if let Some(property) = properties.get(key) {
                        let mark = path.push_key(key);
                        self.node(property, field, path, depth + 1);
                        path.pop(mark);
                    }
                }
            }
            Value::Array(elements) => {
                let Some(items) = schema.get("items") else {
                    return;
                };
                for (index, element) in elements.iter_mut().enumerate() {
                    let mark = path.push_index(index);
                    self.node(items, element, path, depth + 1);
                    path.pop(mark);
                }
            }
            _ => {}
        }
    }

    /// The first branch of an `anyOf`/`oneOf` whose declared type fits the value
    /// (a payment line amount is a decimal or a price block).
    fn matching_branch(&self, branches: Option<&'s Value>, value: &Value) -> Option<&'s Value> {
        let branches = branches?.as_array()?;
        branches.iter().find(|branch| self.accepts_kind(branch, value))
    }

    fn accepts_kind(&self, schema: &'s Value, value: &Value) -> bool {
        let mut schema = schema;
        // Follow a short chain of $ref to the node that declares the type.
        for _ in 0..8 {
            match schema.get("$ref").and_then(Value::as_str).and_then(|r| self.resolve(r)) {
                Some(target) if schema.get("type").is_none() => schema = target,
                _ => break,
            }
        }
        match schema.get("type") {
            Some(Value::String(kind)) => kind_matches(kind, value),
            Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).any(|kind| kind_matches(kind, value)),
            _ => true,
        }
    }

    /// Adds to `paths` each date-time field at or below `path`, whose value
    /// the schema nodes `schemas` apply to (see [`date_time_paths`]).
    fn date_time_paths(&self, schemas: &[&'s Value], path: &mut Vec<String>, paths: &mut Vec<FieldPath>) {
        if path.len() > MAX_FIELD_KEYS || self.references.contains(&path.join("/").as_str()) {
            return;
        }
        let mut as_string = Vec::new();
        let mut as_object = Vec::new();
        for schema in schemas {
            self.applied(schema, &Value::String(String::new()), 0, &mut as_string);
            self.applied(schema, &Value::Object(Map::new()), 0, &mut as_object);
        }
        let is_date_time = as_string.iter().any(|node| node.get("format").and_then(Value::as_str) == Some("date-time"));
        if is_date_time && !path.is_empty() {
            paths.push(FieldPath(path.clone()));
        }
        let mut children: BTreeMap<&'s str, Vec<&'s Value>> = BTreeMap::new();
        for node in as_object {
            for (key, child) in node.get("properties").and_then(Value::as_object).into_iter().flatten() {
                children.entry(key.as_str()).or_default().push(child);
            }
        }
        for (key, nodes) in children {
            path.push(key.to_owned());
            self.date_time_paths(&nodes, path, paths);
            path.pop();
        }
    }

    /// The schema objects [`Walker::node`] applies to a value of `probe`'s
    /// kind met at `schema`: `schema` itself, its `$ref`, its `allOf`
    /// branches and its chosen `anyOf` / `oneOf` branch, recursively.
    fn applied(&self, schema: &'s Value, probe: &Value, depth: usize, nodes: &mut Vec<&'s Map<String, Value>>) {
        let Some(object) = schema.as_object() else {
            return;
        };
        if depth > MAX_DEPTH {
            return;
        }
        nodes.push(object);
        if let Some(target) = object.get("$ref").and_then(Value::as_str).and_then(|r| self.resolve(r)) {
            self.applied(target, probe, depth + 1, nodes);
        }
        for branch in object.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.applied(branch, probe, depth + 1, nodes);
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branch) = self.matching_branch(object.get(key), probe) {
                self.applied(branch, probe, depth + 1, nodes);
            }
        }
    }

    /// Resolves a local reference `#/$defs/name` (or any `#/...` JSON pointer).
    fn resolve(&self, reference: &str) -> Option<&'s Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    fn format(&mut self, format: &str, value: &mut Value, path: &Path) {
        let (result, message) = match format {
            "decimal" => (formats::canonical_decimal(value), DECIMAL_MESSAGE),
            "date-time" => (string_with(value, formats::canonical_date_time), DATE_TIME_MESSAGE),
            "date" => (string_with(value, formats::canonical_date), DATE_MESSAGE),
            _ => return,
        };
        match result {
            Some(canonical) => *value = canonical,
            None if format == "decimal" => {
                self.errors.push(FieldError::new(path.concrete.clone(), formats::decimal_message(value)))
            }
            None => self.errors.push(FieldError::new(path.concrete.clone(), message)),
        }
    }
}

fn string_with(value: &Value, canonical: fn(&str) -> Option<String>) -> Option<Value> {
    value.as_str().and_then(canonical).map(Value::String)
}

fn kind_matches(kind: &str, value: &Value) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}
