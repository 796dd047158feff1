//! The app's database, SQLite or PostgreSQL, behind one small interface:
//! run a statement with text/integer/null parameters, read rows as JSON
//! objects, inside a transaction.
//!
//! PostgreSQL rows are read through `row_to_json`, so every column type
//! (numeric, timestamptz, ...) arrives as exact JSON without per-type code;
//! parameters are bound as text and cast to the column's type in the SQL.

use serde_json::{Map, Number, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Column, Postgres, Row, Sqlite, Transaction, TypeInfo, ValueRef};

use crate::error::{Error, Result};

/// A parameter of a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Int(i64),
    Text(String),
}

impl Param {
    /// The parameter for a JSON value (decimals stay text: never a float).
    pub fn from_json(value: &Value) -> Self {
        match value {
            Value::Null => Param::Null,
            Value::Bool(b) => Param::Int(i64::from(*b)),
            Value::Number(n) => n.as_i64().map(Param::Int).unwrap_or_else(|| Param::Text(n.to_string())),
            Value::String(s) => Param::Text(s.clone()),
            other => Param::Text(other.to_string()),
        }
    }
}

/// Connections to a PostgreSQL app database: as many hub records are
/// applied to it at once (see [`Db::concurrent_writes`]).
pub const POSTGRES_CONNECTIONS: u32 = 8;

/// Which database, with its pool.
#[derive(Clone)]
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    /// Opens `sqlite://...` or `postgres://...`. A failure names the
    /// database (without credentials) and its real cause.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::open(url).await.map_err(|e| match e {
            Error::Database(cause) => Error::Config(format!("database {}: {cause}", without_credentials(url))),
            other => other,
        })
    }

    async fn open(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let options: SqliteConnectOptions = url.parse()?;
            let options = options.busy_timeout(std::time::Duration::from_secs(10));
            Ok(Db::Sqlite(SqlitePoolOptions::new().max_connections(4).connect_with(options).await?))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // One connection first: the pool would retry until its timeout
            // (30 s) and then say only that it timed out.
            sqlx::Connection::close(<sqlx::PgConnection as sqlx::Connection>::connect(url).await?).await?;
            Ok(Db::Postgres(PgPoolOptions::new().max_connections(POSTGRES_CONNECTIONS).connect(url).await?))
        } else {
            Err(Error::Config(format!("database URL {url:?}: expected sqlite:// or postgres://")))
        }
    }

    /// How many writes the connector may run at once: PostgreSQL takes one
    /// per connection; a SQLite file has one writer, and concurrent ones
    /// would only wait in its busy handler.
    pub fn concurrent_writes(&self) -> usize {
        match self {
            Db::Sqlite(_) => 1,
            Db::Postgres(_) => POSTGRES_CONNECTIONS as usize,
        }
    }

    /// The `n`th (1-based) placeholder, cast to `sql_type` on PostgreSQL.
    pub fn placeholder(&self, n: usize, sql_type: Option<&str>) -> String {
        match (self, sql_type) {
            (Db::Sqlite(_), _) => format!("?{n}"),
            (Db::Postgres(_), Some(t)) => format!("CAST(${n} AS {t})"),
            (Db::Postgres(_), None) => format!("${n}"),
        }
    }

    /// An expression giving `column` as text, for keyset comparisons.
    pub fn as_text(&self, column: &str) -> String {
        format!("CAST({} AS TEXT)", quote(column))
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Reads rows of a `SELECT` outside a transaction.
    pub async fn fetch(&self, sql: &str, params: &[Param]) -> Result<Vec<Map<String, Value>>> {
        let mut tx = self.begin().await?;
        let rows = tx.fetch(sql, params).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// PostgreSQL column types of a table, to cast parameters to them.
    pub async fn column_types(&self, table: &str) -> Result<Vec<(String, String)>> {
        let Db::Postgres(pool) = self else { return Ok(Vec::new()) };
        let rows = sqlx::query(
            "SELECT column_name::text, format_type(atttypid, atttypmod) FROM information_schema.columns c
             JOIN pg_attribute a ON a.attrelid = to_regclass(quote_ident(c.table_name)) AND a.attname = c.column_name
             WHERE c.table_name = $1 AND c.table_schema = current_schema()",
        )
        .bind(table)
        .fetch_all(pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

/// A transaction on either database.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64> {
        Ok(match self {
            Tx::Sqlite(tx) => bind_sqlite(sqlx::query(sql), params).execute(&mut **tx).await?.rows_affected(),
            Tx::Postgres(tx) => bind_pg(sqlx::query(sql), params).execute(&mut **tx).await?.rows_affected(),
        })
    }

    /// Rows of a `SELECT` as JSON objects keyed by column name.
    pub async fn fetch(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Map<String, Value>>> {
        match self {
            Tx::Sqlite(tx) => {
                let rows = bind_sqlite(sqlx::query(sql), params).fetch_all(&mut **tx).await?;
                rows.iter().map(sqlite_row).collect()
            }
            Tx::Postgres(tx) => {
                let wrapped = format!("SELECT row_to_json(q)::text FROM ({sql}) q");
                let rows = bind_pg(sqlx::query(&wrapped), params).fetch_all(&mut **tx).await?;
                rows.iter().map(|r| pg_row(&r.get::<String, _>(0))).collect()
            }
        }
    }

    /// The first column of the first row as text (for `RETURNING`).
    pub async fn fetch_text(&mut self, sql: &str, params: &[Param]) -> Result<String> {
        Ok(match self {
            Tx::Sqlite(tx) => bind_sqlite(sqlx::query(sql), params).fetch_one(&mut **tx).await?.get(0),
            Tx::Postgres(tx) => bind_pg(sqlx::query(sql), params).fetch_one(&mut **tx).await?.get(0),
        })
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;
type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind_sqlite<'q>(mut query: SqliteQuery<'q>, params: &'q [Param]) -> SqliteQuery<'q> {
    for param in params {
        query = match param {
            Param::Null => query.bind(None::<String>),
            Param::Int(i) => query.bind(*i),
            Param::Text(s) => query.bind(s.as_str()),
        };
    }
    query
}

/// PostgreSQL gets every parameter as text; the SQL casts it.
fn bind_pg<'q>(mut query: PgQuery<'q>, params: &'q [Param]) -> PgQuery<'q> {
    for param in params {
        query = match param {
            Param::Null => query.bind(None::<String>),
            Param::Int(i) => query.bind(i.to_string()),
            Param::Text(s) => query.bind(s.as_str()),
        };
    }
    query
}

/// The key under which a row says why one of its columns could not be read
/// (no SQL column is named with U+0000, so it meets no real column).
pub const UNREADABLE: &str = "\0unreadable";

fn sqlite_row(row: &sqlx::sqlite::SqliteRow) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let raw = row.try_get_raw(i)?;
        // A NULL reports its column's declared type, so ask for it first.
        let value = match raw.type_info().name() {
            _ if raw.is_null() => Value::Null,
            "INTEGER" => Value::from(row.try_get::<i64, _>(i)?),
            "REAL" => Number::from_f64(row.try_get::<f64, _>(i)?).map(Value::Number).unwrap_or(Value::Null),
            _ => match row.try_get::<String, _>(i) {
                Ok(text) => Value::String(text),
                // Text that is not UTF-8 (SQLite stores what it is given): the
                // row is kept and marked, so that it fails alone rather than
                // the whole listing.
                Err(e) => {
                    out.insert(UNREADABLE.to_string(), Value::String(format!("column {}: {e}", column.name())));
                    Value::Null
                }
            },
        };
        out.insert(column.name().to_string(), value);
    }
    Ok(out)
}

fn pg_row(json: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(json) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::Config(format!("unreadable row {json}"))),
    }
}

/// A quoted SQL identifier. Names come from the mapping file, checked at load.
pub fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

/// A database URL without the user and password before its `@`.
fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_string(),
    }
}
