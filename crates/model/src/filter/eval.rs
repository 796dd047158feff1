//! Evaluates a filter on a record shown as JSON.
//!
//! Missing keys and JSON `null` are both "null". Comparisons between values
//! of different kinds, or with objects and arrays, are not equal and not
//! ordered: only `ne` holds. Strings compare byte-wise, except the record's
//! timestamps (`created_at`, `updated_at`) and its entity's date-time fields,
//! compared as instants. The store's SQL translation follows the same rules,
//! so both select the same records; it also refuses (bad-filter) what this
//! evaluator has no error for: a date-time field or timestamp compared with a
//! string that is no RFC 3339 timestamp with an offset, and a date-time field
//! compared with a number or a boolean.

use super::{CmpOp, DateTimeFields, Expr, FieldPath, Literal};
use rust_decimal::Decimal;
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Top-level fields holding RFC 3339 timestamps, compared as instants.
const TIMESTAMP_FIELDS: [&str; 2] = ["created_at", "updated_at"];

impl Expr {
    /// Whether `record` (a JSON object) of an entity without date-time fields
    /// (a free-form one) satisfies this filter.
    pub fn matches(&self, record: &Value) -> bool {
        self.matches_with(record, &DateTimeFields::default())
    }

    /// Whether `record` (a JSON object) satisfies this filter, the fields in
    /// `date_times` compared as instants.
    pub fn matches_with(&self, record: &Value, date_times: &DateTimeFields) -> bool {
        match self {
            Expr::And(left, right) => left.matches_with(record, date_times) && right.matches_with(record, date_times),
            Expr::Or(left, right) => left.matches_with(record, date_times) || right.matches_with(record, date_times),
            Expr::Not(inner) => !inner.matches_with(record, date_times),
            Expr::Compare { field, op, value } => {
                let is_instant = date_times.contains(field) || is_timestamp_field(field);
                compare(lookup(record, field), *op, value, is_instant)
            }
        }
    }
}

fn is_timestamp_field(path: &FieldPath) -> bool {
    matches!(path.0.as_slice(), [key] if TIMESTAMP_FIELDS.contains(&key.as_str()))
}

/// The value at `path`, or `None` when it is missing or JSON null.
fn lookup<'a>(record: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.0.iter().try_fold(record, |value, key| value.as_object()?.get(key)).filter(|value| !value.is_null())
}

fn compare(field: Option<&Value>, op: CmpOp, literal: &Literal, is_instant: bool) -> bool {
    if *literal == Literal::Null {
        return match op {
            CmpOp::Eq => field.is_none(),
            CmpOp::Ne => field.is_some(),
            _ => false,
        };
    }
    match field.and_then(|value| ordering(value, literal, is_instant)) {
        Some(ordering) => op.holds(ordering),
        // Null against a value, or values of different kinds.
        None => op == CmpOp::Ne,
    }
}

/// How `value` orders against `literal`, if they are comparable.
fn ordering(value: &Value, literal: &Literal, is_instant: bool) -> Option<Ordering> {
    match (value, literal) {
        (Value::String(s), Literal::String(l)) => Some(compare_strings(s, l, is_instant)),
        (Value::Number(n), Literal::Number(l)) => Some(decimal(n)?.cmp(l)),
        (Value::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        _ => None,
    }
}

/// Byte-wise, except for the record's timestamps and date-time fields
/// (`is_instant`), compared as instants when both sides parse.
fn compare_strings(value: &str, literal: &str, is_instant: bool) -> Ordering {
    if is_instant {
        let parsed = (value.parse::<jiff::Timestamp>(), literal.parse::<jiff::Timestamp>());
        if let (Ok(value), Ok(literal)) = parsed {
            return value.cmp(&literal);
        }
    }
    value.cmp(literal)
}

/// The exact decimal a JSON number spells, if it fits a [`Decimal`].
fn decimal(number: &Number) -> Option<Decimal> {
    let text = number.to_string();
    if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text).ok()
    } else {
        Decimal::from_str_exact(&text).ok()
    }
}
