//! Storage of sharehub.
//!
//! The [`Store`] trait is everything the hub asks of a database: the platform
//! (organizations, apps, groups), records with their external-id links and
//! change log written together in one transaction, reads and pages, and the
//! state of webhook delivery. [`sqlite`] implements it on one embedded file,
//! [`postgres`] on a PostgreSQL database shared by several hub processes.
//!
//! The rules of a write (upsert by external id, smart merge, references,
//! versions, no-op detection) live once, in [`write`], over the small
//! [`write::WriteTx`] interface that each backend provides.
#![forbid(unsafe_code)]

pub mod error;
pub mod postgres;
pub mod render;
pub mod sql_filter;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod types;
pub mod write;

mod api;

pub use api::{open, Store};
pub use error::{StoreError, WriteError};
pub use types::*;
pub use write::{Target, WriteOp, WriteOutcome};
