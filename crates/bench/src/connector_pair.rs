//! The setup of the connector-* scenarios: a real hub in-process, the whole
//! Chinook store in SQLite behind one SQL connector ("store") and an empty
//! CRM database on PostgreSQL behind another ("crm"), both installed in one
//! organization, exactly as `sharehub-sql-connector run` builds them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use sharehub_connector::{OrgSettings, SyncOptions};
use sharehub_sql_connector::config::{HubConfig, OrgConfig};
use sharehub_sql_connector::db::Db;
use sharehub_sql_connector::{chinook, run, Config};
use tokio::net::TcpListener;

use crate::hub::{AppCreds, Hub};

/// Where the shipped mappings and the CRM schema live.
const MAPPINGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../sql-connector/mappings");

/// Rights both apps get: everything either mapping shares.
const ENTITIES: &[(&str, &str)] =
    &[("organizations", "rws"), ("people", "rws"), ("employees", "rws"), ("items", "rws"), ("invoices", "rws")];

/// A fresh PostgreSQL database with the CRM schema, dropped by [`CrmDatabase::drop`].
pub struct CrmDatabase {
    admin: sqlx::PgPool,
    name: String,
    pub url: String,
    pub db: Db,
}

impl CrmDatabase {
    pub async fn create(superuser_url: &str, label: &str) -> Result<Self> {
        let admin = sqlx::PgPool::connect(superuser_url).await.context("connecting to PostgreSQL")?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
        let name = format!("crm_bench_{label}_{nanos:x}");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
        let (server, _) = superuser_url.rsplit_once('/').context("--postgres must end with /<database>")?;
        let url = format!("{server}/{name}");
        let db = Db::connect(&url).await?;
        let schema = std::fs::read_to_string(Path::new(MAPPINGS).join("crm.sql"))?;
        let mut tx = db.begin().await?;
        for statement in schema.split(';').filter(|s| !s.trim().is_empty()) {
            tx.execute(statement, &[]).await?;
        }
        tx.commit().await?;
        Ok(Self { admin, name, url, db })
    }

    pub async fn drop(self) {
        drop(self.db);
        let sql = format!("DROP DATABASE {} WITH (FORCE)", self.name);
        if let Err(e) = sqlx::query(&sql).execute(&self.admin).await {
            eprintln!("warning: could not drop {}: {e}", self.name);
        }
    }
}

/// Both apps registered and installed, their databases ready, the
/// connectors not started yet.
pub struct Pair {
    pub hub: Hub,
    pub store_db: Db,
    pub crm: CrmDatabase,
    store: (Config, TcpListener),
    crm_side: (Config, TcpListener),
    pub store_group: String,
    _dir: tempfile::TempDir,
}

/// The two connectors running.
pub struct Running {
    pub store: run::Running,
    pub crm: run::Running,
}

impl Pair {
    /// Builds everything; `poll` is both connectors' polling interval.
    pub async fn prepare(superuser_url: &str, label: &str, poll: Duration) -> Result<Self> {
        let hub = Hub::start().await?;
        let dir = tempfile::tempdir()?;
        let store_path = dir.path().join("chinook.db");
        chinook::build(&store_path).await?;
        let store_db = Db::connect(&format!("sqlite://{}", store_path.display())).await?;
        let crm = CrmDatabase::create(superuser_url, label).await?;

        let org = hub.platform.create_org("Chinook Music").await?;
        let store_listener = TcpListener::bind("127.0.0.1:0").await?;
        let crm_listener = TcpListener::bind("127.0.0.1:0").await?;
        let hook = |l: &TcpListener| l.local_addr().map(|a| format!("http://{a}/webhooks"));
        let store_app = hub.platform.create_app("store", ENTITIES, Some(&hook(&store_listener)?)).await?;
        let crm_app = hub.platform.create_app("crm", ENTITIES, Some(&hook(&crm_listener)?)).await?;
        let store_group = hub.platform.install(&store_app, &org).await?;
        let crm_group = hub.platform.install(&crm_app, &org).await?;

        let side = |app: &AppCreds, provider: &str, group: &str, mapping: &str, database: String| Config {
            hub: HubConfig {
                url: hub.platform.base.clone(),
                api_id: app.api_id.clone(),
                api_key: app.api_key.clone(),
                webhook_secret: app.webhook_secret.clone(),
                provider: provider.into(),
            },
            listen: "127.0.0.1:0".into(),
            state: dir.path().join(format!("{provider}-state.db")),
            mapping: PathBuf::from(MAPPINGS).join(mapping),
            sync: options(poll),
            orgs: vec![OrgConfig { database, settings: OrgSettings::new(group) }],
        };
        let store_config =
            side(&store_app, "store", &store_group, "chinook.toml", format!("sqlite://{}", store_path.display()));
        let crm_config = side(&crm_app, "crm", &crm_group, "crm.toml", crm.url.clone());
        Ok(Self {
            hub,
            store_db,
            crm,
            store: (store_config, store_listener),
            crm_side: (crm_config, crm_listener),
            store_group,
            _dir: dir,
        })
    }

    /// Starts both connectors (each begins with its initial import).
    pub async fn start(&mut self) -> Result<Running> {
        let (store_config, store_listener) = &mut self.store;
        let store = run::start(run::build(store_config).await?, take(store_listener).await?).await?;
        let (crm_config, crm_listener) = &mut self.crm_side;
        let crm = run::start(run::build(crm_config).await?, take(crm_listener).await?).await?;
        Ok(Running { store, crm })
    }

    /// Stops the connectors and the hub and drops the CRM database.
    pub async fn stop(self, running: Running) {
        running.store.stop().await;
        running.crm.stop().await;
        self.hub.stop().await;
        self.crm.drop().await;
    }
}

/// The defaults of `connector.example.toml`, but polling every `poll` and
/// re-reading only 5 s before the cursor: with the default 30 s every poll
/// right after the import re-reads the thousands of rows it just wrote.
fn options(poll: Duration) -> SyncOptions {
    SyncOptions { poll_interval: poll, overlap: Duration::from_secs(5), ..SyncOptions::default() }
}

/// The listener, leaving a closed placeholder behind (a pair starts once).
async fn take(listener: &mut TcpListener) -> Result<TcpListener> {
    let placeholder = TcpListener::bind("127.0.0.1:0").await?;
    Ok(std::mem::replace(listener, placeholder))
}

/// The status endpoint's last successful step of a connector, if any.
pub async fn last_success(client: &reqwest::Client, running: &run::Running, group: &str) -> Option<String> {
    let url = format!("http://{}/status/{group}", running.addr);
    let status: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
    status["status"]["last_success"].as_str().map(String::from)
}

/// The first column of the first row as an integer (a `count(*)`).
pub async fn count(db: &Db, sql: &str) -> Result<i64> {
    let rows = db.fetch(sql, &[]).await?;
    rows.first().and_then(|r| r.values().next()).and_then(|v| v.as_i64()).context("a count")
}
