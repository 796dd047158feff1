//! Value conversions between the app's columns and the hub's fields, and the
//! canonical form both sides are compared in (for loop prevention).
//!
//! Money stays decimal text from end to end: it never passes through a float.

use std::str::FromStr;

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// How one field's value changes on its way between the app and the hub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Convert {
    /// Passed as is.
    #[default]
    Copy,
    /// Text on the hub (numbers become their text).
    String,
    /// A decimal (money, rates, quantities), sent as exact decimal text.
    Decimal,
    /// A whole number.
    Integer,
    /// An instant, UTC RFC 3339 with `Z` on the hub.
    Timestamp,
    /// A calendar date `YYYY-MM-DD`.
    Date,
    /// A boolean (`0`/`1` and `"true"`/`"false"` accepted from the app).
    Bool,
}

impl Convert {
    /// The hub's form of an app value.
    pub fn to_hub(self, value: &Value) -> Result<Value> {
        self.converted(value)
    }

    /// The app's form of a hub value.
    pub fn to_app(self, value: &Value) -> Result<Value> {
        self.converted(value)
    }

    /// [`Convert::canonical`], except that decimals keep their scale
    /// (`2.50` stays `2.50` on its way).
    fn converted(self, value: &Value) -> Result<Value> {
        match (self, value) {
            (Convert::Decimal, v) if !v.is_null() => decimal(v).map(|d| Value::String(d.to_string())),
            _ => self.canonical(value),
        }
    }

    /// One form per meaning: `0.990` and `0.99` compare equal, as do
    /// `2007-01-01 00:00:00` and `2007-01-01T00:00:00Z`.
    pub fn canonical(self, value: &Value) -> Result<Value> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        match self {
            Convert::Copy => Ok(value.clone()),
            Convert::String => Ok(Value::String(text(value))),
            Convert::Decimal => decimal(value).map(|d| Value::String(d.normalize().to_string())),
            Convert::Integer => integer(value).map(Value::from),
            Convert::Timestamp => timestamp(value).map(|t| Value::String(format_timestamp(t))),
            Convert::Date => {
                timestamp(value).map(|t| Value::String(t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string()))
            }
            Convert::Bool => boolean(value).map(Value::Bool),
        }
    }
}

/// UTC RFC 3339 with `Z`, to the millisecond: the hub's own format.
pub fn format_timestamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn decimal(value: &Value) -> Result<Decimal> {
    let raw = text(value);
    Decimal::from_str(raw.trim())
        .or_else(|_| Decimal::from_scientific(raw.trim()))
        .map_err(|_| Error::Mapping(format!("{raw:?} is not a decimal")))
}

fn integer(value: &Value) -> Result<i64> {
    let raw = text(value);
    raw.trim().parse().map_err(|_| Error::Mapping(format!("{raw:?} is not a whole number")))
}

fn boolean(value: &Value) -> Result<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => match text(other).as_str() {
            "1" | "true" | "t" | "TRUE" => Ok(true),
            "0" | "false" | "f" | "FALSE" => Ok(false),
            raw => Err(Error::Mapping(format!("{raw:?} is not a boolean"))),
        },
    }
}

/// Parses an instant written with an offset, or a date-time or date without
/// one (taken as UTC, as SQLite's `datetime()` writes them).
pub fn timestamp(value: &Value) -> Result<Timestamp> {
    let raw = text(value);
    let raw = raw.trim();
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Ok(t);
    }
    let utc = |dt: jiff::civil::DateTime| dt.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp());
    if let Ok(dt) = raw.parse::<jiff::civil::DateTime>() {
        return utc(dt).map_err(|e| Error::Mapping(format!("{raw:?}: {e}")));
    }
    if let Ok(d) = raw.parse::<jiff::civil::Date>() {
        return utc(d.to_datetime(jiff::civil::Time::midnight())).map_err(|e| Error::Mapping(format!("{raw:?}: {e}")));
    }
    Err(Error::Mapping(format!("{raw:?} is not a date-time")))
}

/// The value at a `/`-separated path; `None` when a step is missing.
pub fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('/').try_fold(value, |v, step| v.get(step))
}

/// Sets the value at a `/`-separated path, making the objects on the way.
pub fn set_path(target: &mut Map<String, Value>, path: &str, value: Value) {
    let mut steps = path.split('/').peekable();
    let mut current = target;
    while let Some(step) = steps.next() {
        if steps.peek().is_none() {
            current.insert(step.to_string(), value);
            return;
        }
        let next = current.entry(step.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        let Value::Object(map) = next else { return };
        current = map;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_compare_by_value_not_by_text() {
        let a = Convert::Decimal.canonical(&json!("0.990")).unwrap();
        let b = Convert::Decimal.canonical(&json!(0.99)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, json!("0.99"));
    }

    #[test]
    fn timestamps_without_offset_are_utc() {
        let a = Convert::Timestamp.canonical(&json!("2007-01-01 10:00:00")).unwrap();
        let b = Convert::Timestamp.canonical(&json!("2007-01-01T12:00:00+02:00")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, json!("2007-01-01T10:00:00.000Z"));
        assert_eq!(Convert::Date.canonical(&json!("1962-02-18T00:00:00Z")).unwrap(), json!("1962-02-18"));
    }

    #[test]
    fn paths_are_made_on_the_way() {
        let mut map = Map::new();
        set_path(&mut map, "email/address", json!("x@y.z"));
        let value = Value::Object(map);
        assert_eq!(get_path(&value, "email/address"), Some(&json!("x@y.z")));
        assert_eq!(get_path(&value, "email/other"), None);
    }
}
