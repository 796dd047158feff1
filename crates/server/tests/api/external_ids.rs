//! Upserts by external id, smart merge by matching fields, linking, and
//! external ids that stay apart across apps and organizations.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::AppCreds;
use crate::support::{assert_error, send_json, World};

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

#[tokio::test]
async fn the_callers_own_entry_under_another_realm_is_a_422_not_a_new_record() {
    let world = World::new().await;
    let entry = json!([{ "provider": world.app.provider, "realm": "some-other-account", "id": "555" }]);
    for _ in 0..2 {
        let (status, body) = world.post("people", json!({ "id": entry, "first_name": "Wrong realm" })).await;
        crate::support::assert_invalid_at(status, &body, "id/0/realm");
        let detail = body["errors"][0]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(&world.group), "names the realm to use: {detail}");
    }
    assert!(world.list_all("people").await.is_empty());

    // Without a realm, the entry is the caller's own in this group.
    let bare = json!([{ "provider": world.app.provider, "id": "555" }]);
    let (status, body) = world.post("people", json!({ "id": bare, "first_name": "Bare" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = world.post("people", json!({ "id": world.own("555"), "last_name": "Same" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(world.list_all("people").await.len(), 1);
}

#[tokio::test]
async fn an_external_id_over_255_characters_is_a_422_and_fails_alone_in_a_batch() {
    let world = World::new().await;
    let longest = "é".repeat(255);
    let (status, body) = world.post("people", json!({ "id": world.own(&longest), "first_name": "Longest" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let too_long = "x".repeat(256);
    let (status, body) = world.post("people", json!({ "id": world.own(&too_long), "first_name": "Too long" })).await;
    crate::support::assert_invalid_at(status, &body, "id/0/id");

    let records = [
        json!({ "id": world.own("ok-1"), "first_name": "One" }),
        json!({ "id": world.own(&too_long), "first_name": "Too long" }),
        json!({ "id": world.own("ok-2"), "first_name": "Two" }),
    ];
    let batch = crate::support::batch_of(&world.group, "people", records);
    let (status, answer) =
        crate::support::send_json(world.hub.api(&world.app, reqwest::Method::POST, "/batch").json(&batch)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let statuses: Vec<u64> =
        answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 422, 201], "{answer}");
    let names: Vec<Value> = world.list_all("people").await.iter().map(|p| p["first_name"].clone()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(!names.contains(&json!("Too long")));
}

#[tokio::test]
async fn a_realm_over_255_characters_is_refused_at_install() {
    let world = World::new().await;
    let app = world.hub.create_app("crm", &[("people", "rw")], None).await;
    let body = json!({ "app_id": app.api_id, "org_id": world.org, "realm": "r".repeat(256) });
    let (status, answer) =
        crate::support::send_json(world.hub.admin(reqwest::Method::POST, "/platform/v1/groups").json(&body)).await;
    crate::support::assert_invalid_at(status, &answer, "realm");
}

#[tokio::test]
async fn two_apps_sharing_a_realm_keep_their_external_ids_apart() {
    // One account ("shared") seen by two apps: an external id is the app's,
    // not the realm's, so the same "1001" names two different records.
    let world = World::new().await;
    let (a, b) = (
        world.hub.create_app("shop-a", &[("people", "rw")], None).await,
        world.hub.create_app("shop-b", &[("people", "rw")], None).await,
    );
    let group_a = world.hub.install_with(&a, &world.org, Some("shared")).await;
    let group_b = world.hub.install_with(&b, &world.org, Some("shared")).await;
    let own = |app: &AppCreds| json!([{ "provider": app.provider, "realm": "shared", "id": "1001" }]);

    let (status, from_a) = world.hub.post(&a, &group_a, "people", json!({ "id": own(&a), "first_name": "Ann" })).await;
    assert_eq!(status, StatusCode::CREATED, "{from_a}");
    let (status, from_b) = world.hub.post(&b, &group_b, "people", json!({ "id": own(&b), "first_name": "Bob" })).await;
    assert_eq!(status, StatusCode::CREATED, "B's 1001 is a new record, not A's: {from_b}");
    let (id_a, id_b) = (from_a["people"]["id"].as_str().unwrap(), from_b["people"]["id"].as_str().unwrap());
    assert_ne!(id_a, id_b);
    assert_eq!(world.list_all("people").await.len(), 2);

    // Each app reads its own record, in its own view, with only its own entry.
    let read = |app: &AppCreds, group: &str, id: &str| {
        let path = format!("/api/v2/{group}/people/{id}");
        send_json(world.hub.api(app, Method::GET, &path).header("connec-external-ids", "true"))
    };
    let (status, a_view) = read(&a, &group_a, id_a).await;
    assert_eq!(status, StatusCode::OK, "{a_view}");
    assert_eq!((a_view["people"]["first_name"].as_str(), a_view["people"]["version"].as_i64()), (Some("Ann"), Some(1)));
    assert_eq!(own_entries(&a_view["people"]), vec![own(&a)[0].clone()], "{a_view}");
    let (status, b_view) = read(&b, &group_b, id_b).await;
    assert_eq!(status, StatusCode::OK, "{b_view}");
    assert_eq!((b_view["people"]["first_name"].as_str(), b_view["people"]["version"].as_i64()), (Some("Bob"), Some(1)));
    assert_eq!(own_entries(&b_view["people"]), vec![own(&b)[0].clone()], "{b_view}");

    // And each app's id still upserts its own record.
    let (status, again) = world.hub.post(&b, &group_b, "people", json!({ "id": own(&b), "last_name": "Lee" })).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["people"]["id"], id_b);
    let (_, a_view) = read(&a, &group_a, id_a).await;
    assert_eq!(a_view["people"]["version"], 1, "A's record untouched: {a_view}");
    assert!(a_view["people"].get("last_name").is_none(), "{a_view}");
}

/// The entries of a record's id array other than the hub's own.
fn own_entries(record: &Value) -> Vec<Value> {
    let entries = record["id"].as_array().unwrap_or_else(|| panic!("an id array in {record}"));
    entries.iter().filter(|e| e["provider"] != "connec").cloned().collect()
}

#[tokio::test]
async fn linking_an_external_id_that_names_another_record_is_a_409_and_changes_nothing() {
    let world = World::new().await;
    let ann = world.create("people", json!({ "id": world.own("crm-7"), "first_name": "Ann" })).await;
    let bob = world.create("people", json!({ "first_name": "Bob" })).await;
    let bob_id = bob["id"].as_str().unwrap();
    let feed_before = world.feed().await;

    // crm-7 is Ann's: it cannot also name Bob, neither alone nor with changes.
    for body in [json!({ "id": world.own("crm-7") }), json!({ "id": world.own("crm-7"), "first_name": "Robert" })] {
        let (status, answer) = world.put(&format!("people/{bob_id}"), "people", body).await;
        assert_error(status, &answer, 409, "conflict");
    }

    let (_, bob_now) = world.get(&format!("people/{bob_id}")).await;
    assert_eq!(
        (bob_now["people"]["first_name"].as_str(), bob_now["people"]["version"].as_i64()),
        (Some("Bob"), Some(1))
    );
    assert_eq!(world.feed().await, feed_before, "no change logged");
    // crm-7 still names Ann.
    let (status, upserted) = world.post("people", json!({ "id": world.own("crm-7"), "last_name": "Lee" })).await;
    assert_eq!(status, StatusCode::OK, "{upserted}");
    assert_eq!(upserted["people"]["id"], ann["id"]);
}

#[tokio::test]
async fn numeric_external_ids_are_whole_numbers_of_at_most_255_digits() {
    let world = World::new().await;
    let own = |id: Value| json!([{ "provider": world.app.provider, "id": id }]);
    let (status, body) = world.post("people", json!({ "id": own(json!(1001)), "first_name": "Number" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = world.post("people", json!({ "id": world.own("1001"), "last_name": "Same" })).await;
    assert_eq!(status, StatusCode::OK, "the number 1001 and the text \"1001\" are one id: {body}");

    let digits: Value = serde_json::from_str(&"9".repeat(300)).unwrap();
    for (id, says) in [(digits, "at most 255"), (json!(1.5), "whole number"), (json!(1e300), "whole number")] {
        let (status, body) = world.post("people", json!({ "id": own(id.clone()), "first_name": "Bad" })).await;
        crate::support::assert_invalid_at(status, &body, "id/0/id");
        assert!(body.to_string().contains(says), "{id}: {body}");
    }
    assert_eq!(world.list_all("people").await.len(), 1);
}

#[tokio::test]
async fn two_ids_of_the_caller_in_one_array_are_a_422() {
    let world = World::new().await;
    let ids = json!([{ "provider": world.app.provider, "id": "a" }, { "provider": world.app.provider, "id": "b" }]);
    let (status, body) = world.post("people", json!({ "id": ids, "first_name": "Twice" })).await;
    crate::support::assert_invalid_at(status, &body, "id/1/id");
    assert!(world.list_all("people").await.is_empty());
}

#[tokio::test]
async fn a_reference_in_id_array_form_is_refused_at_the_entry_that_is_wrong() {
    let world = World::new().await;
    world.create("organizations", json!({ "id": world.own("acme"), "name": "Acme" })).await;
    let wrong_realm = json!([{ "provider": world.app.provider, "realm": "elsewhere", "id": "acme" }]);
    let (status, body) = world.post("people", json!({ "first_name": "Ann", "organization_id": wrong_realm })).await;
    crate::support::assert_invalid_at(status, &body, "organization_id/0/realm");

    let too_long = json!([{ "provider": world.app.provider, "id": "x".repeat(256) }]);
    let (status, body) = world.post("people", json!({ "first_name": "Ann", "organization_id": too_long })).await;
    crate::support::assert_invalid_at(status, &body, "organization_id/0/id");

    let unknown = json!([{ "provider": world.app.provider, "id": "nobody" }]);
    let (status, body) = world.post("people", json!({ "first_name": "Ann", "organization_id": unknown })).await;
    crate::support::assert_invalid_at(status, &body, "organization_id");
    assert!(world.list_all("people").await.is_empty());
}
