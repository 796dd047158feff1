//! Builds the Chinook store's SQLite database from `examples/chinook.json`:
//! the app the Chinook mapping connects. Money is kept as decimal text, and
//! every row gets an `updated_at` (RFC 3339 UTC, milliseconds), all the same
//! instant, as after a bulk load.

use std::path::Path;

use serde_json::Value;

use crate::db::{Db, Param};
use crate::error::{Error, Result};

const CHINOOK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/chinook.json"));

/// The instant every loaded row carries.
pub const LOADED_AT: &str = "2024-01-01T00:00:00.000Z";

const SCHEMA: &str = r#"
CREATE TABLE customers (
    id INTEGER PRIMARY KEY, firstname TEXT, lastname TEXT, company TEXT, address TEXT, city TEXT,
    state TEXT, country TEXT, postalcode TEXT, phone TEXT, fax TEXT, email TEXT, support_rep INTEGER,
    active INTEGER NOT NULL DEFAULT 1, updated_at TEXT NOT NULL
);
CREATE TABLE employees (
    id INTEGER PRIMARY KEY, firstname TEXT, lastname TEXT, title TEXT, reports_to INTEGER, birthdate TEXT,
    hiredate TEXT, address TEXT, city TEXT, state TEXT, country TEXT, postalcode TEXT, phone TEXT, fax TEXT,
    email TEXT, updated_at TEXT NOT NULL
);
CREATE TABLE tracks (
    id INTEGER PRIMARY KEY, name TEXT, album INTEGER, composer TEXT, milliseconds INTEGER, bytes INTEGER,
    unit_price TEXT, genre INTEGER, mediatype INTEGER, updated_at TEXT NOT NULL
);
CREATE TABLE invoices (
    id INTEGER PRIMARY KEY, customer INTEGER, invoicedate TEXT, billingaddress TEXT, billingcity TEXT,
    billingstate TEXT, billingcountry TEXT, billingpostalcode TEXT, total TEXT, updated_at TEXT NOT NULL
);
CREATE TABLE invoice_lines (
    id INTEGER PRIMARY KEY, invoice INTEGER NOT NULL, track INTEGER, unit_price TEXT, quantity INTEGER
);
CREATE INDEX invoice_lines_by_invoice ON invoice_lines (CAST(invoice AS TEXT));
"#;

/// Columns loaded per table, in the JSON's names.
const TABLES: &[(&str, &[&str])] = &[
    (
        "customers",
        &[
            "id",
            "firstname",
            "lastname",
            "company",
            "address",
            "city",
            "state",
            "country",
            "postalcode",
            "phone",
            "fax",
            "email",
            "support_rep",
        ],
    ),
    (
        "employees",
        &[
            "id",
            "firstname",
            "lastname",
            "title",
            "reports_to",
            "birthdate",
            "hiredate",
            "address",
            "city",
            "state",
            "country",
            "postalcode",
            "phone",
            "fax",
            "email",
        ],
    ),
    ("tracks", &["id", "name", "album", "composer", "milliseconds", "bytes", "unit_price", "genre", "mediatype"]),
    (
        "invoices",
        &[
            "id",
            "customer",
            "invoicedate",
            "billingaddress",
            "billingcity",
            "billingstate",
            "billingcountry",
            "billingpostalcode",
            "total",
        ],
    ),
];

/// Creates the database at `path` (which must not exist) and loads Chinook.
pub async fn build(path: &Path) -> Result<()> {
    if path.exists() {
        return Err(Error::Config(format!("{} exists already", path.display())));
    }
    let db = Db::connect(&format!("sqlite://{}?mode=rwc", path.display())).await?;
    let data: Value = serde_json::from_str(CHINOOK).map_err(|e| Error::Config(format!("chinook.json: {e}")))?;
    let mut tx = db.begin().await?;
    for statement in SCHEMA.split(';').filter(|s| !s.trim().is_empty()) {
        tx.execute(statement, &[]).await?;
    }
    for (table, columns) in TABLES {
        let placeholders: Vec<String> = (1..=columns.len() + 1).map(|i| format!("?{i}")).collect();
        let sql =
            format!("INSERT INTO {table} ({}, updated_at) VALUES ({})", columns.join(", "), placeholders.join(", "));
        for row in data[*table].as_array().map(Vec::as_slice).unwrap_or_default() {
            let mut params: Vec<Param> = columns.iter().map(|c| Param::from_json(&row[*c])).collect();
            params.push(Param::Text(LOADED_AT.into()));
            tx.execute(&sql, &params).await?;
        }
    }
    let sql = "INSERT INTO invoice_lines (id, invoice, track, unit_price, quantity) VALUES (?1, ?2, ?3, ?4, ?5)";
    for line in data["invoice_lines"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let params: Vec<Param> =
            ["id", "invoice", "track", "unit_price", "quantity"].iter().map(|c| Param::from_json(&line[*c])).collect();
        tx.execute(sql, &params).await?;
    }
    for table in ["customers", "employees", "tracks", "invoices"] {
        let index = format!("CREATE INDEX {table}_changes ON {table} (updated_at, CAST(id AS TEXT))");
        tx.execute(&index, &[]).await?;
    }
    tx.commit().await
}
