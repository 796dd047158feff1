//! `$filter` and `$orderby` as SQLite SQL over the `records` table.
//!
//! Every fragment built for a comparison is two-valued (never SQL NULL), so
//! `NOT`, `AND` and `OR` combine them exactly like the Rust evaluator does.
//! `json_type` tells JSON strings, numbers, booleans and nulls apart, since
//! `json_extract` alone returns 1/0 for booleans and NULL for both a JSON
//! null and a missing key.
//!
//! A date-time field compares and sorts by its key (see
//! [`date_time_key`](super::date_time_key)), computed from the stored text
//! with `rtrim`, `substr` and `printf`: exact, no floating point.

use super::{date_time_literal_key, target, DateTimeFields, SqlBind, SqlFragment, Target, TranslateError};
use sharehub_model::filter::{CmpOp, Expr, FieldPath, Literal, OrderKey};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments};

/// A boolean SQLite expression selecting the records `expr` matches, to be
/// ANDed into a `WHERE` clause; values are bound to `?` placeholders. The
/// fields in `date_times` (the entity's) compare as instants.
pub fn sqlite_filter(expr: &Expr, date_times: &DateTimeFields) -> Result<SqlFragment, TranslateError> {
    let mut fragment = SqlFragment::default();
    write_expr(&mut fragment, expr, date_times)?;
    Ok(fragment)
}

/// The `ORDER BY` list for `keys` (without the `ORDER BY` words), such as
/// `json_extract(data, '$."name"') ASC, updated_at DESC`; empty for no keys.
/// The caller appends a tie-breaker such as `id ASC`. The fields in
/// `date_times` sort as instants (missing ones first, as NULL).
pub fn sqlite_order_by(keys: &[OrderKey], date_times: &DateTimeFields) -> Result<String, TranslateError> {
    let terms: Result<Vec<String>, TranslateError> = keys
        .iter()
        .map(|key| {
            let direction = if key.descending { "DESC" } else { "ASC" };
            Ok(format!("{} {direction}", value_sql(&target(&key.field, date_times)?)))
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

fn write_expr(out: &mut SqlFragment, expr: &Expr, date_times: &DateTimeFields) -> Result<(), TranslateError> {
    match expr {
        Expr::And(left, right) => write_binary(out, left, "AND", right, date_times),
        Expr::Or(left, right) => write_binary(out, left, "OR", right, date_times),
        Expr::Not(inner) => {
            out.sql.push_str("(NOT ");
            write_expr(out, inner, date_times)?;
            out.sql.push(')');
            Ok(())
        }
        Expr::Compare { field, op, value } => write_compare(out, field, *op, value, date_times),
    }
}

fn write_binary(
    out: &mut SqlFragment,
    left: &Expr,
    keyword: &str,
    right: &Expr,
    date_times: &DateTimeFields,
) -> Result<(), TranslateError> {
    out.sql.push('(');
    write_expr(out, left, date_times)?;
    out.sql.push_str(&format!(" {keyword} "));
    write_expr(out, right, date_times)?;
    out.sql.push(')');
    Ok(())
}

/// The SQL reading the value at `target`; for a date-time field, the key of
/// a string (NULL for anything else).
fn value_sql(target: &Target) -> String {
    match target {
        Target::Id => "id".to_owned(),
        Target::Version => "version".to_owned(),
        Target::Timestamp(column) => (*column).to_owned(),
        Target::Json(path) => format!("json_extract(data, {path})"),
        Target::DateTime(path) => date_time_key_sql(path),
    }
}

/// SQL computing [`date_time_key`](super::date_time_key) of the string at
/// `path` (NULL for any other value). The value is read once, in a subquery
/// SQLite does not flatten (`LIMIT -1 OFFSET 0`), as the key names it
/// several times. Read at each mention, a filter over 200 000 invoices took
/// about 1.8 times as long as on the text; read once, 1.4 to 1.9 times (and
/// a sort about twice as long), measured on a busy 2-core machine.
fn date_time_key_sql(path: &str) -> String {
    format!(
        "(SELECT CASE WHEN kind <> 'text' THEN NULL ELSE {} END \
         FROM (SELECT json_type(data, {path}) AS kind, json_extract(data, {path}) AS v LIMIT -1 OFFSET 0))",
        text_key_sql("v")
    )
}

/// SQL computing [`date_time_key`](super::date_time_key) of the stored text
/// `value` (an expression, repeated in the result).
fn text_key_sql(value: &str) -> String {
    let trimmed = |text: &str| {
        format!(
            "CASE WHEN instr({text}, '.') > 0 THEN rtrim(rtrim(rtrim({text}, 'Z'), '0'), '.') ELSE rtrim({text}, 'Z') END"
        )
    };
    format!(
        "(CASE WHEN {value} GLOB '-[0-9][0-9][0-9][0-9][0-9][0-9]-*' \
         THEN '-' || printf('%06d', 999999 - CAST(substr({value}, 2, 6) AS INTEGER)) || ({}) \
         ELSE ({}) END)",
        trimmed(&format!("substr({value}, 8)")),
        trimmed(value)
    )
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

fn write_compare(
    out: &mut SqlFragment,
    field: &FieldPath,
    op: CmpOp,
    literal: &Literal,
    date_times: &DateTimeFields,
) -> Result<(), TranslateError> {
    let target = target(field, date_times)?;
    if *literal == Literal::Null {
        out.sql.push_str(&null_compare(&target, op));
        return Ok(());
    }
    if let (Target::Timestamp(column), Literal::String(text)) = (&target, literal) {
        return write_timestamp(out, column, op, text);
    }
    let Some(typed) = typed_compare(field, &target, literal)? else {
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
        Target::Json(path) | Target::DateTime(path) => {
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

/// The guarded comparison of `target` (at `field`) with a non-null `literal`,
/// or `None` when the target never holds a value of the literal's kind.
fn typed_compare(field: &FieldPath, target: &Target, literal: &Literal) -> Result<Option<Typed>, TranslateError> {
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
        // Stored date-times are strings: compared by key, as instants.
        (Target::DateTime(path), _) => Typed {
            guard: Some(format!("{} = 'text'", json_type_sql(path))),
            value: date_time_key_sql(path),
            bind: SqlBind::Text(date_time_literal_key(field, literal)?),
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
        sqlite_filter(&parse_filter(filter).unwrap(), &DateTimeFields::default()).unwrap()
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
        let none = DateTimeFields::default();
        assert!(sqlite_filter(&expr, &none).is_err());
        let bad = Expr::Compare { field: FieldPath(vec!["a'b".to_owned()]), op: CmpOp::Eq, value: Literal::Null };
        assert!(sqlite_filter(&bad, &none).is_err());
        let empty = OrderKey { field: FieldPath(vec![String::new()]), descending: false };
        assert!(sqlite_order_by(&[empty], &none).is_err());
    }

    #[test]
    fn order_by_lists_keys() {
        let keys = parse_orderby("updated_at desc, email/address").unwrap();
        assert_eq!(
            sqlite_order_by(&keys, &DateTimeFields::default()).unwrap(),
            "updated_at DESC, json_extract(data, '$.\"email\".\"address\"') ASC"
        );
    }

    fn invoice_dates() -> DateTimeFields {
        DateTimeFields::new([FieldPath(vec!["transaction_date".to_owned()])])
    }

    #[test]
    fn date_time_fields_compare_keys() {
        let expr = parse_filter("transaction_date gt '2030-05-05T12:00:00.500+02:00'").unwrap();
        let fragment = sqlite_filter(&expr, &invoice_dates()).unwrap();
        assert!(fragment.sql.starts_with("(COALESCE(json_type(data, '$.\"transaction_date\"'), 'null') = 'text' AND "));
        assert!(fragment.sql.ends_with(" > ?)"), "{}", fragment.sql);
        assert_eq!(fragment.binds, vec![SqlBind::Text("2030-05-05T10:00:00.5".to_owned())]);
        // Elsewhere, or for a free-form entity, the same text compares as text.
        let plain = sqlite_filter(&expr, &DateTimeFields::default()).unwrap();
        assert_eq!(plain.binds, vec![SqlBind::Text("2030-05-05T10:00:00.500Z".to_owned())]);
        let null = sqlite_filter(&parse_filter("transaction_date eq null").unwrap(), &invoice_dates()).unwrap();
        assert_eq!(null.sql, "(COALESCE(json_type(data, '$.\"transaction_date\"'), 'null') = 'null')");
        for bad in ["transaction_date gt '2030-05-05T10:00:00'", "transaction_date eq 2030", "transaction_date ne true"]
        {
            let error = sqlite_filter(&parse_filter(bad).unwrap(), &invoice_dates()).unwrap_err();
            assert!(error.message.starts_with("transaction_date is a date-time field"), "{bad}: {}", error.message);
        }
    }

    /// The SQL key of each stored form is the Rust one.
    #[tokio::test]
    async fn the_sql_key_is_date_time_key() {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        for stored in [
            "2030-05-05T10:00:00Z",
            "2030-05-05T10:00:00.000Z",
            "2030-05-05T10:00:00.500Z",
            "2030-05-05T10:00:00.05Z",
            "2030-05-05T10:00:10Z",
            "2030-05-05T10:00:10.100000000Z",
            "0000-01-01T00:00:00Z",
            "-000001-12-31T23:59:59.90Z",
            "-009999-01-02T01:59:59Z",
            "9999-12-30T22:00:00.999999999Z",
        ] {
            let sql = format!("SELECT {}", text_key_sql("?1"));
            let key: String = sqlx::query_scalar(&sql).bind(stored).fetch_one(&mut conn).await.unwrap();
            assert_eq!(key, super::super::date_time_key(stored), "{stored}");
        }
    }
}
