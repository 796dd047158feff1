//! Throwaway PostgreSQL databases for tests (cargo feature `test-support`).
//!
//! [`TestDb::create`] makes a uniquely named database as the superuser of a
//! base URL (`SHAREHUB_TEST_POSTGRES_URL`), migrates it as that owner, and
//! grants the hub's role [`APP_ROLE`] (LOGIN NOSUPERUSER NOBYPASSRLS, created
//! if missing) `SELECT, INSERT, UPDATE, DELETE` on its tables, so that tests
//! run the hub as production does: under row-level security.
//! [`TestDb::drop_database`] removes it again.

use anyhow::Context as _;
use sqlx::{Connection, PgConnection};

use crate::postgres::PgStore;

/// The environment variable naming the superuser connection tests start from,
/// e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
pub const URL_VAR: &str = "SHAREHUB_TEST_POSTGRES_URL";

/// The role the hub connects as: no superuser, no `BYPASSRLS`.
pub const APP_ROLE: &str = "sharehub_app";

/// The base URL from [`URL_VAR`], if set and not empty.
pub fn base_url_from_env() -> Option<String> {
    std::env::var(URL_VAR).ok().filter(|url| !url.is_empty())
}

/// One test's database and the URLs that reach it.
#[derive(Debug, Clone)]
pub struct TestDb {
    /// The database's name (`sharehub_test_<uuid>`).
    pub name: String,
    /// The superuser URL it was made from (to drop it).
    pub base_url: String,
    /// The database as its owner, the superuser.
    pub admin_url: String,
    /// The database as [`APP_ROLE`]: what the hub should open.
    pub app_url: String,
}

impl TestDb {
    /// Creates, migrates and grants a fresh database on the server of `base`.
    pub async fn create(base: &str) -> anyhow::Result<Self> {
        let name = format!("sharehub_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(base).await.context("connecting as the superuser")?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.context("creating the database")?;
        ensure_role(&mut conn).await?;
        conn.close().await.ok();

        let user = base.split_once("://").and_then(|(_, r)| r.split_once('@')).map_or("postgres", |(u, _)| u);
        let db = TestDb {
            admin_url: with_user_db(base, user, &name),
            app_url: with_user_db(base, APP_ROLE, &name),
            base_url: base.to_string(),
            name,
        };
        PgStore::migrate(&db.admin_url).await.context("migrating the test database")?;
        let mut conn = PgConnection::connect(&db.admin_url).await.context("connecting to the test database")?;
        let grant = format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}");
        sqlx::query(&grant).execute(&mut conn).await.context("granting the hub's role")?;
        conn.close().await.ok();
        Ok(db)
    }

    /// Drops the database, disconnecting whoever still uses it.
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.base_url).await.context("connecting as the superuser")?;
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::query(&sql).execute(&mut conn).await.with_context(|| format!("dropping {}", self.name))?;
        conn.close().await.ok();
        Ok(())
    }

    /// [`drop_database`](Self::drop_database) from synchronous code such as
    /// a `Drop` impl: runs on a thread of its own with its own runtime, so it
    /// works inside or outside any Tokio runtime, and waits for it.
    pub fn drop_database_blocking(&self) -> anyhow::Result<()> {
        let db = self.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(db.drop_database())
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the thread dropping the test database panicked"))?
    }
}

/// Creates the hub's role; tests running in parallel may race to it.
async fn ensure_role(conn: &mut PgConnection) -> anyhow::Result<()> {
    let sql = format!(
        "DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    );
    sqlx::query(&sql).execute(&mut *conn).await.context("creating the hub's role")?;
    Ok(())
}

/// `url` with another user and database (keeps scheme, host, port and options).
pub fn with_user_db(url: &str, user: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let (host, query) = host.split_once('?').unwrap_or((host, ""));
    let host = host.split_once('/').map_or(host, |(h, _)| h);
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    format!("{scheme}://{user}@{host}/{db}{query}")
}

#[cfg(test)]
mod tests {
    use super::with_user_db;

    #[test]
    fn with_user_db_swaps_user_and_database_only() {
        let url = "postgres://postgres:pw@127.0.0.1:5432/postgres?sslmode=disable";
        assert_eq!(with_user_db(url, "app", "t1"), "postgres://app@127.0.0.1:5432/t1?sslmode=disable");
        assert_eq!(with_user_db("postgresql://h", "app", "t1"), "postgresql://app@h/t1");
    }
}
