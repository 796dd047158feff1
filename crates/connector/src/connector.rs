//! The connector: organizations, each with its app adapter and settings, and
//! the loop that imports, polls the app, reads the hub's change feed, and
//! pauses an organization that keeps failing.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::adapter::AppAdapter;
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::mapping::{EntityMapping, Mapping, Target};
use crate::settings::{OrgSettings, SyncOptions};
use crate::state::State;

/// The cursor name marking an organization's initial import as done.
const IMPORT_DONE: &str = "import_done";

/// One organization the connector serves.
pub struct Org {
    pub settings: OrgSettings,
    pub adapter: Arc<dyn AppAdapter>,
    /// One sync step at a time per organization: polling, the feed and
    /// webhooks never race on the same id map rows.
    pub(crate) lock: Mutex<()>,
}

/// The connector framework, shared by its loops and its HTTP endpoints.
#[derive(Clone)]
pub struct Connector {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub state: State,
    pub hub: Hub,
    pub mapping: Mapping,
    pub options: SyncOptions,
    pub orgs: HashMap<String, Org>,
    /// The app's `whsec_` secret and Basic credentials, to check webhooks.
    pub webhook_secret: String,
    pub basic: (String, String),
    /// Locks over hub records being applied, by a hash of entity and id.
    record_locks: Vec<Mutex<()>>,
    /// Organizations whose provider this process has checked with the hub.
    provider_checked: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Stripes of [`Inner::record_locks`]: enough that concurrent applies
/// rarely share one, few enough to cost nothing.
const RECORD_LOCKS: usize = 64;

impl Inner {
    /// The lock of one hub record (shared with the records of its stripe).
    pub(crate) fn record_lock(&self, hub_entity: &str, hub_id: &str) -> &Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (hub_entity, hub_id).hash(&mut hasher);
        &self.record_locks[(hasher.finish() as usize) % self.record_locks.len()]
    }
}

/// Everything a connector is made of.
pub struct ConnectorParts {
    pub state: State,
    pub hub: Hub,
    pub mapping: Mapping,
    pub options: SyncOptions,
    pub orgs: Vec<(OrgSettings, Arc<dyn AppAdapter>)>,
    pub webhook_secret: String,
    pub api_id: String,
    pub api_key: String,
}

impl Connector {
    pub fn new(parts: ConnectorParts) -> Result<Self> {
        parts.mapping.validate()?;
        let orgs = parts
            .orgs
            .into_iter()
            .map(|(settings, adapter)| (settings.group_id.clone(), Org { settings, adapter, lock: Mutex::new(()) }))
            .collect();
        let inner = Inner {
            state: parts.state,
            hub: parts.hub,
            mapping: parts.mapping,
            options: parts.options,
            orgs,
            webhook_secret: parts.webhook_secret,
            basic: (parts.api_id, parts.api_key),
            record_locks: (0..RECORD_LOCKS).map(|_| Mutex::new(())).collect(),
            provider_checked: Default::default(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn state(&self) -> &State {
        &self.inner.state
    }

    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self.inner.orgs.keys().cloned().collect();
        groups.sort();
        groups
    }

    pub(crate) fn org(&self, group: &str) -> Result<&Org> {
        self.inner.orgs.get(group).ok_or_else(|| Error::Config(format!("{group} is not served by this connector")))
    }

    pub(crate) fn target(&self, app_entity: &str, hub_entity: &str) -> Option<(&EntityMapping, &Target)> {
        let entity = self.inner.mapping.entity(app_entity)?;
        Some((entity, entity.targets.iter().find(|t| t.hub == hub_entity)?))
    }

    /// Runs every organization's loop until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let tasks: Vec<_> = self
            .groups()
            .into_iter()
            .map(|group| {
                let connector = self.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move { connector.run_org(&group, shutdown).await })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    }

    async fn run_org(&self, group: &str, shutdown: CancellationToken) {
        let mut last_feed = None::<tokio::time::Instant>;
        let mut failures = 0u32;
        loop {
            let feed_due = last_feed.is_none_or(|at| at.elapsed() >= self.inner.options.feed_interval);
            match self.sync_once(group, feed_due).await {
                Ok(ran) => {
                    failures = 0;
                    if ran && feed_due {
                        last_feed = Some(tokio::time::Instant::now());
                    }
                }
                Err(_) => failures = failures.saturating_add(1),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.pause_after(failures)) => {}
            }
        }
    }

    /// The poll interval, doubled per failed step in a row (at most 32
    /// times, and at most 5 minutes), so an app or hub that is down is not
    /// hammered.
    fn pause_after(&self, failures: u32) -> std::time::Duration {
        let interval = self.inner.options.poll_interval;
        let backed_off = interval.saturating_mul(1 << failures.min(5));
        backed_off.min(std::time::Duration::from_secs(300).max(interval))
    }

    /// One sync step of an organization: the initial import until it is
    /// done, then a poll of the app and (when `with_feed`) a read of the
    /// change feed. Answers whether the step ran and succeeded.
    #[tracing::instrument(skip_all, fields(group))]
    pub async fn sync_once(&self, group: &str, with_feed: bool) -> Result<bool> {
        let org = self.org(group)?;
        if !org.settings.sharing || self.inner.state.status(group).await?.paused {
            return Ok(false);
        }
        let outcome = match self.check_provider(group).await {
            Err(e) => Err(e),
            Ok(()) => match self.inner.state.cursor(group, IMPORT_DONE).await? {
                None => self.import(group).await,
                Some(_) => self.poll_and_catch_up(group, with_feed).await,
            },
        };
        match outcome {
            Ok(()) => {
                self.inner.state.note_success(group).await?;
                Ok(true)
            }
            Err(e) => {
                self.note_failure(group, &e).await?;
                Err(e)
            }
        }
    }

    /// Before the first step of an organization: the hub must know the
    /// connector's app by the configured provider. With another, every record
    /// written would carry an id entry the hub does not take as the app's,
    /// and stay unlinked; so the organization pauses before writing anything.
    async fn check_provider(&self, group: &str) -> Result<()> {
        if self.inner.provider_checked.lock().unwrap_or_else(|e| e.into_inner()).contains(group) {
            return Ok(());
        }
        let known = self.inner.hub.provider_in(group).await.map_err(|e| match e {
            Error::HubRefused { status: 401, detail } => Error::refused_group(group, &detail),
            other => other,
        })?;
        let configured = self.inner.hub.provider();
        if !known.is_empty() && known != configured {
            self.inner.state.set_paused(group, true).await?;
            return Err(Error::Config(format!(
                "the hub knows this connector's app as provider {known:?}, not {configured:?}: \
                 fix [hub] provider, restart, then resume {group}"
            )));
        }
        self.inner.provider_checked.lock().unwrap_or_else(|e| e.into_inner()).insert(group.to_string());
        Ok(())
    }

    /// Whether the organization's initial import has finished.
    pub async fn import_done(&self, group: &str) -> Result<bool> {
        Ok(self.inner.state.cursor(group, IMPORT_DONE).await?.is_some())
    }

    async fn poll_and_catch_up(&self, group: &str, with_feed: bool) -> Result<()> {
        self.push_changes(group).await?;
        self.retry_failed_pushes(group).await?;
        self.retry_failed_pulls(group).await?;
        if with_feed {
            self.catch_up(group).await?;
        }
        Ok(())
    }

    /// The initial import: the app's records to the hub first (merged into
    /// matching hub records), then the hub's to the app. Each page's progress
    /// is saved, so a restart resumes where it stopped.
    pub async fn import(&self, group: &str) -> Result<()> {
        let org = self.org(group)?;
        if !org.settings.historical {
            self.skip_history(group).await?;
        }
        self.push_changes(group).await?;
        self.catch_up(group).await?;
        self.inner.state.save_cursor(group, IMPORT_DONE, "true").await?;
        tracing::info!(group, "initial import done");
        // Webhooks that came while the import ran were dropped, and their
        // records may be newer than what the feed read above saw; they are
        // all in the feed by now, so read it again rather than leave them
        // for the next `feed_interval` (a minute by default).
        self.catch_up(group).await
    }

    async fn note_failure(&self, group: &str, error: &Error) -> Result<()> {
        let failures = self.inner.state.note_failure(group, &error.to_string()).await?;
        if failures >= self.inner.options.pause_after_failures {
            self.inner.state.set_paused(group, true).await?;
            tracing::error!(group, failures, %error, "sync paused after repeated failures; resume with `resume`");
        } else {
            tracing::warn!(group, failures, %error, "sync step failed; retrying at the next poll");
        }
        Ok(())
    }
}
