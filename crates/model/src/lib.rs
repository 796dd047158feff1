//! The domain of sharehub, free of storage and HTTP.
//!
//! * [`catalog`]: the shared entities (people, invoices, ...) and their reference fields;
//! * [`schema`]: the JSON Schema of each entity, value normalisation (decimal money,
//!   UTC timestamps) and validation with field paths;
//! * [`totals`]: amounts of transactions computed from their lines, in decimal;
//! * [`filter`]: the OData `$filter` / `$orderby` language: parser and evaluator;
//! * [`merge`]: how a partial write merges into a record and when it changes nothing;
//! * [`view`]: how one record is shown to one app (ids and references in its own view);
//! * [`ids`]: the shapes of organization, app, group and record identifiers;
//! * [`parallel`]: the CPU work of one big call split over the cores.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod error;
pub mod filter;
pub mod ids;
pub mod merge;
pub mod parallel;
pub mod schema;
pub mod totals;
pub mod view;

pub use error::FieldError;
