//! Upserts by external id, smart merge by matching fields, linking, and
//! external ids that stay apart across apps and organizations.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::World;

#[tokio::test]
async fn a_post_with_the_callers_own_id_upserts_one_record() {
    let world = World::new().await;
    let (status, first) = world.post("people", json!({ "id": world.own("1001"), "first_name": "Ann" })).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, second) = world.post("people", json!({ "id": world.own("1001"), "last_name": "Lee" })).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["people"]["id"], first["people"]["id"]);
    assert_eq!(second["people"]["first_name"], "Ann");
    assert_eq!(second["people"]["last_name"], "Lee");
    assert_eq!(world.list_all("people").await.len(), 1);
}

#[tokio::test]
async fn matching_fields_merge_into_the_existing_record() {
    let world = World::new().await;
    let ann = world.create("people", json!({ "first_name": "Ann", "email": { "address": "ann@example.com" } })).await;
    let again = json!({ "last_name": "Lee", "email": { "address": "ann@example.com" }, "opts": { "matching_fields": ["email/address"] } });
    let (status, merged) = world.post("people", again).await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["people"]["id"], ann["id"]);
    assert_eq!(merged["people"]["first_name"], "Ann");
    assert_eq!(merged["people"]["last_name"], "Lee");
    assert!(merged["people"].get("opts").is_none(), "opts is not stored: {merged}");

    let other = json!({ "first_name": "Bob", "email": { "address": "bob@example.com" }, "opts": { "matching_fields": ["email/address"] } });
    let (status, _) = world.post("people", other).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(world.list_all("people").await.len(), 2);
}

#[tokio::test]
async fn matching_fields_beside_the_record_work_too() {
    let world = World::new().await;
    let ann = world.create("people", json!({ "first_name": "Ann", "email": { "address": "ann@example.com" } })).await;
    let body = json!({ "people": { "last_name": "Lee", "email": { "address": "ann@example.com" } }, "opts": { "matching_fields": ["email/address"] } });
    let (status, merged) = crate::support::send_json(world.req(reqwest::Method::POST, "people").json(&body)).await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["people"]["id"], ann["id"]);
}

#[tokio::test]
async fn a_put_with_only_an_id_entry_links_the_callers_id_to_a_record() {
    let world = World::new().await;
    let ann = world.create("people", json!({ "first_name": "Ann" })).await;
    let id = ann["id"].as_str().unwrap();
    let (status, linked) = world.put(&format!("people/{id}"), "people", json!({ "id": world.own("crm-55") })).await;
    assert_eq!(status, StatusCode::OK, "{linked}");

    let (status, upserted) = world.post("people", json!({ "id": world.own("crm-55"), "last_name": "Lee" })).await;
    assert_eq!(status, StatusCode::OK, "{upserted}");
    assert_eq!(upserted["people"]["id"], id);
    assert_eq!(world.list_all("people").await.len(), 1);
}

#[tokio::test]
async fn the_same_external_id_in_two_apps_and_two_organizations_stays_separate() {
    let world = World::new().await;
    let books = world.hub.create_app("books", &[("people", "rw")], None).await;
    let books_group = world.hub.install(&books, &world.org).await;
    let org2 = world.hub.create_org("Second shop").await;
    let group2 = world.hub.install(&world.app, &org2).await;
    let own = |provider: &str, group: &str| json!([{ "provider": provider, "realm": group, "id": "1001" }]);

    let a = world.create("people", json!({ "id": world.own("1001"), "first_name": "From store" })).await;
    let (status, b) = world
        .hub
        .post(&books, &books_group, "people", json!({ "id": own("books", &books_group), "first_name": "From books" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{b}");
    let (status, c) = world
        .hub
        .post(&world.app, &group2, "people", json!({ "id": own("store", &group2), "first_name": "Other org" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");

    let ids: Vec<&Value> = vec![&a["id"], &b["people"]["id"], &c["people"]["id"]];
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[2]);
    assert_ne!(ids[1], ids[2]);
    let mine = world.list_all("people").await;
    assert_eq!(mine.len(), 2);
    let (_, a_again) = world.get(&format!("people/{}", a["id"].as_str().unwrap())).await;
    assert_eq!(a_again["people"]["first_name"], "From store");
}
