//! Per-organization settings (sharing on/off, entities and their direction,
//! historical data, hub preemption) and the connector's timing options.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which way an app entity's records flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// App to hub only.
    Push,
    /// Hub to app only.
    Pull,
    #[default]
    Both,
    /// Not shared.
    Off,
}

impl Direction {
    pub fn pushes(self) -> bool {
        matches!(self, Direction::Push | Direction::Both)
    }

    pub fn pulls(self) -> bool {
        matches!(self, Direction::Pull | Direction::Both)
    }
}

/// How one organization shares data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrgSettings {
    /// The app's group in this organization (`cld-...`).
    pub group_id: String,
    /// Sharing on or off for the whole organization.
    #[serde(default = "yes")]
    pub sharing: bool,
    /// Whether the initial import shares records that existed before the
    /// connector started; when false, only later changes are shared.
    #[serde(default = "yes")]
    pub historical: bool,
    /// On a conflict the hub's version wins (else the newer change wins).
    #[serde(default)]
    pub hub_preemption: bool,
    /// Direction per app entity; an entity not listed is not shared. Empty
    /// means every mapped entity, both ways.
    #[serde(default)]
    pub entities: BTreeMap<String, Direction>,
}

fn yes() -> bool {
    true
}

impl OrgSettings {
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            sharing: true,
            historical: true,
            hub_preemption: false,
            entities: BTreeMap::new(),
        }
    }

    pub fn direction(&self, app_entity: &str) -> Direction {
        if self.entities.is_empty() {
            return Direction::Both;
        }
        self.entities.get(app_entity).copied().unwrap_or(Direction::Off)
    }
}

/// Timing and sizing of the sync loops.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
#[serde(deny_unknown_fields)]
pub struct SyncOptions {
    /// Records per page read from the app, and per batch sent to the hub.
    pub page_size: usize,
    /// How often the app is polled for changes.
    #[serde(with = "millis")]
    pub poll_interval: Duration,
    /// How often the hub's change feed is read (besides webhooks).
    #[serde(with = "millis")]
    pub feed_interval: Duration,
    /// The longest an app's write may stay uncommitted: polls re-read this
    /// far before their cursor, for rows committed late with an earlier
    /// updated-at, until a poll has begun this long after them.
    #[serde(with = "millis")]
    pub overlap: Duration,
    /// Tries per hub request during outages, and the first pause between them.
    pub hub_attempts: u32,
    #[serde(with = "millis")]
    pub hub_backoff: Duration,
    /// Failed sync steps in a row after which an organization pauses.
    pub pause_after_failures: i64,
    /// Tries of a failing record before it is left for a person to fix.
    pub record_attempts: i64,
    /// Hub records applied to the app at once, at most (the app's adapter
    /// may allow fewer).
    pub pull_concurrency: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            page_size: 50,
            poll_interval: Duration::from_secs(10),
            feed_interval: Duration::from_secs(60),
            overlap: Duration::from_secs(30),
            hub_attempts: 5,
            hub_backoff: Duration::from_millis(500),
            pause_after_failures: 10,
            record_attempts: 5,
            pull_concurrency: 8,
        }
    }
}

/// Durations written as milliseconds in configuration files.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
