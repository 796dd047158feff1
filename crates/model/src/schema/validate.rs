//! Validation of whole records against the entity schemas with the `jsonschema`
//! crate, reporting each problem with its field path and what was expected.

use std::collections::HashMap;
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::primitive_type::PrimitiveType;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::Value;

use super::formats::{self, DATE_MESSAGE, DATE_TIME_MESSAGE, DECIMAL_MESSAGE};
use super::json_schema;
use crate::catalog::{self, EntityDef};
use crate::FieldError;

/// One compiled validator per catalogue entity, built on first use.
static VALIDATORS: LazyLock<HashMap<&'static str, Validator>> =
    LazyLock::new(|| catalog::all().iter().map(|def| (def.name, compile(json_schema(def), def.name))).collect());

/// Compiles every validator now, so that the first write of each entity does
/// not pay for it: the hub calls this once at start.
pub fn prepare() {
    LazyLock::force(&VALIDATORS);
}

/// The keywords our schemas may use: the ones that mean the same in draft 7 and
/// draft 2020-12, which is what lets [`compile`] use the draft 7 engine.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const SHARED_KEYWORDS: &[&str] = &[
    "$comment",
    "$defs",
    "$id",
    "$ref",
    "$schema",
    "allOf",
    "anyOf",
    "description",
    "enum",
    "format",
    "items",
    "properties",
    "required",
    "title",
    "type",
];

/// Compiles a schema with our formats; our schemas are embedded, so a failure is a
/// bug in a schema file found at start-up.
///
/// The served documents say draft 2020-12, but they are compiled as draft 7: the
/// `jsonschema` crate checks each schema against its draft's meta-schema first,
/// and the 2020-12 meta-schema's `$dynamicRef`s expand into about 35 MiB of
/// validators on our schemas, a quarter of the hub's memory budget, against
/// 3 MiB for draft 7. The schemas keep to [`SHARED_KEYWORDS`] and put no
/// constraint beside a `$ref` (draft 7 ignores `$ref` siblings), so both drafts
/// give the same answers; a test holds every schema to that.
fn compile(schema: &Value, name: &str) -> Validator {
    let mut schema = schema.clone();
    if let Some(fields) = schema.as_object_mut() {
        fields.remove("$schema");
    }
    jsonschema::options()
        .with_draft(Draft::Draft7)
        .should_validate_formats(true)
        .with_format("decimal", |text: &str| formats::parse_decimal(text).is_some())
        .with_format("date-time", |text: &str| formats::parse_date_time(text).is_some())
        .with_format("date", |text: &str| formats::canonical_date(text).is_some())
        .build(&schema)
        .unwrap_or_else(|e| panic!("embedded JSON Schema of {name} does not compile: {e}"))
}

/// Validates a whole record (after merge; references are plain hub ids by then)
/// against the entity schema. Every error carries its field path
/// (`lines/0/quantity`) and says what was expected; errors come sorted by path.
///
/// Fields holding `null` count as absent, so a cleared optional field is fine and a
/// cleared required one is reported as missing.
pub fn validate(def: &EntityDef, record: &Value) -> Result<(), Vec<FieldError>> {
    if !record.is_object() {
        return Err(vec![FieldError::new("", "expected a JSON object")]);
    }
    let Some(validator) = VALIDATORS.get(def.name) else {
        // An entity outside the catalogue has no schema: any object is fine.
        return Ok(());
    };
    // Most records hold no null: they are checked as they are, and only
    // once (`is_valid` stops at the first problem and builds no error).
    let stripped;
    let record = if has_null_field(record) {
        stripped = without_null_fields(record);
        &stripped
    } else {
        record
    };
    if validator.is_valid(record) {
        return Ok(());
    }
    let mut errors: Vec<FieldError> = validator.iter_errors(record).map(|e| field_error(&e)).collect();
    // A stable order, whatever order the validator walks the schema in.
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    Err(errors)
}

/// Whether an object member anywhere in `value` holds `null`.
fn has_null_field(value: &Value) -> bool {
    match value {
        Value::Object(fields) => fields.values().any(|v| v.is_null() || has_null_field(v)),
        Value::Array(elements) => elements.iter().any(has_null_field),
        _ => false,
    }
}

/// A copy of the value without object members whose value is `null`.
fn without_null_fields(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_null_fields(v))).collect(),
        ),
        Value::Array(elements) => Value::Array(elements.iter().map(without_null_fields).collect()),
        other => other.clone(),
    }
}

fn field_error(error: &ValidationError<'_>) -> FieldError {
    let path = pointer_to_path(error.instance_path.as_str());
    match &error.kind {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            let path = if path.is_empty() { name } else { format!("{path}/{name}") };
            FieldError::new(path, "is required")
        }
        kind => FieldError::new(path, message(kind, error)),
    }
}

/// Turns the JSON pointer `/lines/0/quantity` into the Connec! path `lines/0/quantity`.
fn pointer_to_path(pointer: &str) -> String {
    let segments = pointer.split('/').skip(1);
    let segments: Vec<String> = segments.map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
    segments.join("/")
}

fn message(kind: &ValidationErrorKind, error: &ValidationError<'_>) -> String {
    match kind {
        ValidationErrorKind::Type { kind } => type_message(kind),
        ValidationErrorKind::Format { format } => format_message(format),
        ValidationErrorKind::Enum { options } => {
            let options = options.as_array().map(Vec::as_slice).unwrap_or_default();
            let options: Vec<String> = options.iter().map(Value::to_string).collect();
            format!("expected one of {}", options.join(", "))
        }
        ValidationErrorKind::AnyOf | ValidationErrorKind::OneOfNotValid => {
            "does not match any of the allowed shapes".to_owned()
        }
        _ => error.to_string(),
    }
}

fn type_message(kind: &TypeKind) -> String {
    let types: Vec<PrimitiveType> = match kind {
        TypeKind::Single(single) => vec![*single],
        TypeKind::Multiple(many) => many.into_iter().collect(),
    };
    // `["number", "string"]` is how the schemas spell a decimal.
    if types.len() == 2 && types.contains(&PrimitiveType::Number) && types.contains(&PrimitiveType::String) {
        return DECIMAL_MESSAGE.to_owned();
    }
    let names: Vec<String> = types.iter().map(|t| with_article(*t)).collect();
    format!("expected {}", names.join(" or "))
}

fn with_article(kind: PrimitiveType) -> String {
    match kind {
        PrimitiveType::Array | PrimitiveType::Integer | PrimitiveType::Object => {
            format!("an {kind}")
        }
        PrimitiveType::Null => "null".to_owned(),
        _ => format!("a {kind}"),
    }
}

fn format_message(format: &str) -> String {
    match format {
        "decimal" => DECIMAL_MESSAGE.to_owned(),
        "date-time" => DATE_TIME_MESSAGE.to_owned(),
        "date" => DATE_MESSAGE.to_owned(),
        other => format!("expected the format {other}"),
    }
}
