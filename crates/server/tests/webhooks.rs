//! Webhook delivery end to end: a real hub on port 0 with its own SQLite
//! file, real receivers, signatures checked with the `standardwebhooks` crate.

mod common;

#[path = "webhooks/support.rs"]
mod support;

#[path = "webhooks/content.rs"]
mod content;

#[path = "webhooks/endpoints.rs"]
mod endpoints;

#[path = "webhooks/outbox.rs"]
mod outbox;

#[path = "webhooks/retries.rs"]
mod retries;

#[path = "webhooks/wakeup.rs"]
mod wakeup;
