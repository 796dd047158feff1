//! `$filter` and `$orderby` as SQLite SQL over the `records` table.
//!
//! Every fragment built for a comparison is two-valued (never SQL NULL), so
//! `NOT`, `AND` and `OR` combine them exactly like the Rust evaluator does.
//! `json_type` tells JSON strings, numbers, booleans and nulls apart, since
//! `json_extract` alone returns 1/0 for booleans and NULL for both a JSON
//! null and a missing key.

use super::{target, SqlBind, SqlFragment, Target, TranslateError};
use sharehub_model::filter::{CmpOp, Expr, FieldPath, Literal, OrderKey};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments};

/// A boolean SQLite expression selecting the records `expr` matches, to be
/// ANDed into a `WHERE` clause; values are bound to `?` placeholders.
pub fn sqlite_filter(expr: &Expr) -> Result<SqlFragment, TranslateError> {
    let mut fragment = SqlFragment::default();
    write_expr(&mut fragment, expr)?;
    Ok(fragment)
}

/// The `ORDER BY` list for `keys` (without the `ORDER BY` words), such as
/// `json_extract(data, '$."name"') ASC, updated_at DESC`; empty for no keys.
/// The caller appends a tie-breaker such as `id ASC`.
pub fn sqlite_order_by(keys: &[OrderKey]) -> Result<String, TranslateError> {
    let terms: Result<Vec<String>, TranslateError> = keys
        .iter()
        .map(|key| {
            let direction = if key.descending { "DESC" } else { "ASC" };
            Ok(format!("{} {direction}", value_sql(&target(&key.field)?)))
        })
        .collect();
    Ok(terms?.join(", "))
}

/// Binds `binds` to `query`, in order.
pub fn bind_sqlite<'q>(
    binds: &[SqlBind],
    mut query: Query<'q, Sqlite, SqliteArguments<'q>>,
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    for bind in binds {
        query = match bind {
            SqlBind::Text(text) => query.bind(text.clone()),
            SqlBind::Int(int) => query.bind(*int),
            SqlBind::Real(real) => query.bind(*real),
            SqlBind::Null => query.bind(None::<String>),
        };
    }
    query
}

fn write_expr(out: &mut SqlFragment, expr: &Expr) -> Result<(), TranslateError> {
    match expr {
        Expr::And(left, right) => write_binary(out, left, "AND", right),
        Expr::Or(left, right) => write_binary(out, left, "OR", right),
        Expr::Not(inner) => {
            out.sql.push_str("(NOT ");
            write_expr(out, inner)?;
            out.sql.push(')');
            Ok(())
        }
        Expr::Compare { field, op, value } => write_compare(out, field, *op, value),
    }
}

fn write_binary(out: &mut SqlFragment, left: &Expr, keyword: &str, right: &Expr) -> Result<(), TranslateError> {
    out.sql.push('(');
    write_expr(out, left)?;
    out.sql.push_str(&format!(" {keyword} "));
    write_expr(out, right)?;
    out.sql.push(')');
    Ok(())
}

/// The SQL reading the value at `target`.
fn value_sql(target: &Target) -> String {
    match target {
        Target::Id => "id".to_owned(),
        Target::Version => "version".to_owned(),
        Target::Timestamp(column) => (*column).to_owned(),
        Target::Json(path) => format!("json_extract(data, {path})"),
    }
}

/// The JSON type at `path`, with a missing key reading as `'null'`.
fn json_type_sql(path: &str) -> String {
    format!("COALESCE(json_type(data, {path}), 'null')")
}

fn operator_sql(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
    }
}

/// A comparison, known to hold (or not) for values of the right kind.
struct Typed {
    /// SQL true exactly when the field holds a value comparable to the literal.
    guard: Option<String>,
    value: String,
    bind: SqlBind,
}

fn write_compare(out: &mut SqlFragment, field: &FieldPath, op: CmpOp, literal: &Literal) -> Result<(), TranslateError> {
    let target = target(field)?;
    if *literal == Literal::Null {
        out.sql.push_str(&null_compare(&target, op));
        return Ok(());
    }
    if let (Target::Timestamp(column), Literal::String(text)) = (&target, literal) {
        return write_timestamp(out, column, op, text);
    }
    let Some(typed) = typed_compare(&target, literal)? else {
        // Values of different kinds: only `ne` holds.
        out.sql.push_str(if op == CmpOp::Ne { "1" } else { "0" });
        return Ok(());
    };
    // `ne` is written as the negation of `eq` so a value of another kind
    // (guard false) satisfies it, as in the evaluator.
    let (negate, sql_op) = match op {
        CmpOp::Ne => (true, "="),
        other => (false, operator_sql(other)),
    };
    let comparison = format!("{} {sql_op} ?", typed.value);
    let condition = match typed.guard {
        Some(guard) => format!("({guard} AND {comparison})"),
        None => format!("({comparison})"),
    };
    out.sql.push_str(&if negate { format!("(NOT {condition})") } else { condition });
    out.binds.push(typed.bind);
    Ok(())
}

/// `eq null` holds for null or missing values, `ne null` for the others, and
/// ordering against null never holds.
fn null_compare(target: &Target, op: CmpOp) -> String {
    let (is_null, is_not_null) = match target {
        Target::Json(path) => {
            let kind = json_type_sql(path);
            (format!("({kind} = 'null')"), format!("({kind} <> 'null')"))
        }
        column => {
            let column = value_sql(column);
            (format!("({column} IS NULL)"), format!("({column} IS NOT NULL)"))
        }
    };
    match op {
        CmpOp::Eq => is_null,
        CmpOp::Ne => is_not_null,
        _ => "0".to_owned(),
    }
}

/// The guarded comparison of `target` with a non-null `literal`, or `None`
/// when the target never holds a value of the literal's kind.
fn typed_compare(target: &Target, literal: &Literal) -> Result<Option<Typed>, TranslateError> {
    let typed = match (target, literal) {
        (Target::Id, Literal::String(text)) => {
            Typed { guard: None, value: value_sql(target), bind: SqlBind::Text(text.clone()) }
        }
        (Target::Version, Literal::Number(number)) => {
            Typed { guard: None, value: value_sql(target), bind: number_bind(number)? }
        }
        (Target::Json(path), _) => match json_compare(path, literal)? {
            Some(typed) => typed,
            None => return Ok(None),
        },
        _ => return Ok(None),
    };
    Ok(Some(typed))
}

fn json_compare(path: &str, literal: &Literal) -> Result<Option<Typed>, TranslateError> {
    let kind = json_type_sql(path);
    let (guard, bind) = match literal {
        Literal::String(text) => (format!("{kind} = 'text'"), SqlBind::Text(text.clone())),
        Literal::Number(number) => (format!("{kind} IN ('integer', 'real')"), number_bind(number)?),
        // json_extract reads JSON booleans as 1 and 0, so false < true.
        Literal::Bool(b) => (format!("{kind} IN ('true', 'false')"), SqlBind::Int(i64::from(*b))),
        Literal::Null => return Ok(None),
    };
    Ok(Some(Typed { guard: Some(guard), value: format!("json_extract(data, {path})"), bind }))
}

/// Integers are bound exactly; other decimals as the nearest double, which
/// SQLite also uses for the JSON number, so ordinary values (money with two
/// decimals) compare as they do in decimal.
fn number_bind(number: &rust_decimal::Decimal) -> Result<SqlBind, TranslateError> {
    if number.fract().is_zero() {
        if let Ok(int) = i64::try_from(*number) {
            return Ok(SqlBind::Int(int));
        }
    }
    number
        .to_string()
        .parse::<f64>()
        .map(SqlBind::Real)
        .map_err(|_| TranslateError::new(format!("number {number} cannot be compared")))
}

/// `created_at` / `updated_at` against an RFC 3339 literal, as instants.
fn write_timestamp(out: &mut SqlFragment, column: &str, op: CmpOp, text: &str) -> Result<(), TranslateError> {
    let instant: jiff::Timestamp = text.parse().map_err(|e| {
        TranslateError::new(format!(
            "{column} must be compared with an RFC 3339 timestamp with an offset, not {text:?}: {e}"
        ))
    })?;
    let nanos = instant.as_nanosecond();
    let micros = i64::try_from(nanos.div_euclid(1000))
        .map_err(|_| TranslateError::new(format!("timestamp {text:?} is out of range")))?;
    // The column has microseconds; a literal between two of them equals no
    // record, is above `micros` and below `micros + 1`.
    let sql_op = if nanos.rem_euclid(1000) == 0 {
        operator_sql(op)
    } else {
        match op {
            CmpOp::Eq => return push_constant(out, false),
            CmpOp::Ne => return push_constant(out, true),
            CmpOp::Gt | CmpOp::Ge => ">",
            CmpOp::Lt | CmpOp::Le => "<=",
        }
    };
    out.sql.push_str(&format!("({column} {sql_op} ?)"));
    out.binds.push(SqlBind::Int(micros));
    Ok(())
}

fn push_constant(out: &mut SqlFragment, value: bool) -> Result<(), TranslateError> {
    out.sql.push_str(if value { "1" } else { "0" });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sharehub_model::filter::{parse_filter, parse_orderby};

    fn sql(filter: &str) -> SqlFragment {
        sqlite_filter(&parse_filter(filter).unwrap()).unwrap()
    }

    #[test]
    fn json_paths_are_quoted_and_literals_bound() {
        let fragment = sql("email/address eq 'x''); DROP TABLE records; --'");
        assert_eq!(
            fragment.sql,
            "(COALESCE(json_type(data, '$.\"email\".\"address\"'), 'null') = 'text' \
             AND json_extract(data, '$.\"email\".\"address\"') = ?)"
        );
        assert_eq!(fragment.binds, vec![SqlBind::Text("x'); DROP TABLE records; --".to_owned())]);
    }

    #[test]
    fn meta_fields_use_columns() {
        let fragment = sql("updated_at gt '2016-10-04T00:36:23Z' and version ge 2");
        assert_eq!(fragment.sql, "((updated_at > ?) AND (version >= ?))");
        assert_eq!(fragment.binds, vec![SqlBind::Int(1_475_541_383_000_000), SqlBind::Int(2)]);
        assert_eq!(sql("id eq 5").sql, "0");
        assert_eq!(sql("id ne 5").sql, "1");
    }

    #[test]
    fn bad_timestamps_and_keys_are_errors() {
        let expr = parse_filter("created_at gt 'yesterday'").unwrap();
        assert!(sqlite_filter(&expr).is_err());
        let bad = Expr::Compare { field: FieldPath(vec!["a'b".to_owned()]), op: CmpOp::Eq, value: Literal::Null };
        assert!(sqlite_filter(&bad).is_err());
        let empty = OrderKey { field: FieldPath(vec![String::new()]), descending: false };
        assert!(sqlite_order_by(&[empty]).is_err());
    }

    #[test]
    fn order_by_lists_keys() {
        let keys = parse_orderby("updated_at desc, email/address").unwrap();
        assert_eq!(
            sqlite_order_by(&keys).unwrap(),
            "updated_at DESC, json_extract(data, '$.\"email\".\"address\"') ASC"
        );
    }
}
