//! The OData `$filter` / `$orderby` language of the Connec! v2 API.
//!
//! [`parse_filter`] turns a `$filter` string such as
//! `type eq 'CUSTOMER' and not (status eq 'ARCHIVED')` into an [`Expr`];
//! [`parse_orderby`] turns `updated_at desc, name` into [`OrderKey`]s.
//! [`Expr::matches_with`] evaluates a filter on a record shown as JSON (its
//! entity's [`DateTimeFields`] compared as instants), and the
//! [`Display`](std::fmt::Display) of an [`Expr`] prints it back as valid filter
//! syntax. The store translates the same [`Expr`] to SQL and must agree with
//! [`Expr::matches_with`].
//!
//! Grammar (keywords are case-insensitive; `not` binds tighter than `and`,
//! which binds tighter than `or`):
//!
//! ```text
//! filter     = or
//! or         = and ("or" and)*
//! and        = unary ("and" unary)*
//! unary      = "not" unary | "(" or ")" | comparison
//! comparison = path op literal
//! op         = "eq" | "ne" | "gt" | "ge" | "lt" | "le"
//! literal    = 'string' | number | "true" | "false" | "null"
//! path       = name ("/" name)*        name = [A-Za-z_][A-Za-z0-9_]*
//! orderby    = path ["asc" | "desc"] ("," path ["asc" | "desc"])*
//! ```

mod display;
mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use rust_decimal::Decimal;
use std::cmp::Ordering;

pub use parser::{parse_filter, parse_orderby};

/// Longest `$filter` or `$orderby` accepted, in characters.
pub const MAX_INPUT_CHARS: usize = 4096;

/// Deepest nesting of parentheses and `not` accepted.
pub const MAX_DEPTH: usize = 64;

/// A field of a record: keys of nested objects, `email/address` is
/// `["email", "address"]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<String>);

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A constant on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(Decimal),
    Bool(bool),
    Null,
}

/// A parsed `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare { field: FieldPath, op: CmpOp, value: Literal },
}

/// The fields of one entity that hold date-times: those its JSON Schema gives
/// `"format": "date-time"` (see [`crate::schema::date_time_fields`]), reached
/// through objects only, as filter paths never index arrays. Their values are
/// stored in UTC ([`crate::schema::normalize`]), and `$filter` / `$orderby`
/// compare them as instants, not as text. Free-form entities have none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DateTimeFields {
    /// Sorted, without duplicates.
    paths: Vec<FieldPath>,
}

impl DateTimeFields {
    pub fn new(paths: impl IntoIterator<Item = FieldPath>) -> Self {
        let mut paths: Vec<FieldPath> = paths.into_iter().collect();
        paths.sort_by(|a, b| a.0.cmp(&b.0));
        paths.dedup();
        Self { paths }
    }

    /// Whether `path` is one of the date-time fields.
    pub fn contains(&self, path: &FieldPath) -> bool {
        self.paths.binary_search_by(|probe| probe.0.cmp(&path.0)).is_ok()
    }

    /// The fields, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &FieldPath> {
        self.paths.iter()
    }
}

/// One key of a `$orderby`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderKey {
    pub field: FieldPath,
    pub descending: bool,
}

/// Why a `$filter` or `$orderby` could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ParseError {
    /// 0-based character (not byte) offset in the input where parsing broke.
    pub position: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        Self { position, message: message.into() }
    }
}

impl FieldPath {
    /// The path as written in a filter, keys joined by `/`.
    pub fn to_slash_string(&self) -> String {
        self.0.join("/")
    }
}

impl CmpOp {
    /// The operator's keyword: `eq`, `ne`, ...
    pub fn keyword(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
        }
    }

    /// The operator whose keyword is `word`, ignoring case.
    pub fn from_keyword(word: &str) -> Option<CmpOp> {
        [CmpOp::Eq, CmpOp::Ne, CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le]
            .into_iter()
            .find(|op| op.keyword().eq_ignore_ascii_case(word))
    }

    /// Whether `field op literal` holds when `field.cmp(literal)` is `ordering`.
    pub fn holds(self, ordering: Ordering) -> bool {
        match self {
            CmpOp::Eq => ordering == Ordering::Equal,
            CmpOp::Ne => ordering != Ordering::Equal,
            CmpOp::Gt => ordering == Ordering::Greater,
            CmpOp::Ge => ordering != Ordering::Less,
            CmpOp::Lt => ordering == Ordering::Less,
            CmpOp::Le => ordering != Ordering::Greater,
        }
    }
}
