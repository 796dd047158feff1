//! `$filter` and `$orderby` on date-time fields inside records (an invoice's
//! `transaction_date`): compared and sorted as instants, whatever fraction
//! digits or offset were written, and literals must carry an offset.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::TestApp;
use crate::support::{assert_error, World};

/// Three invoices a fraction of a second apart, written with trailing zeros,
/// without a fraction, and with an offset (stored as `10:00:00.2Z`).
async fn world_with_three_invoices() -> World {
    let world = World::new().await;
    for (number, date) in [
        ("half", "2030-05-05T10:00:00.500Z"),
        ("whole", "2030-05-05T10:00:00Z"),
        ("fifth", "2030-05-05T12:00:00.200+02:00"),
    ] {
        world.create("invoices", json!({ "transaction_number": number, "transaction_date": date })).await;
    }
    world
}

/// `transaction_number`s of the invoices a list answers, in its order.
async fn listed(world: &World, pairs: &[(&str, &str)]) -> Vec<String> {
    let (status, body) = world.get(&format!("invoices?{}", url_query(pairs))).await;
    assert_eq!(status, StatusCode::OK, "{pairs:?}: {body}");
    numbers(&body["invoices"])
}

fn numbers(records: &Value) -> Vec<String> {
    let records = records.as_array().unwrap_or_else(|| panic!("no records in {records}"));
    records.iter().map(|r| r["transaction_number"].as_str().unwrap_or_default().to_string()).collect()
}

/// The same names, sorted: for filters, whose answer order is not the point.
fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn url_query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

#[tokio::test]
async fn date_time_filters_compare_instants_not_text() {
    let world = world_with_three_invoices().await;
    let cases: [(&str, &[&str]); 7] = [
        ("transaction_date gt '2030-05-05T10:00:00Z'", &["fifth", "half"]),
        ("transaction_date lt '2030-05-05T10:00:00.300Z'", &["fifth", "whole"]),
        ("transaction_date eq '2030-05-05T10:00:00.5Z'", &["half"]),
        ("transaction_date eq '2030-05-05T10:00:00.50000Z'", &["half"]),
        (
            "transaction_date ge '2030-05-05T10:00:00.2Z' and transaction_date le '2030-05-05T10:00:00.5Z'",
            &["fifth", "half"],
        ),
        ("transaction_date ne '2030-05-05T10:00:00.000Z'", &["fifth", "half"]),
        ("transaction_date lt '2030-05-05T10:00:00.000000001Z'", &["whole"]),
    ];
    for (filter, expected) in cases {
        assert_eq!(sorted(listed(&world, &[("$filter", filter)]).await), expected, "{filter}");
    }
}

#[tokio::test]
async fn a_literal_with_an_offset_matches_the_value_stored_in_utc() {
    let world = world_with_three_invoices().await;
    let fifth = listed(&world, &[("$filter", "transaction_date eq '2030-05-05T12:00:00.2+02:00'")]).await;
    assert_eq!(fifth, ["fifth"]);
    let before = listed(&world, &[("$filter", "transaction_date lt '2030-05-05T09:00:00.3-01:00'")]).await;
    assert_eq!(sorted(before), ["fifth", "whole"], "09:00:00.3-01:00 is 10:00:00.3Z");
}

#[tokio::test]
async fn date_time_orderby_sorts_instants_both_ways() {
    let world = world_with_three_invoices().await;
    assert_eq!(listed(&world, &[("$orderby", "transaction_date")]).await, ["whole", "fifth", "half"]);
    assert_eq!(listed(&world, &[("$orderby", "transaction_date asc")]).await, ["whole", "fifth", "half"]);
    assert_eq!(listed(&world, &[("$orderby", "transaction_date desc")]).await, ["half", "fifth", "whole"]);
}

#[tokio::test]
async fn a_date_time_literal_without_an_offset_is_a_bad_filter() {
    let world = world_with_three_invoices().await;
    for literal in ["'2030-05-05T09:00:00'", "'2030-05-05'", "'yesterday'", "5"] {
        let filter = format!("transaction_date gt {literal}");
        let (status, body) = world.get(&format!("invoices?{}", url_query(&[("$filter", &filter)]))).await;
        let error = assert_error(status, &body, 400, "bad-filter");
        let detail = error["detail"].as_str().unwrap();
        assert!(detail.contains("transaction_date"), "{filter}: the field is named in {detail}");
        assert!(detail.contains("RFC 3339") && detail.contains("offset"), "{filter}: what is expected in {detail}");
    }
    // Null still asks for a missing or null date.
    let (status, body) = world.get(&format!("invoices?{}", url_query(&[("$filter", "due_date eq null")]))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["invoices"].as_array().map(Vec::len), Some(3), "{body}");
}

#[tokio::test]
async fn fields_of_free_form_entities_keep_comparing_text() {
    let hub = TestApp::spawn().await;
    let org = hub.create_org("Projects").await;
    let app = hub.create_app("store", &[("projects", "rw")], None).await;
    let group = hub.install(&app, &org).await;
    for (code, start) in [("A", "2030-05-05T10:00:00.500Z"), ("B", "2030-05-05T10:00:00Z")] {
        let (status, body) = hub.post(&app, &group, "projects", json!({ "code": code, "start": start })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // No schema says `start` is a date-time: its text is compared as sent,
    // and "…00.500Z" < "…00Z" as text.
    let query = url_query(&[("$filter", "start lt '2030-05-05T10:00:00Z'"), ("$orderby", "start")]);
    let (status, body) = hub.get(&app, &format!("/api/v2/{group}/projects?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let codes: Vec<&str> = body["projects"].as_array().unwrap().iter().filter_map(|p| p["code"].as_str()).collect();
    assert_eq!(codes, ["A"]);
    let query = url_query(&[("$filter", "start eq 'not a date'")]);
    let (status, body) = hub.get(&app, &format!("/api/v2/{group}/projects?{query}")).await;
    assert_eq!(status, StatusCode::OK, "any literal goes: {body}");
}
