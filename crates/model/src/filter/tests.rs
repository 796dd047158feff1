//! Tests of the filter parser, printer and evaluator.

use super::*;
use proptest::prelude::*;
use serde_json::json;
use std::str::FromStr;

fn path(p: &str) -> FieldPath {
    FieldPath(p.split('/').map(str::to_owned).collect())
}

fn cmp(field: &str, op: CmpOp, value: Literal) -> Expr {
    Expr::Compare { field: path(field), op, value }
}

fn s(text: &str) -> Literal {
    Literal::String(text.to_owned())
}

fn num(text: &str) -> Literal {
    Literal::Number(Decimal::from_str(text).unwrap())
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::And(Box::new(a), Box::new(b))
}

fn or(a: Expr, b: Expr) -> Expr {
    Expr::Or(Box::new(a), Box::new(b))
}

fn not(a: Expr) -> Expr {
    Expr::Not(Box::new(a))
}

fn error_at(input: &str) -> (usize, String) {
    let e = parse_filter(input).unwrap_err();
    (e.position, e.message)
}

#[test]
fn parses_the_documented_examples() {
    let cases = [
        ("updated_at gt '2016-10-04T00:36:23Z'", cmp("updated_at", CmpOp::Gt, s("2016-10-04T00:36:23Z"))),
        (
            "type eq 'CUSTOMER' and status eq 'DRAFT'",
            and(cmp("type", CmpOp::Eq, s("CUSTOMER")), cmp("status", CmpOp::Eq, s("DRAFT"))),
        ),
        (
            "status ne 'ARCHIVED' and code eq 'CT3'",
            and(cmp("status", CmpOp::Ne, s("ARCHIVED")), cmp("code", CmpOp::Eq, s("CT3"))),
        ),
        ("is_lead eq true", cmp("is_lead", CmpOp::Eq, Literal::Bool(true))),
        ("not (a eq 1 or b eq 'x''y')", not(or(cmp("a", CmpOp::Eq, num("1")), cmp("b", CmpOp::Eq, s("x'y"))))),
        ("email/address eq 'x@y.z'", cmp("email/address", CmpOp::Eq, s("x@y.z"))),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_filter(input).unwrap(), expected, "{input}");
    }
}

#[test]
fn precedence_is_not_then_and_then_or() {
    let a = || cmp("a", CmpOp::Eq, num("1"));
    let b = || cmp("b", CmpOp::Lt, num("-12.50"));
    let c = || cmp("c", CmpOp::Ge, Literal::Null);
    assert_eq!(parse_filter("a eq 1 or b lt -12.50 and not c ge null").unwrap(), or(a(), and(b(), not(c()))));
    assert_eq!(parse_filter("(a eq 1 or b lt -12.50) and c ge null").unwrap(), and(or(a(), b()), c()));
    assert_eq!(parse_filter("a eq 1 or b lt -12.50 or c ge null").unwrap(), or(or(a(), b()), c()));
}

#[test]
fn keywords_are_case_insensitive_and_literals_exact() {
    let expr = parse_filter("NOT(a EQ 'Zoë 東京 🙂') AnD b Le FALSE oR c nE NULL").unwrap();
    let expected = or(
        and(not(cmp("a", CmpOp::Eq, s("Zoë 東京 🙂"))), cmp("b", CmpOp::Le, Literal::Bool(false))),
        cmp("c", CmpOp::Ne, Literal::Null),
    );
    assert_eq!(expr, expected);
    let Expr::Compare { value: Literal::Number(n), .. } = parse_filter("x eq -12.50").unwrap() else {
        panic!("not a number");
    };
    assert_eq!(n.to_string(), "-12.50");
}

#[test]
fn malformed_filters_report_where_they_break() {
    let cases = [
        ("", 0, "empty filter"),
        ("   ", 0, "empty filter"),
        ("name eq 'abc", 8, "unterminated string"),
        ("name eq 'a\u{0}b'", 10, "U+0000 is not allowed"),
        ("name eq", 7, "expected a value after 'eq'"),
        ("name eq and b eq 1", 8, "expected a value after 'eq'"),
        ("name like 'x'", 5, "unknown operator 'like'"),
        ("name eq 'x' foo", 12, "expected the end of the filter"),
        ("(a eq 1", 7, "expected ')' to close '(' at position 0"),
        ("a eq 1)", 6, "found ')'"),
        ("1 eq a", 0, "expected a field name, found number 1"),
        ("'a' eq a", 0, "expected a field name, found string 'a'"),
        ("true eq a", 0, "expected a field name"),
        ("a eq 1 and", 10, "expected a field name, found the end"),
        ("a eq 1 & b eq 2", 7, "unexpected character '&'"),
        ("a eq 1.", 5, "malformed number"),
        ("a eq 12abc", 5, "malformed number"),
        ("a eq -", 5, "malformed number"),
        ("a/ eq 1", 2, "expected a field name after '/'"),
        ("a eq b", 5, "expected a value after 'eq', found 'b'"),
        ("a 1", 2, "expected an operator"),
        ("é eq 1", 0, "unexpected character 'é'"),
    ];
    for (input, position, message) in cases {
        let (at, text) = error_at(input);
        assert_eq!(at, position, "{input}: {text}");
        assert!(text.contains(message), "{input}: {text}");
    }
}

#[test]
fn positions_count_characters_not_bytes() {
    assert_eq!(error_at("a eq 'é東' b").0, 10);
}

#[test]
fn error_display_names_the_position() {
    let e = parse_filter("updated_at eq ").unwrap_err();
    assert_eq!(e.to_string(), "at position 14: expected a value after 'eq', found the end");
}

#[test]
fn hostile_inputs_are_refused_not_overflowed() {
    let deep = format!("{}a eq 1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(error_at(&deep).1.contains("longer than"));
    let nested = format!("{}a eq 1{}", "(".repeat(100), ")".repeat(100));
    assert!(error_at(&nested).1.contains("nested deeper"));
    let nots = "not ".repeat(100) + "a eq 1";
    assert!(error_at(&nots).1.contains("nested deeper"));
    let ok = format!("{}a eq 1{}", "(".repeat(60), ")".repeat(60));
    assert!(parse_filter(&ok).is_ok());
    let huge = format!("a eq {}", "9".repeat(40));
    assert!(error_at(&huge).1.contains("out of range"));
}

#[test]
fn orderby_parses_keys_and_directions() {
    let keys = parse_orderby("updated_at DESC, name, email/address asc").unwrap();
    let expected = vec![
        OrderKey { field: path("updated_at"), descending: true },
        OrderKey { field: path("name"), descending: false },
        OrderKey { field: path("email/address"), descending: false },
    ];
    assert_eq!(keys, expected);
    assert!(!parse_orderby("name ASC").unwrap()[0].descending);
    for (input, position) in [("", 0), ("name,", 5), ("name sideways", 5), ("'x'", 0)] {
        assert_eq!(parse_orderby(input).unwrap_err().position, position, "{input}");
    }
}

fn record() -> serde_json::Value {
    json!({
        "name": "Zoë",
        "code": "CT3",
        "amount": serde_json::Number::from_str("12.50").unwrap(),
        "qty": 3,
        "is_lead": true,
        "note": null,
        "email": { "address": "x@y.z" },
        "lines": [1, 2],
        "updated_at": "2016-10-04T00:36:23.5Z",
    })
}

fn holds(filter: &str) -> bool {
    parse_filter(filter).unwrap().matches(&record())
}

#[test]
fn evaluator_compares_like_kinds() {
    let truths = [
        "name eq 'Zoë'",
        "name gt 'Zoe'",
        "code lt 'CT4'",
        "amount eq 12.5",
        "amount gt 12.49",
        "amount le 12.500",
        "qty eq 3.00",
        "qty ge -1",
        "is_lead eq true",
        "is_lead gt false",
        "email/address eq 'x@y.z'",
        "note eq null",
        "missing eq null",
        "email/nothing eq null",
        "name ne null",
        "missing ne 'x'",
        "note ne 1",
        "name ne 1",
        "amount ne '12.50'",
        "is_lead ne 1",
        "lines ne 1",
        "email ne 'x'",
        "lines ne null",
        "updated_at gt '2016-10-04T00:36:23Z'",
        "updated_at eq '2016-10-04T02:36:23.5+02:00'",
        "not (name eq 'x') and (qty lt 0 or qty gt 2)",
    ];
    for filter in truths {
        assert!(holds(filter), "{filter} should hold");
    }
    let falsehoods = [
        "name eq 'zoë'",
        "amount lt 12.5",
        "qty gt 3",
        "is_lead lt true",
        "missing eq 'x'",
        "missing lt 1",
        "note gt 1",
        "note le null",
        "name eq 1",
        "amount eq '12.50'",
        "name ge 1",
        "is_lead eq 1",
        "lines eq 1",
        "email eq null",
        "email/address/x eq 'x'",
        "name ne 'Zoë'",
        "updated_at lt '2016-10-04T00:36:23Z'",
    ];
    for filter in falsehoods {
        assert!(!holds(filter), "{filter} should not hold");
    }
}

#[test]
fn date_time_fields_compare_as_instants() {
    let invoice = json!({
        "half": "2030-05-05T10:00:00.500Z",
        "whole": "2030-05-05T10:00:00Z",
        "at": { "when": "2030-05-05T10:00:00.200Z" },
    });
    let dates = DateTimeFields::new([path("half"), path("whole"), path("at/when")]);
    let holds_for = |filter: &str, dates: &DateTimeFields| parse_filter(filter).unwrap().matches_with(&invoice, dates);
    for filter in [
        "half gt '2030-05-05T10:00:00Z'",
        "half eq '2030-05-05T10:00:00.5Z'",
        "half eq '2030-05-05T12:00:00.5000+02:00'",
        "whole eq '2030-05-05T10:00:00.000Z'",
        "whole lt '2030-05-05T10:00:00.000000001Z'",
        "at/when eq '2030-05-05T10:00:00.2Z'",
        "at/when gt '2030-05-05T10:00:00Z'",
    ] {
        assert!(holds_for(filter, &dates), "{filter} should hold");
        // As text (a free-form entity), each of these is false.
        assert!(!holds_for(filter, &DateTimeFields::default()), "{filter} should not hold as text");
    }
    assert!(dates.contains(&path("at/when")) && !dates.contains(&path("at")) && !dates.contains(&path("when")));
}

#[test]
fn numbers_that_do_not_fit_a_decimal_are_incomparable() {
    let huge: serde_json::Value = serde_json::from_str(r#"{"n": 1e400}"#).unwrap();
    assert!(!parse_filter("n gt 0").unwrap().matches(&huge));
    assert!(parse_filter("n ne 0").unwrap().matches(&huge));
}

#[test]
fn display_prints_minimal_parentheses() {
    let expr = parse_filter("(a eq 1 or b eq 2) and not c eq 'it''s' or d eq null").unwrap();
    assert_eq!(expr.to_string(), "(a eq 1 or b eq 2) and not (c eq 'it''s') or d eq null");
    let right = parse_filter("a eq 1 or (b eq 2 or c eq 3)").unwrap();
    assert_eq!(right.to_string(), "a eq 1 or (b eq 2 or c eq 3)");
}

fn name_strategy() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}".prop_filter("reserved word", |n| {
        !["and", "or", "not", "true", "false", "null"].contains(&n.to_ascii_lowercase().as_str())
    })
}

fn literal_strategy() -> impl Strategy<Value = Literal> {
    prop_oneof![
        any::<String>().prop_map(Literal::String),
        (any::<i64>(), 0u32..10).prop_map(|(m, scale)| Literal::Number(Decimal::new(m, scale))),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Null),
    ]
}

fn op_strategy() -> impl Strategy<Value = CmpOp> {
    prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne), Just(CmpOp::Gt), Just(CmpOp::Ge), Just(CmpOp::Lt), Just(CmpOp::Le),]
}

fn expr_strategy() -> impl Strategy<Value = Expr> {
    let leaf = (proptest::collection::vec(name_strategy(), 1..3), op_strategy(), literal_strategy())
        .prop_map(|(names, op, value)| Expr::Compare { field: FieldPath(names), op, value });
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| and(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| or(a, b)),
            inner.prop_map(not),
        ]
    })
}

proptest! {
    #[test]
    fn printing_then_parsing_gives_the_same_expr(expr in expr_strategy()) {
        let printed = expr.to_string();
        prop_assert_eq!(parse_filter(&printed), Ok(expr), "{}", printed);
    }

    #[test]
    fn orderby_round_trips(
        keys in proptest::collection::vec(
            (proptest::collection::vec(name_strategy(), 1..3), any::<bool>())
                .prop_map(|(names, descending)| OrderKey { field: FieldPath(names), descending }),
            1..4,
        )
    ) {
        let printed = keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        prop_assert_eq!(parse_orderby(&printed), Ok(keys));
    }

    #[test]
    fn parser_never_panics(input in "\\PC{0,40}") {
        let _ = parse_filter(&input);
        let _ = parse_orderby(&input);
    }
}
