//! The test harness: a real hub on 127.0.0.1:0 with a database of its own,
//! typed helpers for the platform and the API, and real webhook receivers.
//!
//! The database is a temporary SQLite file unless `SHAREHUB_TEST_BACKEND=postgres`
//! and `SHAREHUB_TEST_POSTGRES_URL` (a superuser URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`) are set: then each
//! [`TestApp`] gets a PostgreSQL database of its own, migrated by the superuser
//! and used by the hub as the non-superuser role `sharehub_app` (so row-level
//! security applies), kept across [`TestApp::restart`] and dropped with the
//! [`TestApp`].
#![allow(dead_code)]

pub mod receiver;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use sharehub_server::{Config, Running};
use sharehub_store::test_support::{self, TestDb};

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// An app's credentials as the platform hands them out.
#[derive(Debug, Clone)]
pub struct AppCreds {
    pub api_id: String,
    pub api_key: String,
    pub webhook_secret: String,
    pub provider: String,
}

/// A running hub for one test.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub config: Config,
    running: Option<Running>,
    // Declared after `running` so the hub goes before its database.
    db: Database,
}

/// The database behind one [`TestApp`]; removed when dropped.
enum Database {
    Sqlite(tempfile::TempDir),
    Postgres(PgDatabase),
}

/// A PostgreSQL test database, dropped (`WITH (FORCE)`) with this value.
struct PgDatabase(TestDb);

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Err(e) = self.0.drop_database_blocking() {
            eprintln!("could not drop the test database {}: {e:#}", self.0.name);
        }
    }
}

impl Database {
    /// A fresh database on the backend the environment asks for; answers it
    /// with the URL the hub should open.
    async fn create() -> (Self, String) {
        match postgres_base_url() {
            Some(base) => {
                let db = TestDb::create(&base).await.expect("creating a PostgreSQL test database");
                let url = db.app_url.clone();
                (Database::Postgres(PgDatabase(db)), url)
            }
            None => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = sqlite_url(&dir.path().join("hub.db"));
                (Database::Sqlite(dir), url)
            }
        }
    }
}

/// The superuser URL to make PostgreSQL databases from, when the environment
/// asks for that backend (`SHAREHUB_TEST_BACKEND=postgres`).
fn postgres_base_url() -> Option<String> {
    match std::env::var("SHAREHUB_TEST_BACKEND").ok().as_deref() {
        None | Some("") | Some("sqlite") => None,
        Some("postgres") => {
            let url = test_support::base_url_from_env();
            if url.is_none() {
                skip_notice();
            }
            url
        }
        Some(other) => panic!("SHAREHUB_TEST_BACKEND={other:?}: expected \"sqlite\" or \"postgres\""),
    }
}

/// Says, once per test binary, why PostgreSQL was asked for but not used.
/// Written to stderr directly: `eprintln!` output is captured by the test
/// runner and would only show for failing tests.
fn skip_notice() {
    static NOTICE: std::sync::Once = std::sync::Once::new();
    NOTICE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "PostgreSQL skipped: SHAREHUB_TEST_BACKEND=postgres but {} is not set \
             (e.g. postgres://postgres@127.0.0.1:5432/postgres); running on SQLite",
            test_support::URL_VAR
        );
    });
}

fn sqlite_url(db_path: &std::path::Path) -> String {
    format!("sqlite://{}", db_path.display())
}

/// The configuration tests start from: fast retries, fast polling.
pub fn test_config(db_path: &std::path::Path) -> Config {
    test_config_for(sqlite_url(db_path))
}

/// [`test_config`] on the database at `database_url`.
pub fn test_config_for(database_url: String) -> Config {
    let mut config = Config::load(None).expect("default config");
    config.database_url = database_url;
    config.admin_token = Some(sharehub_server::config::Secret::new(ADMIN_TOKEN));
    config.delivery.retry_schedule = "100ms,200ms,300ms".into();
    config.delivery.jitter = 0.0;
    config.delivery.timeout_secs = 5;
    config.delivery.poll_interval_ms = 100;
    config
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a hub after `adjust` has changed the test configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let (db, url) = Database::create().await;
        let mut config = test_config_for(url);
        adjust(&mut config);
        let running = start(&config).await;
        let base = format!("http://{}", running.addr);
        Self { base, client: reqwest::Client::new(), config, running: Some(running), db }
    }

    /// Stops the hub (finishing requests in flight) and starts it again on the same database.
    pub async fn restart(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        let running = start(&self.config).await;
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    /// Stops the hub (gracefully, as `restart` does) and leaves it stopped.
    /// A real SIGKILL of a `sharehub serve` process is tested in
    /// `crates/sharehub/tests/sqlite_crash.rs` and `multiprocess.rs`.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// The hub's database as its owner, for tests that reach behind the hub:
    /// the SQLite file, or the PostgreSQL database as the superuser.
    pub fn database_owner_url(&self) -> String {
        match &self.db {
            Database::Sqlite(_) => self.config.database_url.clone(),
            Database::Postgres(pg) => pg.0.admin_url.clone(),
        }
    }

    pub fn store(&self) -> std::sync::Arc<dyn sharehub_store::Store> {
        self.running.as_ref().expect("running hub").store.clone()
    }

    // --- platform ---------------------------------------------------------

    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(ADMIN_TOKEN)
    }

    pub async fn create_org(&self, name: &str) -> String {
        let body: Value = self
            .admin(Method::POST, "/platform/v1/orgs")
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["org"]["id"].as_str().expect("org id").to_string()
    }

    /// Registers an app; `entities` is `[(entity, "rws")]`.
    pub async fn create_app(&self, provider: &str, entities: &[(&str, &str)], url: Option<&str>) -> AppCreds {
        let entities: Vec<Value> = entities
            .iter()
            .map(|(e, rights)| json!({ "entity": e, "read": rights.contains('r'), "write": rights.contains('w'), "subscribe": rights.contains('s') }))
            .collect();
        let response = self
            .admin(Method::POST, "/platform/v1/apps")
            .json(&json!({ "name": provider, "provider": provider, "notification_url": url, "entities": entities }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "registering {provider}");
        let body: Value = response.json().await.unwrap();
        let s = &body["secrets"];
        AppCreds {
            api_id: s["api_id"].as_str().unwrap().into(),
            api_key: s["api_key"].as_str().unwrap().into(),
            webhook_secret: s["webhook_secret"].as_str().unwrap().into(),
            provider: provider.into(),
        }
    }

    pub async fn install(&self, app: &AppCreds, org: &str) -> String {
        self.install_with(app, org, None).await
    }

    /// Installs `app` in `org` as the account `realm` (default: the group id).
    pub async fn install_with(&self, app: &AppCreds, org: &str, realm: Option<&str>) -> String {
        let body: Value = self
            .admin(Method::POST, "/platform/v1/groups")
            .json(&json!({ "app_id": app.api_id, "org_id": org, "realm": realm }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["group"]["id"].as_str().expect("group id").to_string()
    }

    // --- API --------------------------------------------------------------

    /// A request to the API as `app`, with the Connec! media type.
    pub fn api(&self, app: &AppCreds, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&app.api_id, Some(&app.api_key))
            .header("content-type", "application/vnd.api+json")
            .header("accept", "application/vnd.api+json")
    }

    /// POSTs `{entity: record}` to the group; answers (status, body).
    pub async fn post(&self, app: &AppCreds, group: &str, entity: &str, record: Value) -> (StatusCode, Value) {
        let response = self
            .api(app, Method::POST, &format!("/api/v2/{group}/{entity}"))
            .json(&json!({ entity: record }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, app: &AppCreds, path: &str) -> (StatusCode, Value) {
        let response = self.api(app, Method::GET, path).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn start(config: &Config) -> Running {
    let store = sharehub_store::open(&config.database_url).await.expect("open store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    sharehub_server::start(config.clone(), store, listener).await.expect("start hub")
}

/// Polls `check` every 20 ms until it answers `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "condition not met within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
