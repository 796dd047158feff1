//! What every handler shares.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sharehub_store::Store;

use crate::cache::AuthCache;
use crate::config::Config;

/// The state behind the router.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<Config>,
    /// Idempotency keys being answered right now, so a repeat waits for the
    /// first answer instead of running the write twice.
    pub keys_in_flight: Arc<Mutex<HashSet<(String, String)>>>,
    /// Callers' apps and groups, so a request does not reload them.
    pub auth_cache: Arc<AuthCache>,
    /// Requests per second each app may make, when limited.
    pub rate_limits: Option<Arc<RateLimits>>,
}

/// One limiter per app id, in this process.
pub type RateLimits = governor::DefaultKeyedRateLimiter<String>;

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Self {
        let rate_limits = std::num::NonZeroU32::new(config.rate_limit_per_app)
            .map(|per_second| Arc::new(governor::RateLimiter::keyed(governor::Quota::per_second(per_second))));
        Self {
            store,
            config: Arc::new(config),
            keys_in_flight: Arc::default(),
            auth_cache: Arc::default(),
            rate_limits,
        }
    }
}
