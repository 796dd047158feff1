//! A framework for connectors: small programs that let an application whose
//! code we cannot change share data through sharehub.
//!
//! An app implements [`AppAdapter`] (list changed records, fetch, create,
//! update, mark inactive); a [`Mapping`] declares how its entities become hub
//! entities and back. The [`Connector`] does the rest: the id map in its own
//! SQLite file ([`State`]), the initial import both ways, polling the app,
//! webhooks and the change feed from the hub, loop prevention, conflicts,
//! per-organization settings, retries and pausing. See `README.md`.
#![forbid(unsafe_code)]

pub mod adapter;
pub mod connector;
pub mod convert;
pub mod error;
mod feed;
pub mod hub;
pub mod mapping;
mod pull;
mod push;
mod push_cursor;
pub mod settings;
pub mod state;
pub mod webhook;

pub use adapter::{AppAdapter, AppRecord, Cursor, Page};
pub use connector::{Connector, ConnectorParts};
pub use error::{Error, Result};
pub use hub::{Hub, HubCredentials};
pub use mapping::Mapping;
pub use settings::{Direction, OrgSettings, SyncOptions};
pub use state::State;
