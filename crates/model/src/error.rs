//! Errors the model reports about a client's data.

use serde::Serialize;

/// One problem with one field of a record a client sent.
///
/// `path` uses `/` between keys and array indexes, the way Connec! names nested
/// fields (`lines/0/unit_price/net_amount`); the empty path is the record itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }

    /// The same error seen from the field holding this one's path:
    /// `0/realm` under `organization_id` is `organization_id/0/realm`.
    pub fn under(self, parent: &str) -> Self {
        let path = match self.path.is_empty() {
            true => parent.to_string(),
            false => format!("{parent}/{}", self.path),
        };
        Self { path, ..self }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}
