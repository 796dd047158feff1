//! Per-app rate limits: 429 with `Retry-After` and the contract's error body,
//! one app's limit never touching another's.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::TestApp;
use crate::support::{assert_error, send_raw, World, ALL_RW};

#[tokio::test]
async fn an_app_over_its_rate_gets_429s_another_app_does_not_and_it_may_come_back() {
    let world = World::on(TestApp::spawn_with(|c| c.rate_limit_per_app = 2).await).await;
    let other = world.hub.create_app("crm", ALL_RW, None).await;
    let other_group = world.hub.install(&other, &world.org).await;

    // A burst of two passes; a third within half a second does not.
    for i in 0..2 {
        let (status, _, body) = send_raw(world.req(Method::GET, "people")).await;
        assert_eq!(status, StatusCode::OK, "request {i}: {}", String::from_utf8_lossy(&body));
    }
    let (status, headers, body) = send_raw(world.req(Method::POST, "people").json(&json!({ "people": {} }))).await;
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_error(status, &body, 429, "too-many-requests");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");

    // The other app has a limit of its own.
    let (status, _) = world.hub.get(&other, &format!("/api/v2/{other_group}/people")).await;
    assert_eq!(status, StatusCode::OK);

    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (status, page) = world.get("people").await;
    assert_eq!(status, StatusCode::OK, "back after Retry-After: {page}");
    assert_eq!(page["people"], json!([]), "the refused POST wrote nothing");
}
