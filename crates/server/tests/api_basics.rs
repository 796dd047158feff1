//! A first end-to-end check of the harness: create, read back, webhook.

mod common;

use common::{eventually, receiver::Receiver, TestApp};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_created_person_reads_back_and_reaches_the_other_app() {
    let hub = TestApp::spawn().await;
    let org = hub.create_org("Music store").await;
    let books = Receiver::start().await;
    let store_app = hub.create_app("store", &[("people", "rw")], None).await;
    let books_app = hub.create_app("books", &[("people", "rs")], Some(&books.url)).await;
    let store_group = hub.install(&store_app, &org).await;
    hub.install(&books_app, &org).await;

    let (status, created) = hub
        .post(&store_app, &store_group, "people", json!({ "first_name": "Luís", "last_name": "Gonçalves 日本 🎵" }))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["people"]["id"].as_str().unwrap().to_string();

    let (status, read) = hub.get(&store_app, &format!("/api/v2/{store_group}/people/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["people"]["last_name"], "Gonçalves 日本 🎵");

    let records =
        eventually(Duration::from_secs(5), || async { Some(books.records()).filter(|r| !r.is_empty()) }).await;
    assert_eq!(records[0].0, "people");
    assert_eq!(records[0].1["last_name"], "Gonçalves 日本 🎵");
}
