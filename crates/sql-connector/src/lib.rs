//! A sharehub connector for applications whose data lives in SQLite or
//! PostgreSQL: a TOML mapping file names the tables, their key and
//! updated-at columns, and how their rows map to hub entities.
#![forbid(unsafe_code)]

pub mod adapter;
pub mod chinook;
pub mod config;
pub mod db;
pub mod error;
pub mod mapping_file;
pub mod run;

pub use adapter::SqlAdapter;
pub use config::Config;
pub use error::{Error, Result};
pub use mapping_file::MappingFile;
