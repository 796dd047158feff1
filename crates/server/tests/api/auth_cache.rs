//! The cache of callers' apps and groups: changes through the platform API
//! apply to the very next request; changes behind the hub's back (the CLI,
//! another process) apply within the cache's TTL.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{eventually, AppCreds};
use crate::support::{assert_error, send_json, World, ALL_RW};

/// Rotates the world app's key through the platform API; answers the new one.
async fn rotate_key(world: &World) -> String {
    let path = format!("/platform/v1/apps/{}/api-key", world.app.api_id);
    let (status, body) = send_json(world.hub.admin(Method::POST, &path)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["api_key"].as_str().expect("api_key").to_string()
}

/// The world app with another key.
fn with_key(world: &World, api_key: &str) -> AppCreds {
    AppCreds { api_key: api_key.to_string(), ..world.app.clone() }
}

/// Loads the app and group into the cache with a successful request.
async fn warm(world: &World) {
    let (status, body) = world.get("people").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn rotating_the_key_through_the_platform_api_refuses_the_old_key_at_once() {
    let world = World::new().await;
    warm(&world).await;

    let new_key = rotate_key(&world).await;
    let (status, body) = world.get("people").await;
    assert_error(status, &body, 401, "unauthorized");
    let (status, body) = world.hub.get(&with_key(&world, &new_key), &world.path("people")).await;
    assert_eq!(status, StatusCode::OK, "the new key works at once: {body}");
}

#[tokio::test]
async fn removing_write_through_the_platform_api_refuses_the_next_post() {
    let world = World::new().await;
    world.create("people", json!({ "first_name": "Before" })).await;

    let entities: Vec<Value> = ALL_RW
        .iter()
        .map(|(e, _)| json!({ "entity": e, "read": true, "write": *e != "people", "subscribe": false }))
        .collect();
    let path = format!("/platform/v1/apps/{}", world.app.api_id);
    let (status, body) = send_json(world.hub.admin(Method::PATCH, &path).json(&json!({ "entities": entities }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = world.post("people", json!({ "first_name": "After" })).await;
    assert_error(status, &body, 403, "forbidden");
}

#[tokio::test]
async fn a_key_rotated_behind_the_hubs_back_applies_within_the_ttl() {
    let world = World::new().await;
    warm(&world).await;

    // As the CLI would: straight in the store, so this hub's cache is not told.
    let new_key = world.hub.store().rotate_api_key(&world.app.api_id).await.expect("store").expect("app");
    let (status, body) = world.get("people").await;
    assert_eq!(status, StatusCode::OK, "the cached app still answers the old key: {body}");

    let new = with_key(&world, &new_key);
    let ttl = sharehub_server::cache::TTL;
    eventually(ttl + Duration::from_secs(3), || async {
        let old_refused = world.get("people").await.0 == StatusCode::UNAUTHORIZED;
        let new_works = world.hub.get(&new, &world.path("people")).await.0 == StatusCode::OK;
        (old_refused && new_works).then_some(())
    })
    .await;
}
