//! A real `sharehub serve` process on a SQLite file, SIGKILLed between
//! commit and delivery, loses no notification.
//!
//! The receiver holds every POST unanswered until the hub is dead, so the
//! kill always lands with one batch sent but not acknowledged and a later
//! change committed but not yet sent. A second process on the same file
//! then delivers both: the cut batch again under the same `webhook-id` and
//! body, and the later change after it. Every write acknowledged before the
//! kill reads back afterwards. Runs everywhere (no PostgreSQL needed).

#[path = "support/hub_process.rs"]
mod hub_process;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hub_process::{admin, hub_id, register, write, Hub, Writer};
use serde_json::{json, Value};

/// The whole test, both processes included, must end within this.
const DEADLINE: Duration = Duration::from_secs(60);

/// What the receiver got, in arrival order, and whether it answers yet.
#[derive(Default)]
struct Receiver {
    arrivals: Mutex<Vec<(String, Bytes)>>,
    answering: AtomicBool,
}

async fn receive(State(receiver): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let webhook_id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    receiver.arrivals.lock().unwrap().push((webhook_id, body));
    while !receiver.answering.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    StatusCode::NO_CONTENT
}

async fn start_receiver(receiver: Arc<Receiver>) -> String {
    hub_process::serve_receiver(axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(receiver))
        .await
}

fn spawn_hub(dir: &Path, name: &str) -> Hub {
    let database = format!("sqlite://{}", dir.join("hub.db").display());
    let settings = [
        ("SHAREHUB_DELIVERY__RETRY_SCHEDULE", "200ms,500ms,1s,2s".to_string()),
        ("SHAREHUB_DELIVERY__POLL_INTERVAL_MS", "200".to_string()),
        ("SHAREHUB_DELIVERY__TIMEOUT_SECS", "30".to_string()),
        ("RUST_LOG", "info,sharehub_delivery=debug".to_string()),
    ];
    hub_process::spawn_hub(&database, dir.join(format!("{name}.log")), &settings)
}

/// The (hub id, name) of each record of a webhook body.
fn names(body: &[u8]) -> Vec<(String, String)> {
    let body: Value = serde_json::from_slice(body).expect("webhook body is JSON");
    let records = body["organizations"].as_array().cloned().unwrap_or_default();
    records.iter().map(|r| (hub_id(r), r["name"].as_str().unwrap_or_default().to_string())).collect()
}

async fn wait_for(what: &str, hub: &Hub, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {DEADLINE:?}\n{}", hub.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn read_name(client: &reqwest::Client, hub: &Hub, w: &Writer, id: &str) -> String {
    let url = format!("{}/api/v2/{}/organizations/{id}", hub.base, w.group);
    let response = client.get(url).basic_auth(&w.api_id, Some(&w.api_key)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["organizations"]["name"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_between_commit_and_delivery_delivers_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let receiver = Arc::new(Receiver::default());
    let url = start_receiver(receiver.clone()).await;
    let mut first = spawn_hub(dir.path(), "first");
    first.wait_ready(&client).await;
    let org = admin(&client, &first, "/platform/v1/orgs", json!({ "name": "Crash" })).await;
    let org = org["org"]["id"].as_str().unwrap().to_string();
    let writer = register(&client, &first, &org, "writer", None).await;
    register(&client, &first, &org, "reader", Some(&url)).await;

    // One change sent and held unanswered, a second committed behind it.
    let (sent, _) = write(&client, &first, &writer, None, "Sent, never acknowledged").await;
    wait_for("the first POST", &first, || !receiver.arrivals.lock().unwrap().is_empty()).await;
    let (queued, _) = write(&client, &first, &writer, None, "Committed, not yet sent").await;
    let cut = receiver.arrivals.lock().unwrap()[0].clone();
    assert_eq!(names(&cut.1), [(sent.clone(), "Sent, never acknowledged".to_string())]);

    first.child.kill().unwrap(); // SIGKILL: no shutdown of any kind
    first.exited().await;
    assert_eq!(receiver.arrivals.lock().unwrap().len(), 1, "the held POST is the only one before the kill");
    receiver.answering.store(true, Ordering::SeqCst);

    let mut second = spawn_hub(dir.path(), "second");
    second.wait_ready(&client).await;
    let delivered = |receiver: &Receiver| -> Vec<(String, String)> {
        receiver.arrivals.lock().unwrap().iter().skip(1).flat_map(|(_, body)| names(body)).collect()
    };
    wait_for("both changes after the restart", &second, || delivered(&receiver).iter().any(|(id, _)| *id == queued))
        .await;

    let arrivals = receiver.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals[1].0, cut.0, "the cut batch is sent again under its webhook-id");
    assert_eq!(arrivals[1].1, cut.1, "with the same body");
    let order: Vec<String> = delivered(&receiver).into_iter().map(|(id, _)| id).collect();
    assert_eq!(order, [sent.clone(), queued.clone()], "each change once after the restart, in commit order");
    assert_eq!(read_name(&client, &second, &writer, &sent).await, "Sent, never acknowledged");
    assert_eq!(read_name(&client, &second, &writer, &queued).await, "Committed, not yet sent");
    second.terminate().await;
}
