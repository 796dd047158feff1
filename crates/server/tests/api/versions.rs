//! Versions, ETags, If-Match, no-op updates and Idempotency-Key.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, send_json, send_raw, World};

#[tokio::test]
async fn a_record_carries_its_version_and_an_etag() {
    let world = World::new().await;
    let person = world.create("people", json!({ "first_name": "Ann" })).await;
    assert_eq!(person["version"], 1);
    let (status, headers, _) =
        send_raw(world.req(Method::GET, &format!("people/{}", person["id"].as_str().unwrap()))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["etag"], "\"v1\"");
}

#[tokio::test]
async fn if_match_with_the_current_version_updates() {
    let world = World::new().await;
    let person = world.create("people", json!({ "first_name": "Ann" })).await;
    let path = format!("people/{}", person["id"].as_str().unwrap());
    let request =
        world.req(Method::PUT, &path).header("if-match", "\"v1\"").json(&json!({ "people": { "first_name": "Anne" } }));
    let (status, headers, raw) = send_raw(request).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(headers["etag"], "\"v2\"");
    let (_, read) = world.get(&path).await;
    assert_eq!(read["people"]["version"], 2);
    assert_eq!(read["people"]["first_name"], "Anne");
}

#[tokio::test]
async fn a_stale_if_match_is_rejected_and_changes_nothing() {
    let world = World::new().await;
    let person = world.create("people", json!({ "first_name": "Ann" })).await;
    let path = format!("people/{}", person["id"].as_str().unwrap());
    let (status, _) = world.put(&path, "people", json!({ "first_name": "Anne" })).await;
    assert_eq!(status, StatusCode::OK);
    let feed_before = world.feed().await;

    let stale = world
        .req(Method::PUT, &path)
        .header("if-match", "\"v1\"")
        .json(&json!({ "people": { "first_name": "Lost update" } }));
    let (status, body) = send_json(stale).await;
    assert_error(status, &body, 412, "stale-version");
    let (status, body) = send_json(world.req(Method::DELETE, &path).header("if-match", "\"v1\"")).await;
    assert_error(status, &body, 412, "stale-version");
    // No version is below 1: such an ETag was never given out.
    for etag in ["\"v-1\"", "\"v0\"", "\"v2\", \"v3\"", "banana"] {
        let (status, body) = send_json(world.req(Method::DELETE, &path).header("if-match", etag)).await;
        assert_error(status, &body, 400, "bad-if-match");
    }

    let (_, read) = world.get(&path).await;
    assert_eq!(read["people"]["first_name"], "Anne");
    assert_eq!(read["people"]["version"], 2);
    assert_eq!(world.feed().await.len(), feed_before.len());
}

#[tokio::test]
async fn an_update_that_changes_nothing_keeps_the_version_and_adds_no_change() {
    let world = World::new().await;
    let person = world.create("people", json!({ "first_name": "Ann", "email": { "address": "a@example.com" } })).await;
    let path = format!("people/{}", person["id"].as_str().unwrap());
    let feed_before = world.feed().await;
    assert_eq!(feed_before.len(), 1);

    let (status, body) =
        world.put(&path, "people", json!({ "first_name": "Ann", "email": { "address": "a@example.com" } })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["people"]["version"], 1);
    let (status, body) = world.post("people", json!({ "first_name": "Ann", "email": { "address": "a@example.com" }, "opts": { "matching_fields": ["email/address"] } })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["people"]["version"], 1);
    assert_eq!(world.feed().await, feed_before);
}

#[tokio::test]
async fn the_same_post_twice_with_one_idempotency_key_creates_one_record_and_replays() {
    let world = World::new().await;
    let body = json!({ "people": { "first_name": "Once" } });
    let first = send_raw(world.req(Method::POST, "people").header("idempotency-key", "k-1").json(&body)).await;
    let second = send_raw(world.req(Method::POST, "people").header("idempotency-key", "k-1").json(&body)).await;
    assert_eq!(first.0, StatusCode::CREATED);
    assert_eq!(second.0, StatusCode::CREATED);
    assert_eq!(first.2, second.2, "the replay is the first answer byte for byte");
    assert_eq!(second.1["idempotent-replayed"], "true");
    assert!(first.1.get("idempotent-replayed").is_none());
    assert_eq!(second.1["etag"], first.1["etag"], "the replay carries the first answer's ETag");
    assert_eq!(world.list_all("people").await.len(), 1);

    // The same key asking for the answer in the other shape is another request.
    let with_ids =
        world.req(Method::POST, "people").header("idempotency-key", "k-1").header("CONNEC-EXTERNAL-IDS", "true");
    let (status, body) = send_json(with_ids.json(&body)).await;
    assert_error(status, &body, 422, "idempotency-key-reused");
    assert_eq!(world.list_all("people").await.len(), 1);
}

#[tokio::test]
async fn an_idempotency_key_reused_with_another_body_is_422() {
    let world = World::new().await;
    let first = world
        .req(Method::POST, "people")
        .header("idempotency-key", "k-2")
        .json(&json!({ "people": { "first_name": "A" } }));
    assert_eq!(send_json(first).await.0, StatusCode::CREATED);
    let other = world
        .req(Method::POST, "people")
        .header("idempotency-key", "k-2")
        .json(&json!({ "people": { "first_name": "B" } }));
    let (status, body) = send_json(other).await;
    assert_error(status, &body, 422, "idempotency-key-reused");
    let people = world.list_all("people").await;
    assert_eq!(people.len(), 1);
    assert_eq!(people[0]["first_name"], "A");
}

#[tokio::test]
async fn a_batch_repeated_with_its_idempotency_key_writes_once() {
    let world = World::new().await;
    let body =
        crate::support::batch_of(&world.group, "people", [json!({ "first_name": "A" }), json!({ "first_name": "B" })]);
    let send =
        || send_raw(world.hub.api(&world.app, Method::POST, "/batch").header("idempotency-key", "b-1").json(&body));
    let first = send().await;
    let second = send().await;
    assert_eq!(first.0, StatusCode::OK);
    assert_eq!(second.0, StatusCode::OK);
    assert_eq!(first.2, second.2);
    assert_eq!(second.1["idempotent-replayed"], "true");
    assert_eq!(world.list_all("people").await.len(), 2);
}

#[tokio::test]
async fn a_stale_if_match_on_the_company_is_rejected() {
    let world = World::new().await;
    let put = |body: serde_json::Value, version: &str| {
        send_json(
            world.req(Method::PUT, "company").header("if-match", version.to_string()).json(&json!({ "company": body })),
        )
    };
    let (status, _) =
        send_json(world.req(Method::PUT, "company").json(&json!({ "company": { "name": "Acme" } }))).await;
    assert!(status.is_success());
    let (status, _) = put(json!({ "name": "Acme 2" }), "\"v1\"").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = put(json!({ "name": "Lost" }), "\"v1\"").await;
    assert_error(status, &body, 412, "stale-version");
    let (_, read) = world.get("company").await;
    assert_eq!(read["company"]["name"], "Acme 2");
}

#[tokio::test]
async fn an_idempotency_key_on_the_company_put_replays_and_refuses_another_body() {
    let world = World::new().await;
    let put = |name: &str| {
        send_raw(
            world
                .req(Method::PUT, "company")
                .header("idempotency-key", "c-1")
                .json(&json!({ "company": { "name": name } })),
        )
    };
    let first = put("Acme").await;
    let again = put("Acme").await;
    assert!(first.0.is_success());
    assert_eq!(again.0, first.0);
    assert_eq!(again.2, first.2);
    assert_eq!(again.1["idempotent-replayed"], "true");
    let (status, _, raw) = put("Other").await;
    let body: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_error(status, &body, 422, "idempotency-key-reused");
    let (_, read) = world.get("company").await;
    assert_eq!(read["company"]["name"], "Acme");
}

#[tokio::test]
async fn an_idempotency_key_is_per_app_and_never_replays_another_apps_answer() {
    let world = World::new().await;
    let other = world.hub.create_app("other", &[("people", "rw")], None).await;
    let other_group = world.hub.install(&other, &world.org).await;

    let mine = world.req(Method::POST, "people").header("idempotency-key", "k-shared");
    let (status, headers, raw) = send_raw(mine.json(&json!({ "people": { "first_name": "Mine" } }))).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&raw));
    assert!(headers.get("idempotent-replayed").is_none());

    // The same key from another app is a new request of that app: written, not
    // replayed, not refused as a reuse.
    let theirs = world.hub.api(&other, Method::POST, &format!("/api/v2/{other_group}/people"));
    let theirs = theirs.header("idempotency-key", "k-shared").json(&json!({ "people": { "first_name": "Theirs" } }));
    let (status, headers, raw) = send_raw(theirs).await;
    let body: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(headers.get("idempotent-replayed").is_none(), "{body}");
    assert_eq!(body["people"]["first_name"], "Theirs");
    let mut names: Vec<String> =
        world.list_all("people").await.iter().map(|p| p["first_name"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, ["Mine", "Theirs"]);
}

#[tokio::test]
async fn a_keyed_batch_whose_client_went_away_is_finished_and_replayed_to_the_retry() {
    use tokio::io::AsyncWriteExt;

    let world = World::new().await;
    let people = (0..1000).map(|i| json!({ "first_name": format!("Person {i}"), "last_name": "Gone-Away" }));
    let body = crate::support::batch_of(&world.group, "people", people).to_string();

    // Send the whole request, then hang up before the answer comes.
    let address = world.hub.base.trim_start_matches("http://").to_string();
    let auth = base64_basic(&world.app.api_id, &world.app.api_key);
    let request = format!(
        "POST /batch HTTP/1.1\r\nhost: {address}\r\nauthorization: Basic {auth}\r\ncontent-type: application/json\r\n\
         idempotency-key: gone-1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    // Hang up once the hub has marked the key, i.e. while the batch is written.
    let store = world.hub.store();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while store.saved_response(&world.app.api_id, "gone-1").await.unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "the hub never took the request");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    drop(stream);

    // The retry gets the first request's answer once it is made: 409 meanwhile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let (status, headers) = loop {
        let retry =
            world.hub.api(&world.app, Method::POST, "/batch").header("idempotency-key", "gone-1").body(body.clone());
        let (status, headers, _) = send_raw(retry.header("content-type", "application/json")).await;
        if status != StatusCode::CONFLICT || std::time::Instant::now() > deadline {
            break (status, headers);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(status, StatusCode::OK, "the retry is answered, not refused for minutes");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(world.list_all("people").await.len(), 1000, "written once");
}

fn base64_basic(id: &str, key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{id}:{key}"))
}
