//! Two real `sharehub serve` processes on one SQLite file: both answer the
//! API, one delivers the webhooks, and the other takes over when it dies.
//!
//! Records are created and renamed through both processes at once, and one
//! external id is posted through both at once; the receiver must get every
//! (record, version) exactly once, under webhook-ids that each name one body,
//! the change feed must number the changes of both processes densely, and
//! the external id must make one record. Then the delivering process is
//! SIGKILLed, more records are written through the survivor, and the
//! survivor delivers them. Also: processes started together on a new file
//! all come up, and an Idempotency-Key sent to both at once writes once.
//! Runs everywhere (no PostgreSQL needed).

#![cfg(unix)]

#[path = "support/hub_process.rs"]
mod hub_process;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hub_process::{admin, hub_id, register, write, Hub, Writer};
use serde_json::{json, Value};

/// The whole test, processes included, must end within this.
const DEADLINE: Duration = Duration::from_secs(120);
/// Records created (then renamed) through both processes.
const RECORDS: usize = 40;
/// Records created through the survivor after the kill.
const AFTER_KILL: usize = 10;
/// How long the receiver takes to answer: a batch is in flight while the
/// other process's writes wake its delivery worker.
const SLOW_ANSWER: Duration = Duration::from_millis(100);

const DELIVERS: &str = "this process delivers webhooks for this database";
const SERVES_ONLY: &str = "another process delivers webhooks for this database; this one serves the API only";
const TOOK_OVER: &str = "took over webhook delivery for this database";

/// Every POST the receiver got, in arrival order: (webhook-id, body).
type Arrivals = Arc<Mutex<Vec<(String, Bytes)>>>;

async fn receive(State(arrivals): State<Arrivals>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let webhook_id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    arrivals.lock().unwrap().push((webhook_id, body));
    tokio::time::sleep(SLOW_ANSWER).await;
    StatusCode::NO_CONTENT
}

async fn start_receiver(arrivals: Arrivals) -> String {
    hub_process::serve_receiver(axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(arrivals))
        .await
}

fn spawn_hub(dir: &Path, name: &str) -> Hub {
    let database = format!("sqlite://{}", dir.join("hub.db").display());
    let settings = [
        ("SHAREHUB_DELIVERY__RETRY_SCHEDULE", "200ms,500ms,1s,2s".to_string()),
        ("SHAREHUB_DELIVERY__POLL_INTERVAL_MS", "200".to_string()),
        ("SHAREHUB_DELIVERY__BATCH_RECORDS", "7".to_string()),
        ("SHAREHUB_DELIVERY__TIMEOUT_SECS", "20".to_string()),
        ("RUST_LOG", "info".to_string()),
    ];
    hub_process::spawn_hub(&database, dir.join(format!("{name}.log")), &settings)
}

/// The (hub id, version) of each record of a webhook body.
fn versions(body: &[u8]) -> Vec<(String, i64)> {
    let body: Value = serde_json::from_slice(body).expect("webhook body is JSON");
    let records = body["organizations"].as_array().cloned().unwrap_or_default();
    records.iter().map(|r| (hub_id(r), r["version"].as_i64().expect("version"))).collect()
}

/// Checks that each webhook-id names one body and that every (record,
/// version) arrived exactly once, counting every POST; answers them.
fn exactly_once(arrivals: &[(String, Bytes)]) -> HashSet<(String, i64)> {
    let mut bodies: HashMap<&str, &Bytes> = HashMap::new();
    for (webhook_id, body) in arrivals {
        let first = bodies.entry(webhook_id).or_insert(body);
        assert_eq!(*first, body, "webhook-id {webhook_id} was sent with two different bodies");
    }
    let delivered: Vec<(String, i64)> = arrivals.iter().flat_map(|(_, body)| versions(body)).collect();
    let distinct: HashSet<(String, i64)> = delivered.iter().cloned().collect();
    let mut counts: HashMap<&(String, i64), usize> = HashMap::new();
    for entry in &delivered {
        *counts.entry(entry).or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "{} record versions in {} POSTs ({} webhook-ids), but {} distinct; sent more than once: {repeated:?}",
        delivered.len(),
        arrivals.len(),
        bodies.len(),
        distinct.len()
    );
    assert_eq!(bodies.len(), arrivals.len(), "no batch is sent twice");
    distinct
}

/// Waits until every record arrived in its last version.
async fn wait_for_versions(arrivals: &Arrivals, last: &HashMap<String, i64>, hubs: &[&Hub]) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut seen: HashMap<String, i64> = HashMap::new();
        for (_, body) in arrivals.lock().unwrap().iter() {
            for (id, version) in versions(body) {
                let best = seen.entry(id).or_default();
                *best = (*best).max(version);
            }
        }
        let missing: Vec<&String> = last.iter().filter(|(id, v)| seen.get(*id) < Some(v)).map(|(id, _)| id).collect();
        if missing.is_empty() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let logs: Vec<String> = hubs.iter().map(|h| h.logs()).collect();
            panic!("never arrived in their last version: {missing:?}\n{}", logs.join("\n---\n"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the hub's log holds `line`.
async fn wait_for_log(hub: &Hub, line: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !hub.logs().contains(line) {
        assert!(tokio::time::Instant::now() < deadline, "no {line:?} in the log:\n{}", hub.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs a record named by the writer's own id; answers the status and hub id.
/// The seqs of the organization's change feed, as `w` reads it through `hub`.
async fn change_seqs(client: &reqwest::Client, hub: &Hub, w: &Writer) -> Vec<i64> {
    let url = format!("{}/api/v2/{}/changes?after=0&limit=1000", hub.base, w.group);
    let feed: Value =
        client.get(url).basic_auth(&w.api_id, Some(&w.api_key)).send().await.unwrap().json().await.unwrap();
    feed["changes"].as_array().expect("changes").iter().map(|c| c["seq"].as_i64().expect("seq")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_sqlite_file_deliver_each_change_once_and_take_over() {
    tokio::time::timeout(DEADLINE * 2, scenario()).await.expect("the two-process test ends in time");
}

async fn scenario() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let arrivals = Arrivals::default();
    let url = start_receiver(arrivals.clone()).await;

    // One after the other (starting together is the next test's).
    let mut first = spawn_hub(dir.path(), "a");
    first.wait_ready(&client).await;
    let mut second = spawn_hub(dir.path(), "b");
    second.wait_ready(&client).await;
    let mut hubs = [first, second];
    let org = admin(&client, &hubs[0], "/platform/v1/orgs", json!({ "name": "Two Processes" })).await;
    let org = org["org"]["id"].as_str().unwrap().to_string();
    let writer = register(&client, &hubs[0], &org, "writer", None).await;
    register(&client, &hubs[1], &org, "reader", Some(&url)).await;

    // Creates, then renames, each round at once and spread over both
    // processes. A round starts once the last one arrived: a record renamed
    // before its creation was sent is sent as it is now, twice in version 2.
    let names: Vec<String> = (0..RECORDS).map(|i| format!("record {i}")).collect();
    let created = names.iter().enumerate().map(|(i, name)| write(&client, &hubs[i % 2], &writer, None, name));
    let mut last: HashMap<String, i64> = futures::future::join_all(created).await.into_iter().collect();
    let ids: Vec<String> = last.keys().cloned().collect();
    // And one external id posted through both at once makes one record.
    let posts = (0..10).map(|i| hub_process::post_external_id(&client, &hubs[i % 2], &writer, "writer", "crm-1001"));
    let answers: Vec<(u16, String)> = futures::future::join_all(posts).await;
    assert_eq!(answers.iter().filter(|(status, _)| *status == 201).count(), 1, "one create: {answers:?}");
    assert!(answers.iter().all(|(status, id)| [200, 201].contains(status) && *id == answers[0].1), "{answers:?}");
    last.insert(answers[0].1.clone(), 1);
    wait_for_versions(&arrivals, &last, &[&hubs[0], &hubs[1]]).await;
    let renames: Vec<String> = (0..RECORDS).map(|i| format!("record {i} renamed")).collect();
    let renamed = ids
        .iter()
        .zip(&renames)
        .enumerate()
        .map(|(i, (id, name))| write(&client, &hubs[(i + 1) % 2], &writer, Some(id), name));
    last = futures::future::join_all(renamed).await.into_iter().collect();
    assert!(last.values().all(|v| *v == 2), "each record renamed once: {last:?}");
    wait_for_versions(&arrivals, &last, &[&hubs[0], &hubs[1]]).await;
    // Time for a duplicate delivery to show up, and for the last delivery's
    // bookkeeping to commit before the kill.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = exactly_once(&arrivals.lock().unwrap());
    eprintln!("{} POSTs before the kill, {} record versions", arrivals.lock().unwrap().len(), delivered.len());

    // The change log numbers both processes' changes densely, each seq once.
    let seqs = change_seqs(&client, &hubs[1], &writer).await;
    let logged = 2 * RECORDS as i64 + 1;
    assert_eq!(seqs, (1..=logged).collect::<Vec<_>>(), "the change feed of both processes' writes");

    // One process delivers; the other said it serves the API only.
    let delivering = hubs.iter().position(|h| h.logs().contains(DELIVERS)).expect("a process delivers");
    let survivor = 1 - delivering;
    assert!(!hubs[survivor].logs().contains(DELIVERS), "both processes deliver");
    wait_for_log(&hubs[survivor], SERVES_ONLY).await;

    // SIGKILL the delivering process: the survivor takes over.
    hubs[delivering].child.kill().unwrap();
    hubs[delivering].exited().await;
    let names: Vec<String> = (0..AFTER_KILL).map(|i| format!("after the kill {i}")).collect();
    for name in &names {
        let (id, version) = write(&client, &hubs[survivor], &writer, None, name).await;
        last.insert(id, version);
    }
    wait_for_versions(&arrivals, &last, &[&hubs[survivor]]).await;
    wait_for_log(&hubs[survivor], TOOK_OVER).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let delivered = exactly_once(&arrivals.lock().unwrap());
    assert_eq!(delivered.len(), 2 * RECORDS + 1 + AFTER_KILL, "every version, before and after the kill");
    hubs[survivor].terminate().await;
}

/// Processes started at the same moment on a new file: each may find the
/// other switching it to WAL or applying the migrations, and waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_started_together_on_a_new_file_all_serve() {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let mut hubs: Vec<Hub> = (0..3).map(|i| spawn_hub(dir.path(), &format!("round-{round}-{i}"))).collect();
        for hub in &mut hubs {
            hub.wait_ready(&client).await;
        }
        // Killed when dropped.
    }
}

/// The same Idempotency-Key sent to two processes on one file at once: one
/// of them writes, the other answers 409 (still running) or replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_holds_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut first = spawn_hub(dir.path(), "a");
    first.wait_ready(&client).await;
    let mut second = spawn_hub(dir.path(), "b");
    second.wait_ready(&client).await;
    let hubs = [first, second];
    let org = admin(&client, &hubs[0], "/platform/v1/orgs", json!({ "name": "Keys" })).await;
    let w = register(&client, &hubs[0], org["org"]["id"].as_str().unwrap(), "writer", None).await;

    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let key = format!("import-{round}");
        let posts = hubs.iter().map(|hub| {
            let request = client
                .post(format!("{}/api/v2/{}/organizations", hub.base, w.group))
                .basic_auth(&w.api_id, Some(&w.api_key))
                .header("idempotency-key", &key)
                .json(&json!({ "organizations": { "name": key } }));
            async move { request.send().await.unwrap().status().as_u16() }
        });
        let statuses = futures::future::join_all(posts).await;
        assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{key}: {statuses:?}");
        assert!(statuses.contains(&201), "{key}: {statuses:?}");
    }
    let list = hub_process::list_organizations(&client, &hubs[1], &w, "").await;
    assert_eq!(list["pagination"]["total"], ROUNDS, "one record per key: {list}");
}
