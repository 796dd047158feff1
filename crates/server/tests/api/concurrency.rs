//! Concurrent writers and the change feed they leave behind.

use std::collections::HashSet;

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{batch_of, send_json, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_upserts_by_one_external_id_make_one_record() {
    let world = World::new().await;
    let posts = (0..20).map(|i| {
        world.post("people", json!({ "id": world.own("cust-1"), "first_name": "Ann", "job_title": format!("try {i}") }))
    });
    let answers = join_all(posts).await;
    assert_one_record(&world, &answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_with_matching_fields_make_one_record() {
    let world = World::new().await;
    let record = json!({ "first_name": "Ann", "email": { "address": "ann@example.com" }, "opts": { "matching_fields": ["email/address"] } });
    let answers = join_all((0..20).map(|_| world.post("people", record.clone()))).await;
    assert_one_record(&world, &answers).await;
}

/// Every answer is 201 or 200 with the same id, exactly one is 201, and one record exists.
async fn assert_one_record(world: &World, answers: &[(StatusCode, Value)]) {
    let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::OK), "{answers:?}");
    assert_eq!(created, 1, "{answers:?}");
    let ids: HashSet<String> = answers.iter().map(|(_, b)| b["people"]["id"].to_string()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(world.list_all("people").await.len(), 1);
}

/// The feed from `after`, `limit` at a time, until `has_more` is false.
async fn read_feed(world: &World, mut after: i64, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let (status, page) = world.get(&format!("changes?after={after}&limit={limit}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        out.extend(page["changes"].as_array().unwrap().iter().cloned());
        after = page["next_after"].as_i64().unwrap();
        if !page["has_more"].as_bool().unwrap() {
            return out;
        }
    }
}

fn seqs(feed: &[Value]) -> Vec<i64> {
    feed.iter().map(|c| c["seq"].as_i64().unwrap()).collect()
}

/// Seqs strictly increase by one.
fn assert_gapless(seqs: &[i64]) {
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "gap or disorder in {seqs:?}");
}

#[tokio::test]
async fn the_change_feed_is_ordered_gapless_and_resumable_from_any_cursor() {
    let world = World::new().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(world.create("people", json!({ "first_name": format!("P{i}") })).await["id"].clone());
    }
    let (status, _) =
        world.put(&format!("people/{}", ids[0].as_str().unwrap()), "people", json!({ "last_name": "Changed" })).await;
    assert_eq!(status, StatusCode::OK);

    let all = read_feed(&world, 0, 1000).await;
    assert_eq!(all.len(), 8);
    assert_gapless(&seqs(&all));
    assert_eq!(all[7]["id"], ids[0]);
    assert_eq!(all[7]["kind"], "updated");
    assert_eq!(all[7]["record"]["last_name"], "Changed");

    assert_eq!(read_feed(&world, 0, 3).await, all, "small pages give the same feed");
    for cut in 0..all.len() {
        let cursor = all[cut]["seq"].as_i64().unwrap();
        let rest = read_feed(&world, cursor, 2).await;
        assert_eq!(rest, all[cut + 1..].to_vec(), "resuming after {cursor}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_racing_batches_both_land_in_the_feed_in_seq_order_without_gaps() {
    let world = World::new().await;
    let batch =
        |tag: &str| batch_of(&world.group, "people", (0..30).map(|i| json!({ "first_name": format!("{tag}{i}") })));
    let (a, b) = (batch("A"), batch("B"));
    let send = |body: Value| send_json(world.hub.api(&world.app, Method::POST, "/batch").json(&body));
    let (ra, rb) = tokio::join!(send(a), send(b));
    for (status, body) in [&ra, &rb] {
        assert_eq!(*status, StatusCode::OK, "{body}");
        assert!(body["results"].as_array().unwrap().iter().all(|r| r["status"] == 201), "{body}");
    }

    let feed = read_feed(&world, 0, 7).await;
    assert_eq!(feed.len(), 60);
    assert_gapless(&seqs(&feed));
    assert_eq!(seqs(&feed)[0], 1);
    let written: HashSet<String> = [&ra.1, &rb.1]
        .iter()
        .flat_map(|b| {
            b["results"].as_array().unwrap().iter().map(|r| r["body"]["people"]["id"].as_str().unwrap().to_string())
        })
        .collect();
    let in_feed: HashSet<String> = feed.iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(written, in_feed);
}
