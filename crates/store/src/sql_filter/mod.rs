//! Translation of `$filter` / `$orderby` ([`sharehub_model::filter`]) to SQL.
//!
//! The SQL selects exactly the records that
//! [`Expr::matches`](sharehub_model::filter::Expr::matches) accepts on the
//! record's JSON with its meta fields (`id`, `version`, `created_at`,
//! `updated_at`) added. Meta fields map to their columns; every other path
//! reads the `data` JSON column. No user text reaches the SQL: literals are
//! bound, and keys are checked to be `[A-Za-z0-9_]+` before being quoted.

mod postgres;
mod sqlite;

pub use postgres::{bind_postgres, postgres_filter, postgres_order_by};
pub use sqlite::{bind_sqlite, sqlite_filter, sqlite_order_by};

use sharehub_model::filter::FieldPath;

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
}

/// Where `path` is stored, after checking its keys.
fn target(path: &FieldPath) -> Result<Target, TranslateError> {
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
            Target::Json(format!("'${}'", quoted.concat()))
        }
    })
}
