//! Configuration in layers: the commented defaults embedded in the binary,
//! then an optional TOML file, then `SHAREHUB_*` environment variables
//! (`SHAREHUB_DELIVERY__TIMEOUT_SECS=5` sets `delivery.timeout_secs`).

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

/// The defaults, with a comment on every setting; `sharehub default-config` prints them.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything sharehub can be told. A key it does not know (a typo in a
/// file, say) is an error rather than a setting silently left at its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// `sqlite://path/to/file.db`.
    pub database_url: String,
    /// The URL clients reach the hub at, for `pagination.next` and `_links`;
    /// when empty, it is taken from each request's Host header.
    pub public_url: String,
    /// Bearer token of the platform (admin) API; the admin API is closed when empty.
    pub admin_token: Option<Secret>,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take, body included, in seconds (then 408);
    /// a client whose headers are not all in by then is disconnected.
    pub request_timeout_secs: u64,
    /// Most operations in one `POST /batch`.
    pub batch_max_ops: usize,
    /// How long an `Idempotency-Key` answer is replayed, in hours.
    pub idempotency_hours: u32,
    /// Requests per second each app may make to one hub process (a burst of
    /// as many is allowed), then 429 with `Retry-After`; 0 for no limit.
    pub rate_limit_per_app: u32,
    /// `text` or `json` logs.
    pub log_format: String,
    pub delivery: DeliveryConfig,
}

/// How webhooks are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Start the delivery workers in this process.
    pub enabled: bool,
    /// Delays between retries of a failing batch, e.g. "5s,30s,2m,10m,1h".
    pub retry_schedule: String,
    /// Random spread applied to each delay (0.2 = ±20%).
    pub jitter: f64,
    /// Time a receiver has to answer, in seconds.
    pub timeout_secs: u64,
    /// Most records in one webhook POST.
    pub batch_records: usize,
    /// How often idle workers look for work they were not woken for, in milliseconds.
    pub poll_interval_ms: u64,
    /// How long a process's claim on an app's deliveries lasts unless
    /// renewed, in milliseconds: the wait before another process takes over
    /// from one that died (PostgreSQL).
    pub lease_ms: u64,
}

impl Config {
    /// Loads the defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let sections = top_level_keys()?;
        let env = Env::prefixed("SHAREHUB_").split("__").filter(move |key| {
            let first = key.as_str().split('.').next().unwrap_or_default();
            sections.iter().any(|s| s.eq_ignore_ascii_case(first))
        });
        let config: Config = figment.merge(env).extract().map_err(Box::new)?;
        config.validate().map_err(|e| Box::new(figment::Error::from(e)))?;
        Ok(config)
    }

    #[cfg(test)]
    fn from_file_text(text: &str) -> Result<Self, Box<figment::Error>> {
        let figment = Figment::from(Toml::string(DEFAULT_CONFIG)).merge(Toml::string(text));
        figment.extract().map_err(Box::new)
    }

    fn validate(&self) -> Result<(), String> {
        if self.body_limit_bytes < 1024 {
            return Err("body_limit_bytes must be at least 1024".into());
        }
        if self.request_timeout_secs == 0 {
            return Err("request_timeout_secs must be positive".into());
        }
        if self.batch_max_ops == 0 || self.delivery.batch_records == 0 {
            return Err("batch_max_ops and delivery.batch_records must be positive".into());
        }
        // A renewal must fit in a third of the lease (see the delivery worker).
        if self.delivery.lease_ms < 300 {
            return Err("delivery.lease_ms must be at least 300".into());
        }
        // 0 would make every idle worker spin.
        if self.delivery.poll_interval_ms < 10 {
            return Err("delivery.poll_interval_ms must be at least 10".into());
        }
        if !self.public_url.is_empty() && !is_http_url(&self.public_url) {
            return Err(format!("public_url must be an http:// or https:// URL, or empty; got {:?}", self.public_url));
        }
        if !(0.0..=1.0).contains(&self.delivery.jitter) {
            return Err("delivery.jitter must be between 0 and 1".into());
        }
        sharehub_delivery::schedule::RetrySchedule::parse_delays(&self.delivery.retry_schedule)
            .map(|_| ())
            .map_err(|e| format!("delivery.retry_schedule: {e}"))
    }

    pub fn admin_token(&self) -> Option<&Secret> {
        self.admin_token.as_ref().filter(|t| !t.expose().is_empty())
    }
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// The top-level keys of the defaults. A `SHAREHUB_*` variable whose first
/// part names none of them (another tool's, or the tests' `SHAREHUB_TEST_*`)
/// is not read as a setting; one inside a section must name a real key.
fn top_level_keys() -> Result<Vec<String>, Box<figment::Error>> {
    let defaults: figment::value::Dict = Figment::from(Toml::string(DEFAULT_CONFIG)).extract().map_err(Box::new)?;
    Ok(defaults.into_keys().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_in_a_file_is_an_error_that_names_it() {
        let error = Config::from_file_text("databse_url = \"sqlite://x.db\"").unwrap_err().to_string();
        assert!(error.contains("databse_url"), "{error}");

        let error = Config::from_file_text("[delivery]\ntimeout_sec = 5").unwrap_err().to_string();
        assert!(error.contains("timeout_sec"), "{error}");

        let error = Config::from_file_text("[delivry]\ntimeout_secs = 5").unwrap_err().to_string();
        assert!(error.contains("delivry"), "{error}");
    }

    #[test]
    fn a_spinning_poll_and_a_public_url_that_is_no_url_are_refused() {
        let load = |text: &str| Config::from_file_text(text).unwrap().validate();
        assert!(load("[delivery]\npoll_interval_ms = 0").unwrap_err().contains("poll_interval_ms"));
        assert!(load("public_url = \"not a url\"").unwrap_err().contains("public_url"));
        assert!(load("public_url = \"ftp://hub.example\"").unwrap_err().contains("public_url"));
        assert!(load("public_url = \"https://hub.example/base\"").is_ok());
        assert!(load("public_url = \"\"").is_ok());
    }

    #[test]
    fn known_keys_in_a_file_are_read() {
        let config = Config::from_file_text("bind = \"127.0.0.1:9999\"\n[delivery]\ntimeout_secs = 3").unwrap();
        assert_eq!(config.bind.port(), 9999);
        assert_eq!(config.delivery.timeout_secs, 3);
    }

    #[test]
    fn every_section_of_the_defaults_is_a_top_level_key() {
        let keys = top_level_keys().unwrap();
        for key in ["bind", "database_url", "admin_token", "delivery"] {
            assert!(keys.iter().any(|k| k == key), "{key} missing from {keys:?}");
        }
        assert!(!keys.iter().any(|k| k.starts_with("test")));
    }
}
