//! A short-lived in-memory cache of the caller's app and group.
//!
//! Every API request authenticates its app and checks its group before doing
//! any work: without this cache that is three queries (the app, its entities,
//! the group) per request, often more than the work itself. Apps and groups
//! change rarely, so each entry is kept for [`TTL`].
//!
//! Correctness:
//! * The API key is still compared on every request, against the cached app
//!   ([`crate::extract::authenticate`]); only the lookup is cached.
//! * The platform API handlers of this process forget the entries they change
//!   (update, key and secret rotation, install, register) as soon as the store
//!   has committed, so those changes apply to the very next request.
//! * A missing app or group is never cached: one created a moment ago works
//!   at once, and unknown ids cannot fill the cache.
//! * Changes made by another process (the CLI, another hub on PostgreSQL)
//!   take effect here within [`TTL`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use sharehub_store::{App, Group, Store, StoreError};

/// How long a cached app or group is trusted. Short, because it bounds how
/// long another process's change (a key rotated with the CLI) goes unseen
/// here; long enough that a busy client hits the store about once per TTL.
pub const TTL: Duration = Duration::from_secs(2);

/// Above this many entries, expired ones are swept on insert, so ids seen
/// once do not pile up.
const SWEEP_ABOVE: usize = 4096;

/// Apps and groups by id, each for [`TTL`].
#[derive(Default)]
pub struct AuthCache {
    apps: Table<App>,
    groups: Table<Group>,
    /// Bumped by every forget. A lookup that started before a forget does not
    /// store what it read: it may predate the change that caused the forget.
    generation: AtomicU64,
}

impl AuthCache {
    /// The app `app_id`, from the cache or the store.
    pub async fn app(&self, store: &dyn Store, app_id: &str) -> Result<Option<App>, StoreError> {
        if let Some(app) = self.apps.get(app_id) {
            return Ok(Some(app));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let app = store.get_app(app_id).await?;
        if let Some(app) = &app {
            self.apps.insert_if(app_id, app.clone(), || self.generation.load(Ordering::Acquire) == generation);
        }
        Ok(app)
    }

    /// The group `group_id`, from the cache or the store.
    pub async fn group(&self, store: &dyn Store, group_id: &str) -> Result<Option<Group>, StoreError> {
        if let Some(group) = self.groups.get(group_id) {
            return Ok(Some(group));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let group = store.get_group(group_id).await?;
        if let Some(group) = &group {
            self.groups.insert_if(group_id, group.clone(), || self.generation.load(Ordering::Acquire) == generation);
        }
        Ok(group)
    }

    /// Drops the app, so the next request reads it from the store.
    pub fn forget_app(&self, app_id: &str) {
        self.apps.remove(app_id, &self.generation);
    }

    /// Drops the group, so the next request reads it from the store.
    pub fn forget_group(&self, group_id: &str) {
        self.groups.remove(group_id, &self.generation);
    }
}

struct Entry<T> {
    value: T,
    loaded: Instant,
}

impl<T> Entry<T> {
    fn fresh(&self, now: Instant) -> bool {
        now.duration_since(self.loaded) < TTL
    }
}

/// One map of entries. A poisoned lock is used as is: every write leaves the
/// map whole, and the worst a stale entry can do is last [`TTL`].
struct Table<T>(RwLock<HashMap<String, Entry<T>>>);

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self(RwLock::default())
    }
}

impl<T: Clone> Table<T> {
    fn get(&self, id: &str) -> Option<T> {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        map.get(id).filter(|e| e.fresh(Instant::now())).map(|e| e.value.clone())
    }

    /// Stores `value` unless `still_valid` says a forget happened meanwhile;
    /// checked under the write lock, which forgets also take.
    fn insert_if(&self, id: &str, value: T, still_valid: impl FnOnce() -> bool) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if !still_valid() {
            return;
        }
        let now = Instant::now();
        if map.len() >= SWEEP_ABOVE {
            map.retain(|_, e| e.fresh(now));
        }
        map.insert(id.to_string(), Entry { value, loaded: now });
    }

    /// Removes `id` and bumps `generation` under the lock, so a lookup racing
    /// with this either sees the bump or inserts before the removal.
    fn remove(&self, id: &str, generation: &AtomicU64) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        map.remove(id);
        generation.fetch_add(1, Ordering::AcqRel);
    }
}
