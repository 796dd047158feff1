//! Cases found by trying to break the hub from the outside: stale totals,
//! decimal overflow, date filters with offsets, timestamps read back, errors
//! made outside the handlers, a client that stalls mid-request.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{TestApp, ADMIN_TOKEN};
use crate::support::{assert_error, assert_invalid_at, send_json, World};

fn id_of(record: &Value) -> String {
    record["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn new_lines_in_a_put_recompute_the_amount() {
    let world = World::new().await;
    let line = |q: u32, price: &str| json!({ "quantity": q, "unit_price": { "total_amount": price } });
    let invoice = world.create("invoices", json!({ "type": "CUSTOMER", "lines": [line(2, "1.50")] })).await;
    assert_eq!(invoice["amount"]["total_amount"].to_string(), "3.00");

    let path = format!("invoices/{}", id_of(&invoice));
    let (status, body) = world.put(&path, "invoices", json!({ "lines": [line(3, "2.00")] })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["invoices"]["amount"]["total_amount"].to_string(), "6.00", "{body}");

    // An amount sent with the lines is the client's to keep.
    let (_, body) =
        world.put(&path, "invoices", json!({ "lines": [line(1, "2.00")], "amount": { "total_amount": 9 } })).await;
    assert_eq!(body["invoices"]["amount"]["total_amount"].to_string(), "9", "{body}");
}

#[tokio::test]
async fn a_read_changed_and_written_back_invoice_gets_totals_of_its_new_lines() {
    let world = World::new().await;
    let lines = json!([
        { "quantity": 1, "unit_price": { "net_amount": "10.00" } },
        { "quantity": 2, "unit_price": { "net_amount": "0.50" }, "total_price": { "net_amount": "0.90" } }
    ]);
    let invoice = world.create("invoices", json!({ "type": "CUSTOMER", "lines": lines })).await;
    assert_eq!(invoice["amount"]["net_amount"].to_string(), "10.90");

    // What a client does: read, change the first line's quantity, send it all back.
    let path = format!("invoices/{}", id_of(&invoice));
    let (_, read) = world.get(&path).await;
    let mut sent = read["invoices"].clone();
    sent["lines"][0]["quantity"] = json!(3);
    let sent = json!({ "lines": sent["lines"], "amount": sent["amount"] });
    let (status, body) = world.put(&path, "invoices", sent).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let written = &body["invoices"];
    assert_eq!(written["lines"][0]["total_price"]["net_amount"].to_string(), "30.00", "{written}");
    // The second line's total was the client's own (a discount): it stays.
    assert_eq!(written["lines"][1]["total_price"]["net_amount"].to_string(), "0.90", "{written}");
    assert_eq!(written["amount"]["net_amount"].to_string(), "30.90", "{written}");
}

#[tokio::test]
async fn an_invoice_written_back_with_a_line_removed_gets_totals_of_the_lines_left() {
    let world = World::new().await;
    let line = |d: &str, price: &str| json!({ "description": d, "quantity": 1, "unit_price": { "net_amount": price } });
    let invoice =
        world.create("invoices", json!({ "type": "CUSTOMER", "lines": [line("A", "10.00"), line("B", "5.00")] })).await;
    let path = format!("invoices/{}", id_of(&invoice));

    // Read, drop line A, triple line B, send back what was read.
    let (_, read) = world.get(&path).await;
    let mut b = read["invoices"]["lines"][1].clone();
    b["quantity"] = json!(3);
    let sent = json!({ "lines": [b], "amount": read["invoices"]["amount"] });
    let (status, body) = world.put(&path, "invoices", sent).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["invoices"]["lines"][0]["total_price"]["net_amount"].to_string(), "15.00", "{body}");
    assert_eq!(body["invoices"]["amount"]["net_amount"].to_string(), "15.00", "{body}");
}

#[tokio::test]
async fn a_total_too_large_for_a_decimal_is_a_422_and_stores_nothing() {
    let world = World::new().await;
    let max = "79228162514264337593543950335";
    let line = json!({ "quantity": 2, "unit_price": { "net_amount": max } });
    let (status, body) = world.post("invoices", json!({ "type": "CUSTOMER", "lines": [line] })).await;
    assert_invalid_at(status, &body, "lines/0/total_price/net_amount");

    let line = json!({ "quantity": 1, "unit_price": { "net_amount": max } });
    let (status, body) = world.post("invoices", json!({ "type": "CUSTOMER", "lines": [line.clone(), line] })).await;
    assert_invalid_at(status, &body, "amount/net_amount");
    assert!(world.list_all("invoices").await.is_empty());
}

#[tokio::test]
async fn a_date_filter_written_with_an_offset_compares_instants() {
    let world = World::new().await;
    let invoice =
        json!({ "type": "CUSTOMER", "transaction_number": "TZ1", "transaction_date": "2024-01-01T01:00:00+02:00" });
    world.create("invoices", invoice).await;

    for (filter, expected) in [
        ("transaction_date eq '2024-01-01T01:00:00+02:00'", 1),
        ("transaction_date gt '2024-01-01T00:30:00+02:00'", 1),
        ("transaction_date lt '2024-01-01T00:00:00+01:00'", 0),
        ("transaction_date eq '2023-12-31T23:00:00Z'", 1),
    ] {
        let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("$filter", filter).finish();
        let (status, body) = world.get(&format!("invoices?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["pagination"]["total"], expected, "{filter}: {body}");
    }
}

#[tokio::test]
async fn a_records_updated_at_read_back_filters_equal_to_itself() {
    let world = World::new().await;
    let person = world.create("people", json!({ "first_name": "Ada" })).await;
    let updated_at = person["updated_at"].as_str().unwrap();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("$filter", &format!("updated_at eq '{updated_at}'"))
        .finish();
    let (_, body) = world.get(&format!("people?{query}")).await;
    assert_eq!(body["pagination"]["total"], 1, "{body}");

    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("$filter", &format!("updated_at gt '{updated_at}'"))
        .finish();
    let (_, body) = world.get(&format!("people?{query}")).await;
    assert_eq!(body["pagination"]["total"], 0, "{body}");
}

#[tokio::test]
async fn an_entity_listed_twice_for_an_app_is_a_422() {
    let hub = TestApp::spawn().await;
    let app = json!({ "name": "x", "provider": "dup", "entities": [
        { "entity": "people", "read": true }, { "entity": "people", "write": true } ] });
    let (status, body) = send_json(hub.admin(Method::POST, "/platform/v1/apps").json(&app)).await;
    assert_invalid_at(status, &body, "entities/1/entity");
}

#[tokio::test]
async fn a_query_string_the_server_cannot_read_answers_the_json_error() {
    let hub = TestApp::spawn().await;
    let request = hub.admin(Method::GET, "/platform/v1/apps/app-none/deliveries?limit=-1");
    let (status, body) = send_json(request).await;
    assert_error(status, &body, 400, "bad-request");
}

#[tokio::test]
async fn a_client_that_stalls_mid_body_gets_a_json_408() {
    let hub = TestApp::spawn_with(|c| c.request_timeout_secs = 1).await;
    let addr = hub.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /platform/v1/orgs HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": \"x"
    );
    stream.write_all(head.as_bytes()).await.unwrap();

    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the hub kept a stalled request open");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"request-timeout\""), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let hub = TestApp::spawn_with(|c| c.request_timeout_secs = 1).await;
    let addr = hub.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // No blank line: the headers never end.
    stream.write_all(format!("GET /health/live HTTP/1.1\r\nHost: {addr}\r\n").as_bytes()).await.unwrap();

    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the hub kept a connection with unfinished headers open");
    assert!(started.elapsed() < Duration::from_secs(5), "closed after {:?}", started.elapsed());

    // The hub still serves everyone else.
    let status = hub.client.get(format!("{}/health/live", hub.base)).send().await.unwrap().status();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn installing_again_answers_the_same_group_and_refuses_another_realm() {
    let hub = TestApp::spawn().await;
    let org = hub.create_org("Acme").await;
    let app = hub.create_app("books", &[("people", "rw")], None).await;
    let install = |realm: Option<&str>| {
        hub.admin(Method::POST, "/platform/v1/groups")
            .json(&json!({ "app_id": app.api_id, "org_id": org, "realm": realm }))
    };

    let (status, first) = send_json(install(Some("acme-books"))).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["group"]["realm"], "acme-books");
    for realm in [Some("acme-books"), None] {
        let (status, again) = send_json(install(realm)).await;
        assert_eq!(status, StatusCode::OK, "the existing group: {again}");
        assert_eq!(again["group"], first["group"], "the same group for {realm:?}");
    }

    let (status, body) = send_json(install(Some("another"))).await;
    assert_error(status, &body, 409, "conflict");
    assert!(body.to_string().contains("acme-books"), "names the realm it has: {body}");
    let path = format!("/platform/v1/apps/{}/groups", app.api_id);
    let (_, groups) = send_json(hub.admin(Method::GET, &path)).await;
    assert_eq!(groups["groups"].as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups["groups"][0]["realm"], "acme-books");
}

#[tokio::test]
async fn the_platform_api_names_its_credentials_and_the_fields_it_refuses() {
    let hub = TestApp::spawn().await;
    let response = hub.client.get(format!("{}/platform/v1/apps", hub.base)).bearer_auth("nope").send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"sharehub-admin\"");
    let (status, body) = (response.status(), response.json::<Value>().await.unwrap());
    assert_error(status, &body, 401, "unauthorized");
    assert!(body.to_string().contains("admin token"), "says which credentials: {body}");
    let lowercase = hub
        .client
        .get(format!("{}/platform/v1/apps", hub.base))
        .header("authorization", format!("bearer {ADMIN_TOKEN}"));
    assert_eq!(lowercase.send().await.unwrap().status(), StatusCode::OK, "the scheme's case does not matter");

    let (status, body) = send_json(hub.admin(Method::POST, "/platform/v1/orgs").json(&json!({ "name": 5 }))).await;
    assert_invalid_at(status, &body, "name");
    let (status, body) = send_json(hub.admin(Method::POST, "/platform/v1/apps").json(&json!({}))).await;
    assert_invalid_at(status, &body, "name");
    let app = json!({ "name": "x", "provider": "typed", "entities": [{ "entity": "people", "read": "yes" }] });
    let (status, body) = send_json(hub.admin(Method::POST, "/platform/v1/apps").json(&app)).await;
    assert_invalid_at(status, &body, "entities/0/read");
    let app = json!({ "name": "x", "provider": "deaf", "entities": [{ "entity": "people", "read": false, "write": true, "subscribe": true }] });
    let (status, body) = send_json(hub.admin(Method::POST, "/platform/v1/apps").json(&app)).await;
    assert_invalid_at(status, &body, "entities/0/subscribe");

    let app = hub.create_app("taken", &[("people", "rw")], None).await;
    let path = format!("/platform/v1/apps/{}", app.api_id);
    let (status, body) = send_json(hub.admin(Method::PATCH, &path).json(&json!({ "entities": "all" }))).await;
    assert_invalid_at(status, &body, "entities");
    let (status, body) = send_json(hub.admin(Method::PATCH, &path).json(&json!({ "provider": "other" }))).await;
    assert_invalid_at(status, &body, "provider");
    let (status, body) = send_json(hub.admin(Method::PATCH, &path).json(&json!({ "name": " " }))).await;
    assert_invalid_at(status, &body, "name");
    let (_, unchanged) = send_json(hub.admin(Method::GET, &path)).await;
    assert_eq!(unchanged["app"]["name"], "taken", "{unchanged}");
    let again = json!({ "name": "Again", "provider": "taken", "entities": [] });
    let (status, body) = send_json(hub.admin(Method::POST, "/platform/v1/apps").json(&again)).await;
    assert_error(status, &body, 409, "conflict");
    assert!(body.to_string().contains("already taken"), "{body}");

    // An app that does not exist has no logs to show: 404, not empty lists.
    for rest in ["deliveries", "dead-letters", "groups"] {
        let (status, body) = send_json(hub.admin(Method::GET, &format!("/platform/v1/apps/app-nope/{rest}"))).await;
        assert_error(status, &body, 404, "resource-not-found");
        let (status, body) = send_json(hub.admin(Method::GET, &format!("{path}/{rest}"))).await;
        assert_eq!(status, StatusCode::OK, "{rest} of a real app: {body}");
    }
}

#[tokio::test]
async fn two_administrators_patching_one_app_at_once_both_keep_their_change() {
    let hub = TestApp::spawn().await;
    let app = hub.create_app("shared", &[("people", "r")], None).await;
    let path = format!("/platform/v1/apps/{}", app.api_id);
    let rounds = 40;

    // One renames the app, round after round; the other changes its rights.
    let renames = async {
        for i in 1..=rounds {
            let (status, body) =
                send_json(hub.admin(Method::PATCH, &path).json(&json!({ "name": format!("name {i}") }))).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    let regrants = async {
        for i in 1..=rounds {
            let entities = json!([{ "entity": "people", "read": true, "write": i % 2 == 0, "subscribe": false },
                                  { "entity": "items", "read": true, "write": false, "subscribe": i == rounds }]);
            let (status, body) =
                send_json(hub.admin(Method::PATCH, &path).json(&json!({ "entities": entities }))).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    tokio::join!(renames, regrants);

    let (_, body) = send_json(hub.admin(Method::GET, &path)).await;
    assert_eq!(body["app"]["name"], format!("name {rounds}"), "{body}");
    let items = body["app"]["entities"].as_array().unwrap().iter().find(|e| e["entity"] == "items").cloned();
    assert_eq!(items.unwrap()["subscribe"], true, "the last grant holds: {body}");
}
