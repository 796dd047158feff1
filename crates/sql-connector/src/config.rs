//! The SQL connector's configuration file (TOML): the hub and the app's
//! credentials on it, where to listen for webhooks, the state file, the
//! mapping file, timing, and one `[[orgs]]` entry per organization with its
//! app database and settings.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sharehub_connector::{OrgSettings, SyncOptions};

use crate::error::{Error, Result};

/// The hub and the connector's app registration on it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    pub url: String,
    pub api_id: String,
    pub api_key: String,
    pub webhook_secret: String,
    pub provider: String,
}

impl std::fmt::Debug for HubConfig {
    // Keys stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig").field("url", &self.url).field("api_id", &self.api_id).finish_non_exhaustive()
    }
}

/// One organization: its settings and its app database.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgConfig {
    /// `sqlite://...` or `postgres://...`.
    pub database: String,
    #[serde(flatten)]
    pub settings: OrgSettings,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub hub: HubConfig,
    /// Address of the webhook receiver and status endpoint.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The connector's own SQLite file (id map, cursors, status).
    pub state: PathBuf,
    /// The mapping file (tables and entities).
    pub mapping: PathBuf,
    #[serde(default)]
    pub sync: SyncOptions,
    #[serde(default)]
    pub orgs: Vec<OrgConfig>,
}

fn default_listen() -> String {
    "127.0.0.1:9100".into()
}

impl Config {
    /// Reads the file; relative paths in it are taken from its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        check_sync(&config.sync).map_err(|why| Error::Config(format!("{}: {why}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.state = base.join(&config.state);
        config.mapping = base.join(&config.mapping);
        Ok(config)
    }
}

/// Settings that would make the connector spin or stall.
fn check_sync(sync: &sharehub_connector::SyncOptions) -> std::result::Result<(), String> {
    const FLOOR: std::time::Duration = std::time::Duration::from_millis(10);
    if sync.poll_interval < FLOOR || sync.feed_interval < FLOOR {
        return Err("[sync] poll_interval and feed_interval must be at least 10 (milliseconds)".into());
    }
    if sync.page_size == 0 || sync.pull_concurrency == 0 || sync.hub_attempts == 0 {
        return Err("[sync] page_size, pull_concurrency and hub_attempts must be at least 1".into());
    }
    Ok(())
}
