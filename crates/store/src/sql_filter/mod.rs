//! Translation of `$filter` / `$orderby` ([`sharehub_model::filter`]) to SQL.
//!
//! The SQL selects exactly the records that
//! [`Expr::matches_with`](sharehub_model::filter::Expr::matches_with) accepts
//! on the record's JSON with its meta fields (`id`, `version`, `created_at`,
//! `updated_at`) added, given the entity's [`DateTimeFields`]. Meta fields map
//! to their columns; every other path reads the `data` JSON column. No user
//! text reaches the SQL: literals are bound, and keys are checked to be
//! `[A-Za-z0-9_]+` before being quoted.
//!
//! Date-time fields of the entity's schema (an invoice's `transaction_date`)
//! compare and sort as instants, exactly: both sides are turned into their
//! [`date_time_key`], a text whose byte order is the order of the instants
//! (the stored value in SQL, the literal here). This rests on every stored
//! date-time being in the form the write path gives it (in UTC with `Z`,
//! any number of fraction digits, see
//! [`canonical_date_time`](sharehub_model::schema::canonical_date_time)),
//! as it has been since the first stored record. A literal compared with a
//! date-time field must be `null` or an RFC 3339 timestamp with an offset.
//! Fields of free-form entities have no schema: they compare as text.

mod postgres;
mod sqlite;

pub use postgres::{bind_postgres, postgres_filter, postgres_order_by};
pub use sharehub_model::filter::DateTimeFields;
pub use sqlite::{bind_sqlite, sqlite_filter, sqlite_order_by};

use std::sync::LazyLock;

use sharehub_model::filter::{FieldPath, Literal};

/// A value bound to one `?` placeholder, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlBind {
    Text(String),
    Int(i64),
    Real(f64),
    Null,
}

/// A piece of SQL with its `?` placeholders' values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SqlFragment {
    pub sql: String,
    pub binds: Vec<SqlBind>,
}

/// Why a filter or ordering cannot be turned into SQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TranslateError {
    pub message: String,
}

impl TranslateError {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

/// Where a field path lives in the `records` table.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    /// The `id` column: text.
    Id,
    /// The `version` column: an integer.
    Version,
    /// `created_at` or `updated_at`: unix microseconds, shown as RFC 3339.
    Timestamp(&'static str),
    /// A key path inside `data`, as a quoted SQL/JSON path literal such as
    /// `'$."email"."address"'`.
    Json(String),
    /// A date-time field inside `data` (one of the entity's
    /// [`DateTimeFields`]), as [`Target::Json`].
    DateTime(String),
}

/// Where `path` is stored, after checking its keys.
fn target(path: &FieldPath, date_times: &DateTimeFields) -> Result<Target, TranslateError> {
    if path.0.is_empty() {
        return Err(TranslateError::new("empty field path"));
    }
    for key in &path.0 {
        let valid = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(TranslateError::new(format!(
                "invalid field name {key:?}: only letters, digits and '_' are allowed"
            )));
        }
    }
    Ok(match path.0.as_slice() {
        [key] if key == "id" => Target::Id,
        [key] if key == "version" => Target::Version,
        [key] if key == "created_at" => Target::Timestamp("created_at"),
        [key] if key == "updated_at" => Target::Timestamp("updated_at"),
        keys => {
            // Keys were checked above, so they hold no quote of either kind.
            let quoted: Vec<String> = keys.iter().map(|k| format!(".\"{k}\"")).collect();
            let json_path = format!("'${}'", quoted.concat());
            if date_times.contains(path) {
                Target::DateTime(json_path)
            } else {
                Target::Json(json_path)
            }
        }
    })
}

/// The date-time fields of the catalogue entity named `entity`; none for a
/// free-form entity or a name outside the catalogue.
pub fn date_time_fields(entity: &str) -> &'static DateTimeFields {
    static NONE: LazyLock<DateTimeFields> = LazyLock::new(DateTimeFields::default);
    match sharehub_model::catalog::entity(entity) {
        Some(def) => sharehub_model::schema::date_time_fields(def),
        None => &NONE,
    }
}

/// The text a stored date-time sorts by: byte-wise order of keys is the
/// order of the instants, and equal instants have equal keys. `stored` is in
/// the stored form (`2030-05-05T10:00:00.500Z`: UTC, `Z`, fraction digits as
/// written); the key drops the `Z` and the fraction's trailing zeros (and its
/// `.` when none are left: `2030-05-05T10:00:00.5`), so the fixed-width part
/// up to the seconds compares first, then the fraction digit by digit, a
/// missing fraction first. A year before 0000, stored as `-YYYYYY`, becomes
/// `-` and 999999 - YYYYYY in six digits: such years sort before 0000 (`-`
/// is below every digit) and the earliest first. The SQL of each backend
/// computes the same text from the stored value (the agreement tests check
/// both against the instants).
pub fn date_time_key(stored: &str) -> String {
    if let Some(year) = negative_year(stored) {
        return format!("-{:06}{}", 999_999 - year, trim_fraction(&stored[7..]));
    }
    trim_fraction(stored).to_owned()
}

/// The year of `-YYYYYY-…`, as a number.
fn negative_year(stored: &str) -> Option<u32> {
    let digits = stored.strip_prefix('-')?.get(..6)?;
    let year = digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok())??;
    stored[7..].starts_with('-').then_some(year)
}

/// Without the trailing `Z`, and without the fraction's trailing zeros when
/// there is a fraction.
fn trim_fraction(text: &str) -> &str {
    let text = text.trim_end_matches('Z');
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// What a literal compared with a date-time field must be.
const DATE_TIME_LITERAL: &str =
    "an RFC 3339 timestamp with an offset (such as '2030-05-05T10:00:00Z' or '2030-05-05T12:00:00.5+02:00') or null";

/// The [`date_time_key`] of a literal compared with the date-time field
/// `field`: a timestamp with an offset, else an error naming the field.
fn date_time_literal_key(field: &FieldPath, literal: &Literal) -> Result<String, TranslateError> {
    let refused = |what: String| {
        TranslateError::new(format!(
            "{} is a date-time field: compare it with {DATE_TIME_LITERAL}, not {what}",
            field.to_slash_string()
        ))
    };
    match literal {
        Literal::String(text) => match text.parse::<jiff::Timestamp>() {
            // Printed in UTC with `Z`, as stored, then keyed the same way.
            Ok(instant) => Ok(date_time_key(&instant.to_string())),
            Err(_) => Err(refused(format!("'{}'", text.replace('\'', "''")))),
        },
        Literal::Number(number) => Err(refused(format!("the number {number}"))),
        Literal::Bool(b) => Err(refused(b.to_string())),
        // Handled by the callers (a null test).
        Literal::Null => Err(refused("null".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sharehub_model::schema::canonical_date_time;

    /// Instants from before year 0 to the last one jiff holds, each written
    /// with several fraction lengths and offsets.
    const INSTANTS: [&str; 14] = [
        "-009999-01-02T01:59:59Z",
        "-009999-06-01T00:00:00.5Z",
        "-000001-12-31T23:59:59.999999999Z",
        "0000-01-01T00:00:00Z",
        "0000-01-01T00:00:00.000000001Z",
        "1969-12-31T23:59:59.9Z",
        "1970-01-01T00:00:00Z",
        "2030-05-05T10:00:00Z",
        "2030-05-05T10:00:00.05Z",
        "2030-05-05T10:00:00.2Z",
        "2030-05-05T10:00:00.25Z",
        "2030-05-05T10:00:00.5Z",
        "2030-05-05T10:00:01Z",
        "9999-12-30T22:00:00.999999999Z",
    ];

    /// The forms the write path may store `instant` in: written with 0 to 9
    /// fraction digits (when they hold it), in UTC or at -05:30.
    fn stored_forms(instant: &str) -> Vec<String> {
        let timestamp: jiff::Timestamp = instant.parse().unwrap();
        let offset = jiff::tz::Offset::from_seconds(-(5 * 3600 + 30 * 60)).unwrap();
        let mut forms = Vec::new();
        for digits in [None, Some(0), Some(1), Some(3), Some(6), Some(9)] {
            let printer = jiff::fmt::temporal::DateTimePrinter::new().precision(digits);
            for written in
                [printer.timestamp_to_string(&timestamp), printer.timestamp_with_offset_to_string(&timestamp, offset)]
            {
                if written.parse::<jiff::Timestamp>().ok() == Some(timestamp) {
                    // Years before 0000 are refused on write now; earlier
                    // versions stored them as jiff prints them in UTC.
                    let utc = || printer.timestamp_to_string(&timestamp);
                    forms.push(canonical_date_time(&written).unwrap_or_else(utc));
                }
            }
        }
        forms
    }

    #[test]
    fn keys_order_like_instants_whatever_the_stored_form() {
        for (i, earlier) in INSTANTS.iter().enumerate() {
            let keys: Vec<String> = stored_forms(earlier).iter().map(|s| date_time_key(s)).collect();
            assert!(keys.len() >= 3, "{earlier}: {keys:?}");
            assert!(keys.iter().all(|k| *k == keys[0]), "one key per instant: {earlier}: {keys:?}");
            for later in &INSTANTS[i + 1..] {
                for form in stored_forms(later) {
                    assert!(keys[0] < date_time_key(&form), "{earlier} ({}) < {later} ({form})", keys[0]);
                }
            }
        }
        assert_eq!(date_time_key("2030-05-05T10:00:00.500Z"), "2030-05-05T10:00:00.5");
        assert_eq!(date_time_key("2030-05-05T10:00:00.000Z"), "2030-05-05T10:00:00");
        assert_eq!(date_time_key("2030-05-05T10:00:00Z"), "2030-05-05T10:00:00");
        assert_eq!(date_time_key("-000001-12-31T23:59:59.90Z"), "-999998-12-31T23:59:59.9");
    }

    #[test]
    fn literals_need_an_offset_and_key_as_stored() {
        let field = FieldPath(vec!["transaction_date".to_owned()]);
        let key = |text: &str| date_time_literal_key(&field, &Literal::String(text.to_owned()));
        assert_eq!(key("2030-05-05T12:00:00.200+02:00").unwrap(), "2030-05-05T10:00:00.2");
        assert_eq!(key("2030-05-05T10:00:00.5000Z").unwrap(), "2030-05-05T10:00:00.5");
        for text in ["2030-05-05T09:00:00", "2030-05-05", "yesterday", ""] {
            let message = key(text).unwrap_err().message;
            assert!(message.starts_with("transaction_date is a date-time field"), "{message}");
            assert!(message.contains("RFC 3339 timestamp with an offset"), "{message}");
        }
        let number = date_time_literal_key(&field, &Literal::Number(5.into())).unwrap_err().message;
        assert!(number.ends_with("not the number 5"), "{number}");
    }
}
