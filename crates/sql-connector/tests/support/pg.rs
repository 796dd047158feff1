//! A PostgreSQL database of a test's own (on the server named by
//! `SHAREHUB_TEST_POSTGRES_URL`), created with the CRM schema and dropped at
//! the end.

use std::path::{Path, PathBuf};

use sharehub_sql_connector::db::Db;

pub const URL_VAR: &str = "SHAREHUB_TEST_POSTGRES_URL";

/// The server's URL, or `None` after saying the test is skipped.
pub fn server_url() -> Option<String> {
    let url = std::env::var(URL_VAR).ok();
    if url.is_none() {
        eprintln!("skipped: {URL_VAR} is not set (e.g. postgres://postgres@127.0.0.1:5432/postgres)");
    }
    url
}

/// The CRM mapping shipped with the connector.
pub fn crm_mapping() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/crm.toml")
}

/// A database of its own on the server, dropped by [`PgDatabase::drop`].
pub struct PgDatabase {
    admin: sqlx::PgPool,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(base: &str) -> Self {
        let admin = sqlx::PgPool::connect(base).await.expect("connecting to PostgreSQL");
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("crm_test_{nanos:x}{}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.unwrap();
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("{URL_VAR} must end with /<database>"),
        };
        Self { admin, name, url }
    }

    /// Creates the database and loads `mappings/crm.sql` into it.
    pub async fn create_crm(base: &str) -> (Self, Db) {
        let pg = Self::create(base).await;
        let crm = Db::connect(&pg.url).await.unwrap();
        let schema = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/crm.sql")).unwrap();
        for statement in schema.split(';').filter(|s| !s.trim().is_empty()) {
            super::exec(&crm, statement, &[]).await;
        }
        (pg, crm)
    }

    pub async fn drop(self) {
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).execute(&self.admin).await.unwrap();
    }
}
