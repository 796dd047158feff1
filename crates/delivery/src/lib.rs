//! Webhook delivery of sharehub: per-app cursors over the change log,
//! batching, Standard Webhooks signing, retries with backoff, dead letters.
#![forbid(unsafe_code)]

mod body;
pub mod http;
pub mod schedule;
pub mod signature;
pub mod worker;
