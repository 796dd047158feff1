//! Bad input: each answered with the contract's JSON error, and nothing stored changes.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestApp;
use crate::support::{assert_error, assert_invalid_at, send_json, World};

/// A world holding one person, Leonie, whose id is returned.
async fn world_with_leonie() -> (World, String) {
    let world = World::new().await;
    let person = world
        .create(
            "people",
            json!({ "first_name": "Leonie", "last_name": "Köhler", "email": { "address": "leonie@example.com" } }),
        )
        .await;
    let id = person["id"].as_str().unwrap().to_string();
    (world, id)
}

/// Leonie is still the only person, unchanged at version 1.
async fn assert_untouched(world: &World, id: &str) {
    let people = world.list_all("people").await;
    assert_eq!(people.len(), 1, "{people:?}");
    assert_eq!(people[0]["id"], id);
    assert_eq!(people[0]["version"], 1);
    assert_eq!(people[0]["first_name"], "Leonie");
    assert_eq!(people[0]["email"]["address"], "leonie@example.com");
}

#[tokio::test]
async fn malformed_json_is_a_400_that_says_where_it_broke() {
    let (world, id) = world_with_leonie().await;
    let (status, body) = send_json(world.req(Method::POST, "people").body(r#"{"people": {"first_name": "X",}}"#)).await;
    let error = assert_error(status, &body, 400, "malformed-json");
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.contains("line 1, column"), "{body}");
    assert_eq!(detail.matches("line 1").count(), 1, "the position is said once: {detail}");

    let (status, body) = send_json(world.req(Method::PUT, &format!("people/{id}")).body("{\"people\": ")).await;
    assert_error(status, &body, 400, "malformed-json");
    assert_untouched(&world, &id).await;
}

#[tokio::test]
async fn a_put_whose_body_names_another_record_is_a_409_and_changes_nothing() {
    let (world, id) = world_with_leonie().await;
    let other = world.create("people", json!({ "first_name": "Other" })).await;
    let other_id = other["id"].as_str().unwrap().to_string();
    let (status, body) =
        world.put(&format!("people/{id}"), "people", json!({ "id": other_id, "first_name": "X" })).await;
    assert_error(status, &body, 409, "conflict");
    let (status, body) = world.put(&format!("people/{id}"), "people", json!({ "id": id, "last_name": "Same" })).await;
    assert_eq!(status, StatusCode::OK, "its own id is fine: {body}");
    let (_, other_now) = send_json(world.req(Method::GET, &format!("people/{other_id}"))).await;
    assert_eq!(other_now["people"]["first_name"], "Other");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let (world, id) = world_with_leonie().await;
    let url = format!("{}{}", world.hub.base, world.path("people"));
    let request = world
        .hub
        .client
        .post(url)
        .basic_auth(&world.app.api_id, Some(&world.app.api_key))
        .header("content-type", "text/plain")
        .body(r#"{"people": {"first_name": "X"}}"#);
    let (status, body) = send_json(request).await;
    assert_error(status, &body, 415, "unsupported-media-type");
    assert_untouched(&world, &id).await;
}

#[tokio::test]
async fn json_is_utf_8_with_or_without_a_byte_order_mark() {
    let (world, id) = world_with_leonie().await;
    let url = format!("{}{}", world.hub.base, world.path("people"));
    let post = |content_type: &str, body: Vec<u8>| {
        let client = &world.hub.client;
        client
            .post(&url)
            .basic_auth(&world.app.api_id, Some(&world.app.api_key))
            .header("content-type", content_type)
            .body(body)
    };
    let latin1 = b"{\"people\": {\"first_name\": \"J\xfcrgen\"}}".to_vec();
    let (status, body) = send_json(post("application/json; charset=iso-8859-1", latin1)).await;
    assert_error(status, &body, 415, "unsupported-media-type");
    assert_untouched(&world, &id).await;

    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice("{\"people\": {\"first_name\": \"Jürgen\"}}".as_bytes());
    let (status, body) = send_json(post("application/json; charset=UTF-8", with_bom)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["people"]["first_name"], "Jürgen");
}

#[tokio::test]
async fn a_query_option_given_twice_is_a_400() {
    let (world, _) = world_with_leonie().await;
    let (status, body) = send_json(world.req(Method::GET, "people?$top=1&$top=2")).await;
    let error = assert_error(status, &body, 400, "bad-query");
    assert!(error["detail"].as_str().unwrap().contains("$top is given twice"), "{body}");
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_a_413() {
    let world = World::on(TestApp::spawn_with(|c| c.body_limit_bytes = 2048).await).await;
    let person = world.create("people", json!({ "first_name": "Leonie" })).await;
    let big = json!({ "people": { "first_name": "Big", "description": "x".repeat(4000) } });
    let (status, body) = send_json(world.req(Method::POST, "people").json(&big)).await;
    assert_error(status, &body, 413, "payload-too-large");
    let people = world.list_all("people").await;
    assert_eq!(people.len(), 1);
    assert_eq!(people[0]["id"], person["id"]);
}

#[tokio::test]
async fn a_quantity_that_is_not_a_number_is_a_422_at_its_path() {
    let world = World::new().await;
    let invoice = json!({ "lines": [{ "quantity": "abc", "unit_price": { "net_amount": "1.00" } }] });
    let (status, body) = world.post("invoices", invoice).await;
    assert_invalid_at(status, &body, "lines/0/quantity");
    assert!(world.list_all("invoices").await.is_empty());
}

#[tokio::test]
async fn an_email_sent_as_a_number_is_a_422_at_email_and_changes_nothing() {
    let (world, id) = world_with_leonie().await;
    let (status, body) = world.post("people", json!({ "first_name": "Bad", "email": 12 })).await;
    assert_invalid_at(status, &body, "email");
    let (status, body) =
        world.put(&format!("people/{id}"), "people", json!({ "first_name": "Changed", "email": 12 })).await;
    assert_invalid_at(status, &body, "email");
    assert_untouched(&world, &id).await;
}

#[tokio::test]
async fn money_that_is_not_a_decimal_is_a_422() {
    let world = World::new().await;
    let invoice = json!({ "lines": [{ "quantity": 1, "unit_price": { "net_amount": "1,50" } }] });
    let (status, body) = world.post("invoices", invoice).await;
    assert_invalid_at(status, &body, "lines/0/unit_price/net_amount");
    assert!(world.list_all("invoices").await.is_empty());
}

#[tokio::test]
async fn a_date_without_an_offset_is_a_422() {
    let world = World::new().await;
    let (status, body) = world.post("invoices", json!({ "transaction_date": "2016-10-04T00:36:23" })).await;
    assert_invalid_at(status, &body, "transaction_date");
    assert!(world.list_all("invoices").await.is_empty());
}

#[tokio::test]
async fn an_unknown_entity_is_a_400_unknown_resource() {
    let world = World::new().await;
    let (status, body) = world.post("spaceships", json!({ "name": "X" })).await;
    assert_error(status, &body, 400, "unknown-resource");
    let (status, body) = world.get("spaceships").await;
    assert_error(status, &body, 400, "unknown-resource");
}

#[tokio::test]
async fn an_unknown_record_is_a_404() {
    let world = World::new().await;
    let missing = "6f1c2b0e-0000-4000-8000-000000000000";
    let (status, body) = world.get(&format!("people/{missing}")).await;
    assert_error(status, &body, 404, "resource-not-found");
    let (status, body) = world.put(&format!("people/{missing}"), "people", json!({ "first_name": "X" })).await;
    assert_error(status, &body, 404, "resource-not-found");
    let (status, body) = world.get("people/not-a-uuid").await;
    assert_error(status, &body, 404, "resource-not-found");
    assert!(world.list_all("people").await.is_empty());
}

#[tokio::test]
async fn bad_basic_auth_is_a_401() {
    let (world, id) = world_with_leonie().await;
    let url = format!("{}{}", world.hub.base, world.path("people"));
    let wrong_key = world
        .hub
        .client
        .post(&url)
        .basic_auth(&world.app.api_id, Some("wrong"))
        .json(&json!({ "people": { "first_name": "X" } }));
    let (status, body) = send_json(wrong_key).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = send_json(world.hub.client.get(&url)).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = send_json(world.hub.client.get(&url).basic_auth("app-nobody", Some("x"))).await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = send_json(world.hub.client.get(&url).basic_auth("app-\u{0}x", Some("key"))).await;
    assert_error(status, &body, 401, "unauthorized");
    assert_untouched(&world, &id).await;
}

#[tokio::test]
async fn malformed_filter_orderby_and_top_are_400s_that_say_where() {
    let world = World::new().await;
    let cases = [
        ("$filter=last_name%20eq%20'open", "bad-filter"),
        ("$filter=last_name%20eq", "bad-filter"),
        ("$filter=(first_name%20eq%20'a'", "bad-filter"),
        // Parsed, but refused when the query is built: a timestamp needs an offset.
        ("$filter=created_at%20gt%20'2024-01-01T00:00:00'", "bad-filter"),
        ("$orderby=last_name%20SIDEWAYS", "bad-orderby"),
        ("$top=abc", "bad-query"),
        ("$top=-1", "bad-query"),
    ];
    for (path, expected) in
        [("changes?limit=0", "limit"), ("changes?after=-1", "after"), ("changes?limit=1001", "limit")]
    {
        let (status, body) = world.get(path).await;
        let error = assert_error(status, &body, 400, "bad-query");
        assert!(error["detail"].as_str().unwrap().starts_with(expected), "{path}: {body}");
    }
    // Made for the reader, the same on every record: it would match all or none.
    let (status, body) = world.get("people?$filter=first_name%20eq%20'a'%20or%20group_id%20eq%20'x'").await;
    let error = assert_error(status, &body, 400, "bad-filter");
    assert!(error["detail"].as_str().unwrap().contains("group_id"), "names the field: {body}");
    for (query, code) in cases {
        let (status, body) = world.get(&format!("people?{query}")).await;
        let error = assert_error(status, &body, 400, code);
        let detail = error["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("$filter") || detail.starts_with("$orderby") || detail.starts_with("$top"),
            "{query}: {detail}"
        );
        if code == "bad-filter" {
            assert!(detail.chars().any(|c| c.is_ascii_digit()), "{query}: no position in {detail}");
        }
    }
}

#[tokio::test]
async fn a_post_that_names_a_plain_hub_id_is_a_409() {
    let (world, id) = world_with_leonie().await;
    let (status, body) = world.post("people", json!({ "id": id, "first_name": "Overwrite" })).await;
    assert_error(status, &body, 409, "conflict");
    let hub_entry: Value = json!([{ "provider": "connec", "realm": world.org, "id": id }]);
    let (status, body) = world.post("people", json!({ "id": hub_entry, "first_name": "Overwrite" })).await;
    assert_error(status, &body, 409, "conflict");
    assert_untouched(&world, &id).await;
}

#[tokio::test]
async fn a_batch_over_the_configured_limit_is_a_413_and_writes_nothing() {
    let world = World::on(TestApp::spawn_with(|c| c.body_limit_bytes = 2048).await).await;
    let records =
        (0..40).map(|i| json!({ "first_name": format!("Person {i}"), "last_name": "Somebody-With-A-Long-Name" }));
    let body = crate::support::batch_of(&world.group, "people", records);
    let (status, answer) = send_json(world.hub.api(&world.app, Method::POST, "/batch").json(&body)).await;
    assert_error(status, &answer, 413, "payload-too-large");
    assert!(world.list_all("people").await.is_empty());
}

#[tokio::test]
async fn a_batch_that_is_not_json_or_not_a_batch_is_a_400_that_says_which() {
    let world = World::new().await;
    let batch = |body: &'static str| world.hub.api(&world.app, Method::POST, "/batch").body(body);

    let (status, body) = send_json(batch(r#"{"ops": [{"method": "post",}]}"#)).await;
    let error = assert_error(status, &body, 400, "malformed-json");
    assert!(error["detail"].as_str().unwrap().contains("line 1, column"), "{body}");
    // A wrong type met before the broken syntax: still the syntax is what is said.
    let (status, body) = send_json(batch(r#"{"ops": 5, "#)).await;
    assert_error(status, &body, 400, "malformed-json");

    let (status, body) = send_json(batch(r#"{"ops": 5}"#)).await;
    let error = assert_error(status, &body, 400, "bad-request");
    assert!(error["detail"].as_str().unwrap().contains(r#"Expected {"ops": [{"method", "url", "params"}]}"#), "{body}");
    assert!(world.list_all("people").await.is_empty());

    // Not UTF-8: that is the syntax too.
    let not_utf8 = b"{\"ops\": [\"\xff\xfe\"]}".to_vec();
    let (status, body) = send_json(world.hub.api(&world.app, Method::POST, "/batch").body(not_utf8)).await;
    assert_error(status, &body, 400, "malformed-json");

    // Params past the parser's nesting limit, or holding a lone surrogate, fail
    // their op alone; the op beside them is written.
    let person =
        json!({ "method": "post", "url": world.path("people"), "params": { "people": { "first_name": "Kept" } } });
    let nested = format!("{}{}", "[".repeat(300), "]".repeat(300));
    for bad in [nested.as_str(), r#"{"people": {"first_name": "\ud800"}}"#] {
        let text = format!(
            r#"{{"ops": [{{"method": "post", "url": "{}", "params": {bad}}}, {person}]}}"#,
            world.path("people")
        );
        let (status, body) = send_json(world.hub.api(&world.app, Method::POST, "/batch").body(text)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["results"][0]["status"], 400, "{body}");
        assert_eq!(body["results"][0]["body"]["errors"][0]["code"], "malformed-json", "{body}");
        assert_eq!(body["results"][1]["status"], 201, "{body}");
    }
    let people = world.list_all("people").await;
    assert_eq!(people.len(), 2);
    assert!(people.iter().all(|p| p["first_name"] == "Kept"), "{people:?}");

    // Well-formed, behind a byte order mark: read as JSON.
    let text = format!(
        "\u{feff}{}",
        json!({ "ops": [{ "method": "post", "url": world.path("people"), "params": { "people": { "first_name": "Zoë" } } }] })
    );
    let (status, body) = send_json(world.hub.api(&world.app, Method::POST, "/batch").body(text)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"][0]["status"], 201, "{body}");
    assert_eq!(body["results"][0]["body"]["people"]["first_name"], "Zoë");
    assert_eq!(world.list_all("people").await.len(), 3);
}

#[tokio::test]
async fn a_body_without_a_content_type_is_a_415() {
    let world = World::new().await;
    let url = format!("{}{}", world.hub.base, world.path("people"));
    let request = world
        .hub
        .client
        .post(url)
        .basic_auth(&world.app.api_id, Some(&world.app.api_key))
        .body(r#"{"people": {"first_name": "X"}}"#);
    let (status, body) = send_json(request).await;
    assert_error(status, &body, 415, "unsupported-media-type");
    assert!(world.list_all("people").await.is_empty());
}

#[tokio::test]
async fn a_method_or_path_the_api_does_not_have_answers_the_contract_json_error() {
    let (world, id) = world_with_leonie().await;
    let patch = world.req(Method::PATCH, &format!("people/{id}")).json(&json!({ "people": { "first_name": "X" } }));
    let response = patch.send().await.unwrap();
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (status, body) = (response.status(), response.json::<serde_json::Value>().await.unwrap());
    assert_error(status, &body, 405, "method-not-allowed");
    for method in ["GET", "PUT", "DELETE"] {
        assert!(allow.contains(method), "Allow names {method}: {allow:?}");
    }
    let (status, body) = send_json(world.req(Method::GET, "people/a/b/c")).await;
    assert_error(status, &body, 404, "resource-not-found");
    assert_untouched(&world, &id).await;
}

#[tokio::test]
async fn text_holding_the_nul_character_is_a_422_and_changes_nothing() {
    let (world, id) = world_with_leonie().await;
    // Matched on: refused before any query runs (PostgreSQL's jsonb has no U+0000).
    let matching = json!({ "first_name": "Leonie\u{0}", "opts": { "matching_fields": ["first_name"] } });
    let (status, body) = world.post("people", matching).await;
    assert_invalid_at(status, &body, "first_name");

    // As the caller's own id: no id at all.
    let own_id = json!([{ "provider": world.app.provider, "realm": world.group, "id": "10\u{0}01" }]);
    let (status, body) = world.post("people", json!({ "id": own_id, "first_name": "X" })).await;
    assert_invalid_at(status, &body, "id/0/id");
    assert!(body.to_string().contains("U+0000"), "says why: {body}");
    let (status, body) = world.post("people", json!({ "first_name": "X", "organization_id": own_id })).await;
    assert!(status.is_client_error(), "{status} {body}");

    // Outside record bodies: in a filter, and in a platform write.
    let (status, body) = send_json(world.req(Method::GET, "people?$filter=first_name eq 'a%00b'")).await;
    assert!(status.is_client_error(), "{status} {body}");
    let org = world.hub.admin(Method::POST, "/platform/v1/orgs").json(&json!({ "name": "a\u{0}b" }));
    let (status, body) = send_json(org).await;
    assert!(status.is_client_error(), "{status} {body}");
    assert_untouched(&world, &id).await;
}
