//! The HTTP API test suite: every test starts a real hub on port 0 with its
//! own SQLite file and speaks the Connec! v2 wire format to it with reqwest.

mod common;

#[path = "api/support.rs"]
mod support;

#[path = "api/auth_cache.rs"]
mod auth_cache;
#[path = "api/concurrency.rs"]
mod concurrency;
#[path = "api/crud.rs"]
mod crud;
#[path = "api/date_filters.rs"]
mod date_filters;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/external_ids.rs"]
mod external_ids;
#[path = "api/hardening.rs"]
mod hardening;
#[path = "api/paging.rs"]
mod paging;
#[path = "api/rate_limits.rs"]
mod rate_limits;
#[path = "api/tenancy.rs"]
mod tenancy;
#[path = "api/versions.rs"]
mod versions;
