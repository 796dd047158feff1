//! Prints filters and order keys back as valid `$filter` / `$orderby` syntax.

use super::{CmpOp, Expr, FieldPath, Literal, OrderKey};
use std::fmt::{self, Display, Formatter};

impl Display for FieldPath {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_slash_string())
    }
}

impl Display for CmpOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

impl Display for OrderKey {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let direction = if self.descending { "desc" } else { "asc" };
        write!(f, "{} {direction}", self.field)
    }
}

/// Binding strength: `or` < `and` < `not` and comparisons.
fn precedence(expr: &Expr) -> u8 {
    match expr {
        Expr::Or(..) => 1,
        Expr::And(..) => 2,
        Expr::Not(_) | Expr::Compare { .. } => 3,
    }
}

/// Writes `expr`, in parentheses if it binds more loosely than `min`.
fn write_operand(f: &mut Formatter<'_>, expr: &Expr, min: u8) -> fmt::Result {
    if precedence(expr) < min {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

impl Display for Expr {
    /// Parentheses appear only where precedence or left-associativity needs
    /// them, so parsing the output gives back the same tree.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(left, right) => {
                write_operand(f, left, 1)?;
                f.write_str(" or ")?;
                write_operand(f, right, 2)
            }
            Expr::And(left, right) => {
                write_operand(f, left, 2)?;
                f.write_str(" and ")?;
                write_operand(f, right, 3)
            }
            Expr::Not(inner) => write!(f, "not ({inner})"),
            Expr::Compare { field, op, value } => write!(f, "{field} {op} {value}"),
        }
    }
}
