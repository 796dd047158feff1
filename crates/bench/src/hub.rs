//! Hubs to benchmark: a real one started in-process on 127.0.0.1:0 with a
//! fresh SQLite file or a fresh PostgreSQL database (created by the bench,
//! used as the non-superuser role `sharehub_app`, dropped afterwards), or the
//! release `sharehub serve` binary as a child process; and the platform API
//! calls that register orgs, apps and groups.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sharehub_server::{Config, Running};
use sharehub_store::test_support::TestDb;

pub const ADMIN_TOKEN: &str = "bench-admin-token";

/// An app's credentials, as the platform hands them out.
#[derive(Debug, Clone)]
pub struct AppCreds {
    pub api_id: String,
    pub api_key: String,
    /// The `whsec_` secret the hub signs the app's webhooks with.
    pub webhook_secret: String,
}

/// The platform API of a running hub, over HTTP.
#[derive(Clone)]
pub struct Platform {
    pub base: String,
    pub client: reqwest::Client,
}

impl Platform {
    pub fn new(base: String) -> Self {
        // One client, keep-alive on: the pool reuses connections.
        let client = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("HTTP client");
        Self { base, client }
    }

    async fn admin_post(&self, path: &str, body: Value) -> Result<Value> {
        let response =
            self.client.post(format!("{}{path}", self.base)).bearer_auth(ADMIN_TOKEN).json(&body).send().await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("POST {path} answered {status}: {body}");
        }
        Ok(body)
    }

    pub async fn create_org(&self, name: &str) -> Result<String> {
        let body = self.admin_post("/platform/v1/orgs", json!({ "name": name })).await?;
        Ok(body["org"]["id"].as_str().context("org id")?.to_string())
    }

    /// Registers an app; `entities` is `[(entity, "rws")]`.
    pub async fn create_app(&self, provider: &str, entities: &[(&str, &str)], url: Option<&str>) -> Result<AppCreds> {
        let entities: Vec<Value> = entities
            .iter()
            .map(|(e, r)| json!({ "entity": e, "read": r.contains('r'), "write": r.contains('w'), "subscribe": r.contains('s') }))
            .collect();
        let body = self
            .admin_post(
                "/platform/v1/apps",
                json!({ "name": provider, "provider": provider, "notification_url": url, "entities": entities }),
            )
            .await?;
        let s = &body["secrets"];
        Ok(AppCreds {
            api_id: s["api_id"].as_str().context("api_id")?.into(),
            api_key: s["api_key"].as_str().context("api_key")?.into(),
            webhook_secret: s["webhook_secret"].as_str().unwrap_or_default().into(),
        })
    }

    /// Installs `app` in `org`; answers the group id.
    pub async fn install(&self, app: &AppCreds, org: &str) -> Result<String> {
        let body = self.admin_post("/platform/v1/groups", json!({ "app_id": app.api_id, "org_id": org })).await?;
        Ok(body["group"]["id"].as_str().context("group id")?.to_string())
    }

    /// An API request as `app`, with the Connec! media type.
    pub fn api(&self, app: &AppCreds, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&app.api_id, Some(&app.api_key))
            .header("content-type", "application/vnd.api+json")
            .header("accept", "application/vnd.api+json")
    }

    /// One org, one app writing (and reading) `entities`, installed: (app, group).
    pub async fn writer_app(&self, provider: &str, entities: &[&str]) -> Result<(AppCreds, String)> {
        let org = self.create_org(&format!("{provider} org")).await?;
        let rights: Vec<(&str, &str)> = entities.iter().map(|e| (*e, "rw")).collect();
        let app = self.create_app(provider, &rights, None).await?;
        let group = self.install(&app, &org).await?;
        Ok((app, group))
    }
}

/// A hub running in this process on a SQLite file or a PostgreSQL database of its own.
pub struct Hub {
    pub platform: Platform,
    running: Option<Running>,
    _dir: Option<tempfile::TempDir>,
    /// The fresh PostgreSQL database, dropped by [`Hub::stop`] (or on drop).
    pg: Option<TestDb>,
}

impl Hub {
    /// Starts a hub with the default configuration (as `sharehub serve` has it).
    pub async fn start() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("hub.db").display());
        let mut hub = Self::start_on(url).await?;
        hub._dir = Some(dir);
        Ok(hub)
    }

    /// Starts a hub on a fresh database of the server of `superuser_url`,
    /// migrated by the superuser; the hub connects as `sharehub_app`.
    pub async fn start_postgres(superuser_url: &str) -> Result<Self> {
        let db = TestDb::create(superuser_url).await?;
        match Self::start_on(db.app_url.clone()).await {
            Ok(mut hub) => {
                hub.pg = Some(db);
                Ok(hub)
            }
            Err(e) => {
                db.drop_database().await.ok();
                Err(e)
            }
        }
    }

    async fn start_on(database_url: String) -> Result<Self> {
        let mut config = Config::load(None).map_err(|e| anyhow::anyhow!("default config: {e}"))?;
        config.database_url = database_url;
        config.admin_token = Some(sharehub_server::config::Secret::new(ADMIN_TOKEN));
        let store = sharehub_store::open(&config.database_url).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let running = sharehub_server::start(config, store, listener).await?;
        let platform = Platform::new(format!("http://{}", running.addr));
        Ok(Self { platform, running: Some(running), _dir: None, pg: None })
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        if let Some(db) = self.pg.take() {
            if let Err(e) = db.drop_database().await {
                eprintln!("warning: could not drop {}: {e:#}", db.name);
            }
        }
    }
}

impl Drop for Hub {
    /// A scenario that failed half-way still removes its database.
    fn drop(&mut self) {
        if let Some(db) = self.pg.take() {
            db.drop_database_blocking().ok();
        }
    }
}

/// `sharehub serve` as a child process, so its memory is measured alone.
pub struct ChildHub {
    pub platform: Platform,
    pub child: tokio::process::Child,
    pub db: PathBuf,
    _dir: tempfile::TempDir,
}

impl ChildHub {
    /// Starts the `sharehub` binary that sits next to this one (target/release).
    pub async fn start() -> Result<Self> {
        let exe = std::env::current_exe()?.with_file_name("sharehub");
        if !exe.exists() {
            bail!("{} not found: run `cargo build --release -p sharehub` first", exe.display());
        }
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("hub.db");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = tokio::process::Command::new(&exe)
            .arg("serve")
            .env("SHAREHUB_DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("SHAREHUB_BIND", format!("127.0.0.1:{port}"))
            .env("SHAREHUB_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let platform = Platform::new(format!("http://127.0.0.1:{port}"));
        for _ in 0..200 {
            if platform
                .client
                .get(format!("{}/health/live", platform.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(Self { platform, child, db, _dir: dir });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the child hub did not come up on port {port}")
    }

    /// VmRSS and VmHWM of the child, in kB.
    pub fn memory_kb(&self) -> Result<(u64, u64)> {
        let pid = self.child.id().context("child has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss = crate::report::kb_field(&status, "VmRSS:").context("VmRSS")?;
        let hwm = crate::report::kb_field(&status, "VmHWM:").context("VmHWM")?;
        Ok((rss, hwm))
    }

    pub async fn stop(mut self) -> Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}
