//! Generators shared by the filter agreement tests: random records (strings
//! with accents, CJK and emoji, 2-decimal numbers, booleans, nulls, missing
//! and nested fields, date-times stored as the write path stores them) and
//! random `$filter` / `$orderby` expressions over them.
#![allow(dead_code)]

use jiff::fmt::temporal::DateTimePrinter;
use jiff::tz::Offset;
use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Map, Number, Value};
use sharehub_model::filter::{CmpOp, DateTimeFields, Expr, FieldPath, Literal, OrderKey};
use sharehub_model::schema::canonical_date_time;
use std::str::FromStr;

pub const STRINGS: [&str; 12] = ["", "a", "A", "Zoë", "Zoe", "zoë", "東京", "🙂", "CT3", "it's", "é", "e\u{301}"];

pub const MICROS: [i64; 6] =
    [0, -1_000_000, 1_475_541_383_000_000, 1_475_541_383_500_000, 1_475_541_383_123_456, 1_475_541_384_000_000];

pub const DATA_FIELDS: [&str; 11] =
    ["name", "code", "amount", "qty", "is_lead", "email", "email/address", "missing", "due", "when", "when/at"];

/// The fields the tests' entity declares as date-times: one at the top, one
/// in an object.
pub const DATE_TIME_FIELDS: [&str; 2] = ["due", "when/at"];

/// Instants a fraction of a second (or a nanosecond) apart, and a few far
/// ones (RFC 3339 has years 0000 to 9999; jiff's last instant is late in
/// 9999).
pub const INSTANTS: [&str; 10] = [
    "0000-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999999999Z",
    "2030-05-05T09:59:59.999999999Z",
    "2030-05-05T10:00:00Z",
    "2030-05-05T10:00:00.000000001Z",
    "2030-05-05T10:00:00.05Z",
    "2030-05-05T10:00:00.2Z",
    "2030-05-05T10:00:00.5Z",
    "2030-05-05T10:00:01Z",
    "9999-12-30T22:00:00.999999999Z",
];

pub fn date_times() -> DateTimeFields {
    DateTimeFields::new(DATE_TIME_FIELDS.map(path))
}

#[derive(Debug, Clone)]
pub struct Record {
    pub id: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub data: Map<String, Value>,
}

pub fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![(-5i64..5).prop_map(|n| n.to_string()), (-500i64..500).prop_map(|m| Decimal::new(m, 2).to_string()),]
}

/// A JSON value of any kind, including null.
pub fn json_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::sample::select(&STRINGS[..]).prop_map(|s| Value::String(s.to_owned())),
        number_text().prop_map(|t| Value::Number(Number::from_str(&t).unwrap())),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

/// One of [`INSTANTS`] as a client may write it: 0 to 9 fraction digits
/// (fewer than it needs cut it short: another instant) or as many as it
/// needs, in UTC or at an offset.
pub fn written_date_time() -> impl Strategy<Value = String> {
    let digits = prop_oneof![Just(None), (0u8..=9).prop_map(Some)];
    let offset = proptest::sample::select(vec![0, 2 * 3600, -(5 * 3600 + 30 * 60)]);
    (proptest::sample::select(&INSTANTS[..]), digits, offset)
        .prop_map(|(instant, digits, offset)| {
            let instant: Timestamp = instant.parse().unwrap();
            let offset = Offset::from_seconds(offset).unwrap();
            DateTimePrinter::new().precision(digits).timestamp_with_offset_to_string(&instant, offset)
        })
        // Year 0000 at a negative offset is year -0001 where it was written: not RFC 3339.
        .prop_filter("a year RFC 3339 has", |text| canonical_date_time(text).is_some())
}

/// A date-time as the write path stores it (in UTC, fraction digits kept).
pub fn stored_date_time() -> impl Strategy<Value = Value> {
    written_date_time().prop_map(|text| Value::String(canonical_date_time(&text).unwrap()))
}

/// `when`: an object holding `at` (a date-time, null or missing), or
/// something that holds no `at`.
pub fn when_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => proptest::option::of(prop_oneof![stored_date_time(), Just(Value::Null)])
            .prop_map(|at| Value::Object(Map::from_iter(at.map(|at| ("at".to_owned(), at))))),
        1 => json_value(),
    ]
}

pub fn email_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        json_value().prop_map(|v| Value::Object(Map::from_iter([("address".to_owned(), v)]))),
        Just(Value::Object(Map::new())),
        Just(Value::Array(vec![Value::Bool(true)])),
    ]
}

pub fn data() -> impl Strategy<Value = Map<String, Value>> {
    let keys = ["name", "code", "amount", "qty", "is_lead"];
    let due = proptest::option::of(prop_oneof![4 => stored_date_time(), 1 => Just(Value::Null)]);
    (
        proptest::collection::vec(proptest::option::of(json_value()), 5),
        proptest::option::of(email_value()),
        due,
        proptest::option::of(when_value()),
    )
        .prop_map(move |(values, email, due, when)| {
            let mut map = Map::new();
            for (key, value) in keys.iter().zip(values) {
                if let Some(value) = value {
                    map.insert((*key).to_owned(), value);
                }
            }
            for (key, value) in [("email", email), ("due", due), ("when", when)] {
                if let Some(value) = value {
                    map.insert(key.to_owned(), value);
                }
            }
            map
        })
}

pub fn records() -> impl Strategy<Value = Vec<Record>> {
    let micros = || proptest::sample::select(&MICROS[..]);
    proptest::collection::vec((1i64..4, micros(), micros(), data()), 0..8).prop_map(|rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (version, created_at, updated_at, data))| Record {
                id: format!("00000000-0000-4000-8000-{i:012}"),
                version,
                created_at,
                updated_at,
                data,
            })
            .collect()
    })
}

pub fn timestamp_literal() -> impl Strategy<Value = Literal> {
    (proptest::sample::select(&MICROS[..]), 0u8..4).prop_map(|(micros, form)| {
        let ts = jiff::Timestamp::from_microsecond(micros).unwrap();
        let text = match form {
            0 => ts.to_string(),
            1 => ts.display_with_offset(jiff::tz::Offset::constant(2)).to_string(),
            2 => jiff::Timestamp::from_nanosecond(i128::from(micros) * 1000 + 500).unwrap().to_string(),
            _ => jiff::Timestamp::from_nanosecond(i128::from(micros) * 1000 - 1).unwrap().to_string(),
        };
        Literal::String(text)
    })
}

pub fn plain_literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        proptest::sample::select(&STRINGS[..]).prop_map(|s| Literal::String(s.to_owned())),
        Just(Literal::String("00000000-0000-4000-8000-000000000001".to_owned())),
        number_text().prop_map(|t| Literal::Number(Decimal::from_str(&t).unwrap())),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Null),
    ]
}

pub fn literal_for(field: &str) -> BoxedStrategy<Literal> {
    if DATE_TIME_FIELDS.contains(&field) {
        // Anything else is refused (bad-filter), which the evaluator does not do.
        prop_oneof![5 => written_date_time().prop_map(Literal::String), 1 => Just(Literal::Null)].boxed()
    } else if field == "created_at" || field == "updated_at" {
        prop_oneof![
            3 => timestamp_literal(),
            1 => number_text().prop_map(|t| Literal::Number(Decimal::from_str(&t).unwrap())),
            1 => Just(Literal::Null),
        ]
        .boxed()
    } else {
        plain_literal().boxed()
    }
}

pub fn field() -> impl Strategy<Value = &'static str> {
    let mut all = DATA_FIELDS.to_vec();
    all.extend(["id", "version", "created_at", "updated_at"]);
    proptest::sample::select(all)
}

pub fn op() -> impl Strategy<Value = CmpOp> {
    proptest::sample::select(vec![CmpOp::Eq, CmpOp::Ne, CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le])
}

pub fn path(field: &str) -> FieldPath {
    FieldPath(field.split('/').map(str::to_owned).collect())
}

pub fn expr() -> impl Strategy<Value = Expr> {
    let leaf = field().prop_flat_map(|f| {
        (op(), literal_for(f)).prop_map(move |(op, value)| Expr::Compare { field: path(f), op, value })
    });
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Expr::Not(Box::new(a))),
        ]
    })
}

/// The record as the evaluator sees it: data plus meta fields.
pub fn as_json(record: &Record) -> Value {
    let mut map = record.data.clone();
    let time = |micros| Value::String(jiff::Timestamp::from_microsecond(micros).unwrap().to_string());
    map.insert("id".to_owned(), Value::String(record.id.clone()));
    map.insert("version".to_owned(), Value::from(record.version));
    map.insert("created_at".to_owned(), time(record.created_at));
    map.insert("updated_at".to_owned(), time(record.updated_at));
    Value::Object(map)
}

pub fn order_keys() -> impl Strategy<Value = Vec<OrderKey>> {
    proptest::collection::vec(
        (field(), any::<bool>()).prop_map(|(f, descending)| OrderKey { field: path(f), descending }),
        1..3,
    )
}

/// An `$orderby` on one date-time field.
pub fn date_time_order_key() -> impl Strategy<Value = OrderKey> {
    (proptest::sample::select(&DATE_TIME_FIELDS[..]), any::<bool>())
        .prop_map(|(f, descending)| OrderKey { field: path(f), descending })
}

/// The ids of `records` in the order of `key` (a date-time field, compared
/// as instants, missing ones first ascending and last descending), ties by id.
pub fn ids_in_date_time_order(records: &[Record], key: &OrderKey) -> Vec<String> {
    let instant = |record: &Record| -> Option<Timestamp> {
        let data = Value::Object(record.data.clone());
        let pointer = format!("/{}", key.field.0.join("/"));
        data.pointer(&pointer).and_then(Value::as_str).map(|text| text.parse().unwrap())
    };
    let mut sorted: Vec<&Record> = records.iter().collect();
    sorted.sort_by(|a, b| {
        let by_instant = instant(a).cmp(&instant(b));
        let by_instant = if key.descending { by_instant.reverse() } else { by_instant };
        by_instant.then_with(|| a.id.cmp(&b.id))
    });
    sorted.into_iter().map(|r| r.id.clone()).collect()
}
