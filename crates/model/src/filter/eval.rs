//! Evaluates a filter on a record shown as JSON.
//!
//! Missing keys and JSON `null` are both "null". Comparisons between values
//! of different kinds, or with objects and arrays, are not equal and not
//! ordered: only `ne` holds. The store's SQL translation follows the same
//! rules, so both select the same records.

use super::{CmpOp, Expr, FieldPath, Literal};
use rust_decimal::Decimal;
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// Top-level fields holding RFC 3339 timestamps, compared as instants.
const TIMESTAMP_FIELDS: [&str; 2] = ["created_at", "updated_at"];

impl Expr {
    /// Whether `record` (a JSON object) satisfies this filter.
    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Expr::And(left, right) => left.matches(record) && right.matches(record),
            Expr::Or(left, right) => left.matches(record) || right.matches(record),
            Expr::Not(inner) => !inner.matches(record),
            Expr::Compare { field, op, value } => compare(lookup(record, field), *op, value, field),
        }
    }
}

/// The value at `path`, or `None` when it is missing or JSON null.
fn lookup<'a>(record: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.0.iter().try_fold(record, |value, key| value.as_object()?.get(key)).filter(|value| !value.is_null())
}

fn compare(field: Option<&Value>, op: CmpOp, literal: &Literal, path: &FieldPath) -> bool {
    if *literal == Literal::Null {
        return match op {
            CmpOp::Eq => field.is_none(),
            CmpOp::Ne => field.is_some(),
            _ => false,
        };
    }
    match field.and_then(|value| ordering(value, literal, path)) {
        Some(ordering) => op.holds(ordering),
        // Null against a value, or values of different kinds.
        None => op == CmpOp::Ne,
    }
}

/// How `value` orders against `literal`, if they are comparable.
fn ordering(value: &Value, literal: &Literal, path: &FieldPath) -> Option<Ordering> {
    match (value, literal) {
        (Value::String(s), Literal::String(l)) => Some(compare_strings(s, l, path)),
        (Value::Number(n), Literal::Number(l)) => Some(decimal(n)?.cmp(l)),
        (Value::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        _ => None,
    }
}

/// Byte-wise, except the record's timestamps, compared as instants when both
/// sides parse (the store keeps them as integers, not text).
fn compare_strings(value: &str, literal: &str, path: &FieldPath) -> Ordering {
    let is_timestamp = matches!(path.0.as_slice(), [key] if TIMESTAMP_FIELDS.contains(&key.as_str()));
    if is_timestamp {
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
