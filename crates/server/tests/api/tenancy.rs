//! Permissions and tenancy: what an app may see and do, and in which organization.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, send_json, World};

#[tokio::test]
async fn writing_without_the_write_flag_is_403_and_stores_nothing() {
    let world = World::new().await;
    let reader = world.hub.create_app("reader", &[("people", "r")], None).await;
    let group = world.hub.install(&reader, &world.org).await;
    let (status, body) = world.hub.post(&reader, &group, "people", json!({ "first_name": "Nope" })).await;
    assert_error(status, &body, 403, "forbidden");
    let person = world.create("people", json!({ "first_name": "Ann" })).await;
    let path = format!("/api/v2/{group}/people/{}", person["id"].as_str().unwrap());
    let (status, body) =
        send_json(world.hub.api(&reader, Method::PUT, &path).json(&json!({ "people": { "first_name": "Changed" } })))
            .await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = send_json(world.hub.api(&reader, Method::DELETE, &path)).await;
    assert_error(status, &body, 403, "forbidden");
    let people = world.list_all("people").await;
    assert_eq!(people.len(), 1);
    assert_eq!(people[0]["first_name"], "Ann");
}

#[tokio::test]
async fn an_entity_the_app_may_not_read_is_not_linked_and_get_is_403() {
    let world = World::new().await;
    let narrow = world.hub.create_app("narrow", &[("people", "r")], None).await;
    let group = world.hub.install(&narrow, &world.org).await;
    let invoice = world.create("invoices", json!({ "title": "Secret" })).await;

    let (status, root) = world.hub.get(&narrow, &format!("/api/v2/{group}")).await;
    assert_eq!(status, StatusCode::OK, "{root}");
    let links: Vec<&String> = root["_links"].as_object().unwrap().keys().collect();
    assert_eq!(links, ["people"]);
    let (status, body) = world.hub.get(&narrow, &format!("/api/v2/{group}/invoices")).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) =
        world.hub.get(&narrow, &format!("/api/v2/{group}/invoices/{}", invoice["id"].as_str().unwrap())).await;
    assert_error(status, &body, 403, "forbidden");
    assert!(!body.to_string().contains("Secret"));
}

#[tokio::test]
async fn another_organizations_record_through_your_own_group_is_404() {
    let world = World::new().await;
    let org2 = world.hub.create_org("Other shop").await;
    let group2 = world.hub.install(&world.app, &org2).await;
    let (status, theirs) = world.hub.post(&world.app, &group2, "people", json!({ "first_name": "Theirs" })).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = theirs["people"]["id"].as_str().unwrap();

    let (status, body) = world.get(&format!("people/{id}")).await;
    assert_error(status, &body, 404, "resource-not-found");
    assert!(!body.to_string().contains("Theirs"));
    let (status, body) = world.put(&format!("people/{id}"), "people", json!({ "first_name": "Hijacked" })).await;
    assert_error(status, &body, 404, "resource-not-found");
    let (status, body) = send_json(world.req(Method::DELETE, &format!("people/{id}"))).await;
    assert_error(status, &body, 404, "resource-not-found");
    assert!(world.list_all("people").await.is_empty());
    let (_, still) = world.hub.get(&world.app, &format!("/api/v2/{group2}/people/{id}")).await;
    assert_eq!(still["people"]["first_name"], "Theirs");
}

#[tokio::test]
async fn another_apps_group_is_401_with_the_same_body_as_a_missing_group() {
    let world = World::new().await;
    let other = world.hub.create_app("other", &[("people", "rw")], None).await;
    let other_group = world.hub.install(&other, &world.org).await;
    world.create("people", json!({ "first_name": "Ann" })).await;

    let (status, theirs) = world.hub.get(&world.app, &format!("/api/v2/{other_group}/people")).await;
    let theirs = assert_error(status, &theirs, 401, "unauthorized");
    let (status, missing) = world.hub.get(&world.app, "/api/v2/cld-zzzz/people").await;
    let missing = assert_error(status, &missing, 401, "unauthorized");
    assert_eq!(theirs["title"], missing["title"]);
    assert_eq!(theirs["detail"], missing["detail"]);
    let (status, body) = world.hub.post(&world.app, &other_group, "people", json!({ "first_name": "Intruder" })).await;
    assert_error(status, &body, 401, "unauthorized");
    assert_eq!(world.list_all("people").await.len(), 1);
}

#[tokio::test]
async fn an_app_that_may_write_but_not_read_gets_no_fields_back_from_its_writes() {
    let world = World::new().await;
    let person =
        world.create("people", json!({ "first_name": "Ann", "email": { "address": "ann@example.com" } })).await;
    let writer = world.hub.create_app("writer", &[("people", "w")], None).await;
    let group = world.hub.install(&writer, &world.org).await;

    // Merged into Ann by email: the answer must not hand out her record.
    let probe = json!({ "email": { "address": "ann@example.com" }, "opts": { "matching_fields": ["email/address"] } });
    let (status, body) = world.hub.post(&writer, &group, "people", probe).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["people"]["id"], person["id"], "{body}");
    assert!(body["people"].get("first_name").is_none(), "{body}");
    assert!(body["people"].get("email").is_none(), "{body}");

    let batch = json!({ "ops": [{ "method": "put", "url": format!("/api/v2/{group}/people/{}", person["id"].as_str().unwrap()),
        "params": { "people": { "job_title": "Buyer" } } }] });
    let (status, body) = send_json(world.hub.api(&writer, Method::POST, "/batch").json(&batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer = &body["results"][0]["body"]["people"];
    assert_eq!(answer["version"], 2, "{body}");
    assert!(answer.get("first_name").is_none() && answer.get("job_title").is_none(), "{body}");
}

#[tokio::test]
async fn the_change_feed_hides_entities_the_app_may_not_read_and_pages_past_them() {
    let world = World::new().await;
    let narrow = world.hub.create_app("narrow", &[("people", "rw")], None).await;
    let group = world.hub.install(&narrow, &world.org).await;
    // Seqs 1 to 6; the people are 2 and 5.
    let writes = [
        ("items", "Widget"),
        ("people", "Ann"),
        ("items", "Gadget"),
        ("items", "Gizmo"),
        ("people", "Bob"),
        ("items", "Doohickey"),
    ];
    let mut people = Vec::new();
    for (entity, name) in writes {
        let field = if entity == "people" { "first_name" } else { "name" };
        let record = world.create(entity, json!({ field: name })).await;
        if entity == "people" {
            people.push(record["id"].as_str().unwrap().to_string());
        }
    }

    let (status, all) = world.hub.get(&narrow, &format!("/api/v2/{group}/changes?after=0")).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let seen: Vec<(&str, &str)> = all["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["entity"].as_str().unwrap(), c["id"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [("people", people[0].as_str()), ("people", people[1].as_str())], "{all}");
    assert_eq!((all["next_after"].as_i64(), all["has_more"].as_bool()), (Some(6), Some(false)), "{all}");
    for item in ["Widget", "Gadget", "Gizmo", "Doohickey"] {
        assert!(!all.to_string().contains(item), "an item leaked into the feed: {all}");
    }

    // Two at a time: a page of hidden changes is empty but still moves the cursor.
    let mut pages = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = world.hub.get(&narrow, &format!("/api/v2/{group}/changes?after={after}&limit=2")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let ids: Vec<String> =
            page["changes"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
        let next = page["next_after"].as_i64().unwrap();
        assert!(next > after, "the cursor did not move: {page}");
        pages.push((ids, next));
        after = next;
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
        assert!(pages.len() < 10, "paging does not end: {pages:?}");
    }
    let expected = vec![(vec![people[0].clone()], 2), (vec![], 4), (vec![people[1].clone()], 6)];
    assert_eq!(pages, expected);
}
