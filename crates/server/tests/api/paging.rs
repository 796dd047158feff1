//! Batch import, paging by `next`, `$filter`, `$orderby`, and exact money.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{batch_of, send_json, send_raw, World};

/// Imports `records` as people in one `POST /batch`; answers the results.
pub async fn import(world: &World, records: Vec<Value>) -> Vec<Value> {
    let count = records.len();
    let body = batch_of(&world.group, "people", records);
    let request = world.hub.api(&world.app, Method::POST, "/batch").json(&body);
    let (status, answer) = send_json(request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let results = answer["results"].as_array().unwrap_or_else(|| panic!("{answer}")).clone();
    assert_eq!(results.len(), count);
    results
}

#[tokio::test]
async fn two_hundred_fifty_imported_records_page_by_next_without_loss() {
    let world = World::new().await;
    let records = (0..250)
        .map(|i| json!({ "first_name": format!("P{i:03}"), "email": { "address": format!("p{i}@example.com") } }))
        .collect();
    let results = import(&world, records).await;
    assert!(
        results.iter().all(|r| r["status"] == 201 && r["body"]["people"]["id"].is_string()),
        "{:?}",
        results.first()
    );

    let mut ids = HashSet::new();
    let mut url = format!("{}{}?$top=100", world.hub.base, world.path("people"));
    let mut pages = 0;
    loop {
        pages += 1;
        let (status, page) =
            send_json(world.hub.client.get(&url).basic_auth(&world.app.api_id, Some(&world.app.api_key))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["pagination"]["total"], 250);
        for person in page["people"].as_array().unwrap() {
            assert!(ids.insert(person["id"].as_str().unwrap().to_string()), "duplicate {person}");
        }
        match page["pagination"]["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with("http://"), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(ids.len(), 250);
}

#[tokio::test]
async fn a_batch_of_the_most_ops_writes_each_record_once_and_a_repeat_changes_nothing() {
    let world = World::new().await;
    // 1000 ops (the default limit): more rows than one statement writes.
    let people = || {
        (0..1000).map(|i| {
            json!({ "id": [{ "provider": world.app.provider, "id": format!("ext-{i}") }], "first_name": format!("Nº {i} ✓") })
        })
    };
    let first = import(&world, people().collect()).await;
    assert!(first.iter().all(|r| r["status"] == 201), "{:?}", first.iter().find(|r| r["status"] != 201));

    let again = import(&world, people().collect()).await;
    for (before, after) in first.iter().zip(&again) {
        assert_eq!(after["status"], 200, "{after}");
        assert_eq!(after["body"]["people"]["id"], before["body"]["people"]["id"], "found by its external id");
        assert_eq!(after["body"]["people"]["version"], 1, "nothing changed");
    }
    let (_, page) = send_json(world.req(Method::GET, "people?$top=1")).await;
    assert_eq!(page["pagination"]["total"], 1000, "{page}");
    let (_, changes) = send_json(world.req(Method::GET, "changes?after=999&limit=10")).await;
    assert_eq!(changes["changes"].as_array().map(Vec::len), Some(1), "1000 changes, one per record: {changes}");
}

#[tokio::test]
async fn filters_and_orderby_work_through_http() {
    let world = World::new().await;
    for (first, last, email) in
        [("Ann", "Lee", "ann@x.io"), ("Bob", "Zhu", "bob@x.io"), ("Ann", "Moe", "ann2@x.io"), ("Ann", "x", "ann3@x.io")]
    {
        world.create("people", json!({ "first_name": first, "last_name": last, "email": { "address": email } })).await;
    }
    let names = |body: &Value| -> Vec<String> {
        body["people"].as_array().unwrap().iter().map(|p| p["last_name"].as_str().unwrap().to_string()).collect()
    };

    let query = url_query(&[("$filter", "email/address eq 'bob@x.io'")]);
    let (status, body) = world.get(&format!("people?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["Zhu"]);

    let query = url_query(&[("$filter", "last_name ne 'x' and first_name eq 'Ann'"), ("$orderby", "last_name DESC")]);
    let (status, body) = world.get(&format!("people?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["Moe", "Lee"]);

    let query = url_query(&[("$orderby", "last_name DESC")]);
    let (_, body) = world.get(&format!("people?{query}")).await;
    assert_eq!(names(&body), ["x", "Zhu", "Moe", "Lee"]);
}

fn url_query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

#[tokio::test]
async fn an_invoice_of_ten_and_twenty_cents_totals_exactly_thirty() {
    let world = World::new().await;
    let line = |price: &str| json!({ "quantity": 1, "unit_price": { "net_amount": price } });
    let invoice = world.create("invoices", json!({ "lines": [line("0.10"), line("0.20")] })).await;
    assert_eq!(invoice["amount"]["net_amount"].to_string(), "0.30", "{invoice}");
    let (status, _, raw) =
        send_raw(world.req(Method::GET, &format!("invoices/{}", invoice["id"].as_str().unwrap()))).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(raw).unwrap();
    let amount_at = text.find("\"amount\"").unwrap_or_else(|| panic!("{text}"));
    let amount = &text[amount_at..];
    let amount = &amount[..amount.find('}').unwrap()];
    assert!(amount.contains("\"net_amount\":0.30"), "exact decimal text expected in {amount}");
    assert!(!text.contains("0.30000000000000004"), "{text}");
}

#[tokio::test]
async fn next_keeps_the_filter_and_order_across_pages() {
    let world = World::new().await;
    let records = (0..25)
        .map(|i| json!({ "first_name": if i % 2 == 0 { "Even" } else { "Odd" }, "last_name": format!("L{i:02}") }))
        .collect();
    import(&world, records).await;
    let mut url = format!(
        "{}{}?{}",
        world.hub.base,
        world.path("people"),
        url_query(&[("$filter", "first_name eq 'Even'"), ("$orderby", "last_name DESC"), ("$top", "5")])
    );
    let mut names = Vec::new();
    loop {
        let (status, page) =
            send_json(world.hub.client.get(&url).basic_auth(&world.app.api_id, Some(&world.app.api_key))).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["pagination"]["total"], 13);
        names.extend(page["people"].as_array().unwrap().iter().map(|p| p["last_name"].as_str().unwrap().to_string()));
        match page["pagination"]["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().filter(|i| i % 2 == 0).map(|i| format!("L{i:02}")).collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn updated_at_filters_compare_as_instants() {
    let world = World::new().await;
    let person = world.create("people", json!({ "first_name": "Ann" })).await;
    let created = person["updated_at"].as_str().unwrap().to_string();
    let whole_second = format!("{}Z", &created[..19]);
    for (filter, expected) in [
        ("updated_at gt '2016-10-04T00:36:23Z'".to_string(), 1),
        (format!("updated_at ge '{whole_second}'"), 1),
        (format!("updated_at lt '{whole_second}'"), 0),
        ("updated_at gt '2999-01-01T00:00:00Z'".to_string(), 0),
    ] {
        let (status, body) = world.get(&format!("people?{}", url_query(&[("$filter", &filter)]))).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["people"].as_array().unwrap().len(), expected, "{filter} with updated_at {created}");
    }
}

#[tokio::test]
async fn next_links_take_only_a_plain_host_and_http_or_https_from_the_request() {
    let world = World::new().await;
    import(&world, (0..3).map(|i| json!({ "first_name": format!("P{i}") })).collect()).await;
    let next_with = |host: &'static str, proto: &'static str| {
        let request = world.req(Method::GET, "people?$top=1").header("host", host).header("x-forwarded-proto", proto);
        async move {
            let (status, page) = send_json(request).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page["pagination"]["next"].as_str().unwrap().to_string()
        }
    };

    let next = next_with("hub.example:8443", "https").await;
    assert!(next.starts_with("https://hub.example:8443/api/v2/"), "{next}");
    let next = next_with("hub.example", "https, http").await;
    assert!(next.starts_with("https://hub.example/api/v2/"), "the first proxy's: {next}");
    let next = next_with("evil.example/phish?x=", "javascript").await;
    assert!(next.starts_with("http://localhost/api/v2/"), "{next}");
    let next = next_with("user@evil.example", "http").await;
    assert!(next.starts_with("http://localhost/api/v2/"), "{next}");
}
