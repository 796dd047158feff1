//! Create, read, update, delete and the contract's details around them.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{send_json, send_raw, World};

#[tokio::test]
async fn a_created_person_is_answered_201_and_reads_back_by_id() {
    let world = World::new().await;
    let (status, body) = world
        .post(
            "people",
            json!({ "first_name": "Leonie", "last_name": "Köhler", "email": { "address": "leonie@example.com" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let person = &body["people"];
    let id = person["id"].as_str().expect("plain hub id without external ids");
    assert_eq!(person["resource_type"], "people");
    assert_eq!(person["group_id"], world.group);
    assert_eq!(person["channel_id"], world.org);
    assert!(person["created_at"].as_str().unwrap().ends_with('Z'), "{person}");

    let (status, read) = world.get(&format!("people/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["people"]["first_name"], "Leonie");
    assert_eq!(read["people"]["email"]["address"], "leonie@example.com");
    assert_eq!(read["people"]["id"], id);
}

#[tokio::test]
async fn a_partial_put_keeps_fields_not_sent_and_clears_nulls() {
    let world = World::new().await;
    let person = world.create("people", json!({ "first_name": "Leonie", "last_name": "Köhler", "job_title": "Owner", "email": { "address": "l@example.com" } })).await;
    let id = person["id"].as_str().unwrap();
    let (status, body) =
        world.put(&format!("people/{id}"), "people", json!({ "first_name": "Léonie", "job_title": null })).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (_, read) = world.get(&format!("people/{id}")).await;
    let read = &read["people"];
    assert_eq!(read["first_name"], "Léonie");
    assert_eq!(read["last_name"], "Köhler");
    assert_eq!(read["email"]["address"], "l@example.com");
    assert!(read.get("job_title").is_none_or(Value::is_null), "{read}");
    assert_eq!(read["version"], 2);

    let (status, body) = world.put(&format!("people/{id}"), "people", json!({ "email": { "address": null } })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, read) = world.get(&format!("people/{id}")).await;
    assert!(read["people"]["email"].get("address").is_none_or(Value::is_null), "{read}");
    assert_eq!(read["people"]["last_name"], "Köhler");
}

#[tokio::test]
async fn paths_with_a_json_suffix_work() {
    let world = World::new().await;
    let request = world.req(Method::POST, "people.json").json(&json!({ "people": { "first_name": "Suffix" } }));
    let (status, body) = send_json(request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["people"]["id"].as_str().unwrap();
    let (status, one) = world.get(&format!("people/{id}.json")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["people"]["first_name"], "Suffix");
    let (status, list) = world.get("people.json").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["people"].as_array().unwrap().len(), 1);
    let put = world.req(Method::PUT, &format!("people/{id}.json")).json(&json!({ "people": { "last_name": "Put" } }));
    let (status, body) = send_json(put).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Every other path of the API takes it too.
    let (status, root) = world.hub.get(&world.app, &format!("/api/v2/{}.json", world.group)).await;
    assert_eq!(status, StatusCode::OK, "{root}");
    assert!(root["_links"].is_object(), "{root}");
    let (status, feed) = world.get("changes.json?after=0").await;
    assert_eq!(status, StatusCode::OK, "{feed}");
    assert_eq!(feed["changes"].as_array().unwrap().len(), 2, "{feed}");
    let (status, schema) = world.hub.get(&world.app, "/api/v2/json_schema/people.json").await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    let (status, version) = world.hub.get(&world.app, "/version.json").await;
    assert_eq!(status, StatusCode::OK, "{version}");
    assert!(version["version"].is_string(), "{version}");
    let batch = crate::support::batch_of(&world.group, "people", [json!({ "first_name": "Batched" })]);
    let (status, answer) = send_json(world.hub.api(&world.app, Method::POST, "/batch.json").json(&batch)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["results"][0]["status"], 201, "{answer}");
    // `/openapi.json` is the document's name, not a suffix.
    let (status, openapi) = world.hub.get(&world.app, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(openapi["openapi"].is_string());
}

#[tokio::test]
async fn the_external_ids_header_gives_id_arrays_with_the_hub_and_caller_entries() {
    let world = World::new().await;
    let request = world
        .req(Method::POST, "people")
        .header("CONNEC-EXTERNAL-IDS", "true")
        .json(&json!({ "people": { "id": world.own("1001"), "first_name": "Ext" } }));
    let (status, body) = send_json(request).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ids = body["people"]["id"].as_array().unwrap_or_else(|| panic!("id array in {body}")).clone();
    let hub = ids.iter().find(|e| e["provider"] == "connec").expect("connec entry");
    assert_eq!(hub["realm"], world.org);
    let hub_id = hub["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(hub_id).is_ok(), "{hub}");
    assert!(ids.contains(&json!({ "provider": "store", "realm": world.group, "id": "1001" })), "{ids:?}");

    let (_, plain) = world.get(&format!("people/{hub_id}")).await;
    assert_eq!(plain["people"]["id"], hub_id);
}

#[tokio::test]
async fn references_sent_as_own_id_arrays_resolve_and_read_back_in_the_readers_view() {
    let world = World::new().await;
    let books = world
        .hub
        .create_app("books", &[("people", "r"), ("organizations", "r"), ("invoices", "r"), ("items", "r")], None)
        .await;
    let books_group = world.hub.install(&books, &world.org).await;

    let company = world.create("organizations", json!({ "id": world.own("org-7"), "name": "Acme" })).await;
    let item = world.create("items", json!({ "id": world.own("item-9"), "name": "Guitar" })).await;
    let person = world.create("people", json!({ "first_name": "Ann", "organization_id": world.own("org-7") })).await;
    assert_eq!(person["organization_id"], company["id"], "{person}");
    let invoice = world.create("invoices", json!({ "organization_id": world.own("org-7"), "lines": [{ "item_id": world.own("item-9"), "quantity": 1 }] })).await;
    assert_eq!(invoice["lines"][0]["item_id"], item["id"], "{invoice}");

    let id = invoice["id"].as_str().unwrap();
    let path = format!("/api/v2/{books_group}/invoices/{id}");
    let (status, plain) = world.hub.get(&books, &path).await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(plain["invoices"]["organization_id"], company["id"]);
    assert_eq!(plain["invoices"]["group_id"], books_group);

    let (_, ext) = send_json(world.hub.api(&books, Method::GET, &path).header("CONNEC-EXTERNAL-IDS", "true")).await;
    let refs = ext["invoices"]["lines"][0]["item_id"].as_array().unwrap_or_else(|| panic!("{ext}")).clone();
    assert!(refs.contains(&json!({ "provider": "connec", "realm": world.org, "id": item["id"] })), "{refs:?}");
    let (_, own) =
        send_json(world.req(Method::GET, &format!("invoices/{id}")).header("CONNEC-EXTERNAL-IDS", "true")).await;
    let refs = own["invoices"]["organization_id"].as_array().unwrap_or_else(|| panic!("{own}")).clone();
    assert!(refs.contains(&json!({ "provider": "store", "realm": world.group, "id": "org-7" })), "{refs:?}");
}

#[tokio::test]
async fn delete_archives_the_record_and_it_leaves_the_list() {
    let world = World::new().await;
    let keep = world.create("people", json!({ "first_name": "Keep" })).await;
    let gone = world.create("people", json!({ "first_name": "Gone" })).await;
    let id = gone["id"].as_str().unwrap();
    let (status, body) = send_json(world.req(Method::DELETE, &format!("people/{id}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let people = world.list_all("people").await;
    assert_eq!(people.len(), 1);
    assert_eq!(people[0]["id"], keep["id"]);
    let archived = world.feed().await.into_iter().filter(|c| c["id"] == id && c["kind"] == "archived").count();
    assert_eq!(archived, 1);
}

#[tokio::test]
async fn the_group_root_lists_links_of_readable_entities_only() {
    let world = World::new().await;
    let (status, body) = world.hub.get(&world.app, &format!("/api/v2/{}", world.group)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let links = body["_links"].as_object().unwrap();
    let mut names: Vec<&str> = links.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["company", "invoices", "items", "organizations", "people"]);
    assert!(links["people"]["href"].as_str().unwrap().ends_with(&format!("/api/v2/{}/people", world.group)));
}

#[tokio::test]
async fn the_json_schema_and_version_endpoints_answer() {
    let world = World::new().await;
    let (status, schema) =
        send_json(world.hub.client.get(format!("{}/api/v2/json_schema/people", world.hub.base))).await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    assert!(schema["properties"]["email"].is_object(), "{schema}");
    let (status, version) = send_json(world.hub.client.get(format!("{}/version", world.hub.base))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(version["ci_commit"].is_string(), "{version}");
}

#[tokio::test]
async fn the_company_singleton_reads_and_writes_one_record() {
    let world = World::new().await;
    let (status, _) = world.get("company").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, first) =
        send_json(world.req(Method::PUT, "company").json(&json!({ "company": { "name": "Acme" } }))).await;
    assert!(status == StatusCode::CREATED || status == StatusCode::OK, "{status} {first}");
    let (status, second) =
        send_json(world.req(Method::PUT, "company").json(&json!({ "company": { "currency": "EUR" } }))).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["company"]["id"], first["company"]["id"]);
    let (status, read) = world.get("company").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["company"]["name"], "Acme");
    assert_eq!(read["company"]["currency"], "EUR");

    // In a batch, its path answers the one record too.
    let ops = json!({ "ops": [{ "method": "get", "url": format!("/api/v2/{}/company", world.group) }] });
    let (status, answer) = send_json(world.hub.api(&world.app, Method::POST, "/batch").json(&ops)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["results"][0]["status"], 200, "{answer}");
    assert_eq!(answer["results"][0]["body"]["company"]["name"], "Acme", "{answer}");
}

#[tokio::test]
async fn text_with_accents_cjk_and_emoji_round_trips_byte_for_byte() {
    let world = World::new().await;
    let name = "Gonçalves Ñúñez 日本語 🎸👩‍👩‍👧";
    let person = world.create("people", json!({ "last_name": name })).await;
    let id = person["id"].as_str().unwrap();
    let (status, _, raw) = send_raw(world.req(Method::GET, &format!("people/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    let needle = serde_json::to_string(name).unwrap().into_bytes();
    assert!(raw.windows(needle.len()).any(|w| w == needle.as_slice()), "{}", String::from_utf8_lossy(&raw));
}

#[tokio::test]
async fn a_free_form_entity_round_trips_whatever_fields_it_is_sent() {
    // `events` has no JSON Schema in the catalogue: any object is stored as sent.
    let world = World::new().await;
    let app = world.hub.create_app("tickets", &[("events", "rw")], None).await;
    let group = world.hub.install(&app, &world.org).await;
    let fields = json!({
        "title": "Jazz à Juan 🎷",
        "seats": 350,
        "price": 42.5,
        "sold_out": false,
        "tags": ["music", "outdoor"],
        "venue": { "city": "Antibes", "geo": { "lat": 43.58, "lng": 7.12 } }
    });

    let (status, created) = world.hub.post(&app, &group, "events", fields.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["events"]["id"].as_str().expect("hub id").to_string();
    let (status, read) = world.hub.get(&app, &format!("/api/v2/{group}/events/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    for (name, value) in fields.as_object().unwrap() {
        assert_eq!(&read["events"][name], value, "{name} in {read}");
    }
    assert_eq!(read["events"]["resource_type"], "events");

    let path = format!("/api/v2/{group}/events/{id}");
    let update = json!({ "events": { "seats": 400, "venue": { "stage": "Pinède" } } });
    let (status, updated) = send_json(world.hub.api(&app, Method::PUT, &path).json(&update)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let (_, read) = world.hub.get(&app, &path).await;
    assert_eq!(read["events"]["seats"], 400);
    assert_eq!(read["events"]["venue"]["stage"], "Pinède");
    assert_eq!(read["events"]["venue"]["geo"], fields["venue"]["geo"], "merged, not replaced: {read}");
    assert_eq!(read["events"]["version"], 2);
    let (_, list) = world.hub.get(&app, &format!("/api/v2/{group}/events")).await;
    assert_eq!(list["events"].as_array().map(Vec::len), Some(1), "{list}");
}
