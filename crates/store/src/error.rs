//! Errors of the store.

use sharehub_model::FieldError;

/// The database failed or is unreachable; nothing the client can fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("{context}: {source}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("{0}")]
    Corrupt(String),
    #[error("{0}")]
    Invalid(String),
    /// A `$filter` the parser took but the query cannot be built from (a
    /// timestamp without an offset, a field name SQL cannot hold).
    #[error("$filter {0}")]
    BadFilter(String),
    /// An `$orderby` the parser took but the query cannot be built from.
    #[error("$orderby {0}")]
    BadOrderBy(String),
}

/// Adds what the store was doing to a database error.
pub trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| match source {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(format!("{context}: {source}"))
            }
            source if is_transient_postgres(&source) => StoreError::Unavailable(format!("{context}: {source}")),
            source if is_unstorable_text(&source) => StoreError::Invalid(format!(
                "{context}: the request holds text PostgreSQL cannot store (such as the character U+0000)"
            )),
            source => StoreError::Database { context, source },
        })
    }
}

/// A value the client sent that PostgreSQL refuses as text: U+0000 in a
/// parameter (22021) or a character the encoding lacks (22P05). Bad input,
/// not a fault of the hub; record bodies are checked before they get here.
fn is_unstorable_text(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else { return false };
    let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() else { return false };
    matches!(pg.code(), "22021" | "22P05")
}

/// PostgreSQL errors a retry can cure: connection failures (class 08),
/// too many connections (53300), a server shutting down (57P01-57P03),
/// serialization failures and deadlocks (40001, 40P01), and any error that
/// ended the session ([`ends_session`]).
fn is_transient_postgres(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else { return false };
    let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() else { return false };
    let code = pg.code();
    ends_session(pg)
        || code.starts_with("08")
        || matches!(code, "53300" | "57P01" | "57P02" | "57P03" | "40001" | "40P01")
}

/// Whether the server ended the session with this error (severity FATAL or
/// PANIC). Such an error is never about the request: the server refused the
/// connection or cut it. The pool passes most of them straight up when it
/// opens a connection, e.g. a database not accepting connections (55000,
/// during maintenance), which a code list would miss.
fn ends_session(pg: &sqlx::postgres::PgDatabaseError) -> bool {
    use sqlx::postgres::PgSeverity;
    matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)
}

/// Why one write was refused. The other writes of the same batch go on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    #[error("invalid record")]
    Invalid(Vec<FieldError>),
    #[error("no such record")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("the record is at version {current}")]
    StaleVersion { current: i64 },
}
