//! `$filter` and `$orderby` as PostgreSQL SQL over the `records` table.
//!
//! Record data is stored as `TEXT` (its exact bytes: key order and decimal
//! text survive), so paths read `data::jsonb`. Keys are chained with `->`,
//! which reads object members only: a key never indexes an array, as in the
//! evaluator. Like the SQLite translation, every comparison fragment is
//! two-valued (never SQL NULL), so `NOT`, `AND` and `OR` combine them exactly
//! as the Rust evaluator does: `jsonb_typeof` guards each comparison, with a
//! missing key read as `'null'`.
//!
//! Strings compare with `COLLATE "C"` (byte order, as Rust compares `str`);
//! numbers compare as exact decimals (jsonb numbers are `numeric`), so
//! `0.1 + 0.2`-style rounding never enters. A date-time field compares and
//! sorts by its key (see [`date_time_key`](super::date_time_key)), computed
//! from the stored text with `rtrim`, `substr` and `lpad` under `COLLATE
//! "C"`: exact (a cast to `timestamptz` would round to microseconds).

use super::{date_time_literal_key, target, DateTimeFields, SqlBind, SqlFragment, Target, TranslateError};
use sharehub_model::filter::{CmpOp, Expr, FieldPath, Literal, OrderKey};
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::query::Query;

/// A boolean PostgreSQL expression selecting the records `expr` matches, to
/// be ANDed into a `WHERE` clause. Values are bound to `$n` placeholders
/// numbered from `first_placeholder` (the caller's own binds come first).
/// The fields in `date_times` (the entity's) compare as instants.
pub fn postgres_filter(
    expr: &Expr,
    first_placeholder: usize,
    date_times: &DateTimeFields,
) -> Result<SqlFragment, TranslateError> {
    let mut writer = Writer { out: SqlFragment::default(), next: first_placeholder, date_times };
    writer.expr(expr)?;
    Ok(writer.out)
}

/// The `ORDER BY` list for `keys` (without the `ORDER BY` words); empty for
/// no keys. Missing values sort first ascending, as SQLite sorts NULL. The
/// caller appends a tie-breaker such as `id`. The fields in `date_times`
/// sort as instants.
pub fn postgres_order_by(keys: &[OrderKey], date_times: &DateTimeFields) -> Result<String, TranslateError> {
    let terms: Result<Vec<String>, TranslateError> = keys
        .iter()
        .map(|key| {
            let direction = if key.descending { "DESC NULLS LAST" } else { "ASC NULLS FIRST" };
            let value = match target(&key.field, date_times)? {
                Target::Json(_) => jsonb_sql(&key.field),
                // The key of a string, NULL for anything else.
                Target::DateTime(_) => date_time_key_sql(&key.field),
                other => column_sql(&other),
            };
            Ok(format!("{value} {direction}"))
        })
        .collect();
    Ok(terms?.join(", "))
}

/// Binds `binds` to `query`, in order.
pub fn bind_postgres<'q>(
    binds: &[SqlBind],
    mut query: Query<'q, Postgres, PgArguments>,
) -> Query<'q, Postgres, PgArguments> {
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

/// The jsonb value at `path` inside `data` (SQL NULL when missing).
fn jsonb_sql(path: &FieldPath) -> String {
    // Keys were checked by `target` to be [A-Za-z0-9_]+: safe to quote.
    let keys: Vec<String> = path.0.iter().map(|k| format!(" -> '{k}'")).collect();
    format!("(data::jsonb{})", keys.concat())
}

/// The text of a JSON string at `path`, compared byte-wise.
fn text_sql(path: &FieldPath) -> String {
    let (last, parents) = path.0.split_last().map(|(l, p)| (l.as_str(), p)).unwrap_or(("", &[]));
    let keys: Vec<String> = parents.iter().map(|k| format!(" -> '{k}'")).collect();
    format!("((data::jsonb{} ->> '{last}') COLLATE \"C\")", keys.concat())
}

/// SQL computing [`date_time_key`](super::date_time_key) of the string at
/// `field` (NULL for any other value), compared byte-wise. The field is read
/// once, in a subquery the planner keeps (`OFFSET 0`), as the key names its
/// text several times and each `data::jsonb` parses the whole record again
/// (reading it at each mention doubled the time of a filter or a sort over
/// 200 000 invoices; read once, both take 10-40% longer than on the text).
fn date_time_key_sql(field: &FieldPath) -> String {
    let text = "(j #>> '{}')";
    let trimmed = |text: &str| {
        format!(
            "CASE WHEN strpos({text}, '.') > 0 THEN rtrim(rtrim(rtrim({text}, 'Z'), '0'), '.') ELSE rtrim({text}, 'Z') END"
        )
    };
    format!(
        "((SELECT CASE WHEN jsonb_typeof(j) <> 'string' THEN NULL \
         WHEN {text} ~ '^-[0-9]{{6}}-' \
         THEN '-' || lpad(CAST(999999 - CAST(substr({text}, 2, 6) AS integer) AS text), 6, '0') || ({}) \
         ELSE ({}) END FROM (SELECT {} AS j OFFSET 0) AS stored) COLLATE \"C\")",
        trimmed(&format!("substr({text}, 8)")),
        trimmed(text),
        jsonb_sql(field),
    )
}

/// The JSON type at `path`, with a missing key reading as `'null'`.
fn type_sql(path: &FieldPath) -> String {
    format!("COALESCE(jsonb_typeof{}, 'null')", jsonb_sql(path))
}

fn column_sql(target: &Target) -> String {
    match target {
        Target::Id => "(id COLLATE \"C\")".to_owned(),
        Target::Version => "version".to_owned(),
        Target::Timestamp(column) => (*column).to_owned(),
        // Not reached: JSON paths are read with `jsonb_sql`.
        Target::Json(_) | Target::DateTime(_) => "NULL".to_owned(),
    }
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

fn constant(value: bool) -> &'static str {
    if value {
        "TRUE"
    } else {
        "FALSE"
    }
}

/// A comparison that holds (or not) for values of the literal's kind.
struct Typed {
    /// SQL true exactly when the field holds a value comparable to the literal.
    guard: Option<String>,
    /// The left side; `{}` in `right` is replaced by the placeholder.
    value: String,
    right: &'static str,
    bind: SqlBind,
}

struct Writer<'d> {
    out: SqlFragment,
    next: usize,
    date_times: &'d DateTimeFields,
}

impl Writer<'_> {
    fn expr(&mut self, expr: &Expr) -> Result<(), TranslateError> {
        match expr {
            Expr::And(left, right) => self.binary(left, "AND", right),
            Expr::Or(left, right) => self.binary(left, "OR", right),
            Expr::Not(inner) => {
                self.out.sql.push_str("(NOT ");
                self.expr(inner)?;
                self.out.sql.push(')');
                Ok(())
            }
            Expr::Compare { field, op, value } => self.compare(field, *op, value),
        }
    }

    fn binary(&mut self, left: &Expr, keyword: &str, right: &Expr) -> Result<(), TranslateError> {
        self.out.sql.push('(');
        self.expr(left)?;
        self.out.sql.push_str(&format!(" {keyword} "));
        self.expr(right)?;
        self.out.sql.push(')');
        Ok(())
    }

    /// The next placeholder, bound to `bind`.
    fn placeholder(&mut self, bind: SqlBind) -> String {
        let mark = format!("${}", self.next);
        self.next += 1;
        self.out.binds.push(bind);
        mark
    }

    fn compare(&mut self, field: &FieldPath, op: CmpOp, literal: &Literal) -> Result<(), TranslateError> {
        let target = target(field, self.date_times)?;
        if *literal == Literal::Null {
            self.out.sql.push_str(&null_compare(field, &target, op));
            return Ok(());
        }
        if let (Target::Timestamp(column), Literal::String(text)) = (&target, literal) {
            return self.timestamp(column, op, text);
        }
        let Some(typed) = typed_compare(field, &target, literal)? else {
            // Values of different kinds: only `ne` holds.
            self.out.sql.push_str(constant(op == CmpOp::Ne));
            return Ok(());
        };
        // `ne` is the negation of `eq`, so a value of another kind (guard
        // false) satisfies it, as in the evaluator.
        let (negate, sql_op) = match op {
            CmpOp::Ne => (true, "="),
            other => (false, operator_sql(other)),
        };
        let mark = self.placeholder(typed.bind);
        let comparison = format!("{} {sql_op} {}", typed.value, typed.right.replace("{}", &mark));
        let condition = match typed.guard {
            Some(guard) => format!("({guard} AND {comparison})"),
            None => format!("({comparison})"),
        };
        self.out.sql.push_str(&if negate { format!("(NOT {condition})") } else { condition });
        Ok(())
    }

    /// `created_at` / `updated_at` (unix microseconds) against an RFC 3339
    /// literal, as instants.
    fn timestamp(&mut self, column: &str, op: CmpOp, text: &str) -> Result<(), TranslateError> {
        let instant: jiff::Timestamp = text.parse().map_err(|e| {
            TranslateError::new(format!(
                "{column} must be compared with an RFC 3339 timestamp with an offset, not {text:?}: {e}"
            ))
        })?;
        let nanos = instant.as_nanosecond();
        let micros = i64::try_from(nanos.div_euclid(1000))
            .map_err(|_| TranslateError::new(format!("timestamp {text:?} is out of range")))?;
        // The column has microseconds; a literal between two of them equals
        // no record, is above `micros` and below `micros + 1`.
        let sql_op = if nanos.rem_euclid(1000) == 0 {
            operator_sql(op)
        } else {
            match op {
                CmpOp::Eq | CmpOp::Ne => {
                    self.out.sql.push_str(constant(op == CmpOp::Ne));
                    return Ok(());
                }
                CmpOp::Gt | CmpOp::Ge => ">",
                CmpOp::Lt | CmpOp::Le => "<=",
            }
        };
        let mark = self.placeholder(SqlBind::Int(micros));
        self.out.sql.push_str(&format!("({column} {sql_op} {mark})"));
        Ok(())
    }
}

/// `eq null` holds for null or missing values, `ne null` for the others, and
/// ordering against null never holds.
fn null_compare(field: &FieldPath, target: &Target, op: CmpOp) -> String {
    let (is_null, is_not_null) = match target {
        Target::Json(_) | Target::DateTime(_) => {
            let kind = type_sql(field);
            (format!("({kind} = 'null')"), format!("({kind} <> 'null')"))
        }
        column => {
            let column = column_sql(column);
            (format!("({column} IS NULL)"), format!("({column} IS NOT NULL)"))
        }
    };
    match op {
        CmpOp::Eq => is_null,
        CmpOp::Ne => is_not_null,
        _ => constant(false).to_owned(),
    }
}

/// The guarded comparison of the field with a non-null `literal`, or `None`
/// when the field never holds a value of the literal's kind.
fn typed_compare(field: &FieldPath, target: &Target, literal: &Literal) -> Result<Option<Typed>, TranslateError> {
    let typed = match (target, literal) {
        (Target::Id, Literal::String(text)) => {
            Typed { guard: None, value: column_sql(target), right: "{}", bind: SqlBind::Text(text.clone()) }
        }
        (Target::Version, Literal::Number(number)) => Typed {
            guard: None,
            value: column_sql(target),
            right: "CAST({} AS numeric)",
            bind: SqlBind::Text(number.to_string()),
        },
        (Target::Json(_), _) => match json_compare(field, literal) {
            Some(typed) => typed,
            None => return Ok(None),
        },
        // Stored date-times are strings: compared by key, as instants.
        (Target::DateTime(_), _) => Typed {
            guard: Some(format!("{} = 'string'", type_sql(field))),
            value: date_time_key_sql(field),
            right: "{}",
            bind: SqlBind::Text(date_time_literal_key(field, literal)?),
        },
        _ => return Ok(None),
    };
    Ok(Some(typed))
}

fn json_compare(field: &FieldPath, literal: &Literal) -> Option<Typed> {
    let kind = type_sql(field);
    let typed = match literal {
        Literal::String(text) => Typed {
            guard: Some(format!("{kind} = 'string'")),
            value: text_sql(field),
            right: "{}",
            bind: SqlBind::Text(text.clone()),
        },
        // jsonb numbers are numeric: exact decimal comparison.
        Literal::Number(number) => Typed {
            guard: Some(format!("{kind} = 'number'")),
            value: jsonb_sql(field),
            right: "to_jsonb(CAST({} AS numeric))",
            bind: SqlBind::Text(number.to_string()),
        },
        // jsonb orders false before true, as Rust orders bools.
        Literal::Bool(b) => Typed {
            guard: Some(format!("{kind} = 'boolean'")),
            value: jsonb_sql(field),
            right: "to_jsonb(CAST({} AS boolean))",
            bind: SqlBind::Text(b.to_string()),
        },
        Literal::Null => return None,
    };
    Some(typed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sharehub_model::filter::{parse_filter, parse_orderby};

    fn sql(filter: &str) -> SqlFragment {
        postgres_filter(&parse_filter(filter).unwrap(), 3, &DateTimeFields::default()).unwrap()
    }

    #[test]
    fn json_paths_are_quoted_and_literals_bound() {
        let fragment = sql("email/address eq 'x''); DROP TABLE records; --'");
        assert_eq!(
            fragment.sql,
            "(COALESCE(jsonb_typeof(data::jsonb -> 'email' -> 'address'), 'null') = 'string' \
             AND ((data::jsonb -> 'email' ->> 'address') COLLATE \"C\") = $3)"
        );
        assert_eq!(fragment.binds, vec![SqlBind::Text("x'); DROP TABLE records; --".to_owned())]);
    }

    #[test]
    fn meta_fields_use_columns_and_placeholders_count_up() {
        let fragment = sql("updated_at gt '2016-10-04T00:36:23Z' and version ge 2");
        assert_eq!(fragment.sql, "((updated_at > $3) AND (version >= CAST($4 AS numeric)))");
        assert_eq!(fragment.binds, vec![SqlBind::Int(1_475_541_383_000_000), SqlBind::Text("2".into())]);
        assert_eq!(sql("id eq 5").sql, "FALSE");
        assert_eq!(sql("id ne 5").sql, "TRUE");
    }

    #[test]
    fn bad_keys_are_errors() {
        let bad = Expr::Compare { field: FieldPath(vec!["a'b".to_owned()]), op: CmpOp::Eq, value: Literal::Null };
        assert!(postgres_filter(&bad, 1, &DateTimeFields::default()).is_err());
    }

    #[test]
    fn order_by_lists_keys() {
        let keys = parse_orderby("updated_at desc, email/address").unwrap();
        assert_eq!(
            postgres_order_by(&keys, &DateTimeFields::default()).unwrap(),
            "updated_at DESC NULLS LAST, (data::jsonb -> 'email' -> 'address') ASC NULLS FIRST"
        );
    }

    #[test]
    fn date_time_fields_compare_keys() {
        let dates = DateTimeFields::new([FieldPath(vec!["at".to_owned(), "when".to_owned()])]);
        let expr = parse_filter("at/when le '2030-05-05T12:00:00.500+02:00' or at/when eq null").unwrap();
        let fragment = postgres_filter(&expr, 3, &dates).unwrap();
        let guard = "COALESCE(jsonb_typeof(data::jsonb -> 'at' -> 'when'), 'null')";
        assert!(fragment.sql.starts_with(&format!("(({guard} = 'string' AND ")), "{}", fragment.sql);
        assert!(fragment.sql.ends_with(&format!(" COLLATE \"C\") <= $3) OR ({guard} = 'null'))")), "{}", fragment.sql);
        assert_eq!(fragment.binds, vec![SqlBind::Text("2030-05-05T10:00:00.5".to_owned())]);
        let error = postgres_filter(&parse_filter("at/when gt '2030-05-05'").unwrap(), 1, &dates).unwrap_err();
        assert!(error.message.starts_with("at/when is a date-time field"), "{}", error.message);
        let order = postgres_order_by(&parse_orderby("at/when desc").unwrap(), &dates).unwrap();
        assert!(order.starts_with("((SELECT CASE WHEN jsonb_typeof(j) <> 'string' THEN NULL "), "{order}");
        assert!(
            order.ends_with(" FROM (SELECT (data::jsonb -> 'at' -> 'when') AS j OFFSET 0) AS stored) COLLATE \"C\") DESC NULLS LAST"),
            "{order}"
        );
    }
}
