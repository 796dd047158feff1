//! Test support: a real hub in-process on 127.0.0.1:0 with its own SQLite
//! file, apps registered through the platform API, the Chinook app database
//! built for real, and the SQL connector started on it.
#![allow(dead_code)]

pub mod hub;
pub mod pg;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sharehub_connector::{OrgSettings, SyncOptions};
use sharehub_sql_connector::config::{HubConfig, OrgConfig};
use sharehub_sql_connector::db::{Db, Param};
use sharehub_sql_connector::{chinook, run, Config};

pub use hub::{AppCreds, TestHub};

/// The Chinook mapping shipped with the connector.
pub fn chinook_mapping() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/chinook.toml")
}

/// Timing for tests: fast polls, a short overlap.
pub fn fast_sync() -> SyncOptions {
    SyncOptions {
        page_size: 50,
        poll_interval: Duration::from_millis(150),
        feed_interval: Duration::from_millis(300),
        overlap: Duration::from_secs(2),
        hub_attempts: 3,
        hub_backoff: Duration::from_millis(100),
        pause_after_failures: 10,
        record_attempts: 5,
        pull_concurrency: 8,
    }
}

/// The Chinook database built at `path`, cut down to the first `customers`,
/// `tracks` and `invoices` (whose lines only name kept tracks).
pub async fn chinook_db(path: &Path, customers: i64, tracks: i64, invoices: i64) -> Db {
    chinook::build(path).await.expect("building chinook");
    let db = Db::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let cuts = [
        format!("DELETE FROM customers WHERE id > {customers}"),
        format!("DELETE FROM tracks WHERE id > {tracks}"),
        format!("DELETE FROM invoices WHERE id > {invoices} OR customer > {customers}"),
        format!("DELETE FROM invoice_lines WHERE track > {tracks} OR invoice NOT IN (SELECT id FROM invoices)"),
    ];
    for sql in cuts {
        exec(&db, &sql, &[]).await;
    }
    db
}

pub async fn exec(db: &Db, sql: &str, params: &[Param]) -> u64 {
    let mut tx = db.begin().await.unwrap();
    let n = tx.execute(sql, params).await.unwrap();
    tx.commit().await.unwrap();
    n
}

pub async fn rows(db: &Db, sql: &str) -> Vec<serde_json::Map<String, Value>> {
    db.fetch(sql, &[]).await.unwrap()
}

pub async fn count(db: &Db, sql: &str) -> i64 {
    let rows = rows(db, sql).await;
    rows[0].values().next().and_then(Value::as_i64).unwrap()
}

/// Now, as the app writes its updated-at column.
pub fn now_text() -> String {
    sharehub_connector::convert::format_timestamp(jiff::Timestamp::now())
}

/// A connector's configuration for one organization of `hub`.
pub fn connector_config(hub: &TestHub, app: &AppCreds, dir: &Path, group: &str, database: &Path) -> Config {
    Config {
        hub: HubConfig {
            url: hub.base.clone(),
            api_id: app.api_id.clone(),
            api_key: app.api_key.clone(),
            webhook_secret: app.webhook_secret.clone(),
            provider: app.provider.clone(),
        },
        listen: "127.0.0.1:0".into(),
        state: dir.join("connector-state.db"),
        mapping: chinook_mapping(),
        sync: fast_sync(),
        orgs: vec![OrgConfig {
            database: format!("sqlite://{}", database.display()),
            settings: OrgSettings::new(group),
        }],
    }
}

/// Starts the connector and points the app's webhooks at it.
pub async fn start_connector(hub: &TestHub, app: &AppCreds, config: &Config) -> run::Running {
    let connector = run::build(config).await.expect("building the connector");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = run::start(connector, listener).await.unwrap();
    hub.set_url(app, Some(&format!("http://{}/webhooks", running.addr))).await;
    running
}

/// Polls `check` every 50 ms until it answers `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the organization's last sync step succeeded after `since`
/// (the initial import counts as one step).
pub async fn synced_after(running: &run::Running, group: &str, since: &str) {
    let url = format!("http://{}/status/{group}", running.addr);
    eventually("a successful sync step", Duration::from_secs(120), || async {
        let status: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
        let last = status["status"]["last_success"].as_str()?;
        (last > since).then_some(())
    })
    .await;
}

/// Waits for the initial import (or the next step) to finish.
pub async fn wait_for_sync(running: &run::Running, group: &str) {
    synced_after(running, group, &now_text()).await;
}

/// A hub with the store installed in one organization, and a cut of the
/// Chinook database for it.
pub struct StoreSetup {
    pub hub: TestHub,
    pub org: String,
    pub store: AppCreds,
    pub group: String,
    pub dir: tempfile::TempDir,
    pub db: sharehub_sql_connector::db::Db,
}

impl StoreSetup {
    pub async fn new() -> Self {
        let hub = TestHub::spawn().await;
        let org = hub.create_org("Chinook").await;
        let store = hub.create_app("store").await;
        let group = hub.install(&store, &org).await;
        let dir = tempfile::tempdir().unwrap();
        let db = chinook_db(&dir.path().join("chinook.db"), 5, 20, 3).await;
        Self { hub, org, store, group, dir, db }
    }
}
