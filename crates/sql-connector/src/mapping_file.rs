//! A mapping file: the app's tables (key, updated-at column, child rows,
//! inactive flag) and the framework's entity mapping, in one TOML document.

use std::path::Path;

use serde::Deserialize;
use sharehub_connector::Mapping;

use crate::error::{Error, Result};

/// One table that holds an app entity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The app entity (the name used in `[[entities]]`).
    pub entity: String,
    pub table: String,
    /// The primary key column.
    pub key: String,
    /// The column the app sets on every change (`TEXT` RFC 3339 UTC with
    /// milliseconds on SQLite, `timestamptz` on PostgreSQL).
    pub updated_at: String,
    /// Child rows (invoice lines) embedded as an array field.
    #[serde(default)]
    pub children: Vec<ChildSpec>,
    /// How a record is marked inactive, when the app has such a column.
    #[serde(default)]
    pub inactive: Option<InactiveSpec>,
}

/// Child rows of a table, shown as an array field of the parent record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildSpec {
    /// The parent's field holding the array (`lines`).
    pub field: String,
    pub table: String,
    pub key: String,
    /// The column referring to the parent's key.
    pub parent: String,
}

/// `UPDATE table SET column = value` marks a record inactive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InactiveSpec {
    pub column: String,
    pub value: toml::Value,
}

/// The whole mapping file.
#[derive(Debug, Clone, Deserialize)]
pub struct MappingFile {
    pub tables: Vec<TableSpec>,
    #[serde(flatten)]
    pub mapping: Mapping,
}

impl MappingFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let file: MappingFile = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        file.mapping.validate()?;
        file.check_names()?;
        Ok(file)
    }

    /// Every SQL name must be a plain identifier: they are put in SQL text.
    fn check_names(&self) -> Result<()> {
        let mut names = Vec::new();
        for t in &self.tables {
            names.extend([&t.table, &t.key, &t.updated_at]);
            names.extend(t.children.iter().flat_map(|c| [&c.table, &c.key, &c.parent]));
            names.extend(t.inactive.iter().map(|i| &i.column));
            if self.mapping.entity(&t.entity).is_none() {
                return Err(Error::Config(format!("table {} maps unknown entity {}", t.table, t.entity)));
            }
        }
        match names.iter().find(|n| n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
            Some(bad) => Err(Error::Config(format!("{bad:?} is not a plain SQL identifier"))),
            None => Ok(()),
        }
    }
}
