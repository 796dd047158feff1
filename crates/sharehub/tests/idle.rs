//! An idle hub stays idle: a real `sharehub serve` on a SQLite file, with an
//! app that receives webhooks, uses almost no CPU once its work is done.
//!
//! The delivery worker's own bookkeeping (a resend check per step) is a
//! write; when every write woke the workers, that check woke the worker that
//! made it, which checked again: about a thousand empty steps a second, one
//! core busy forever. The test reads the process's CPU time from `/proc`.

#![cfg(target_os = "linux")]

#[path = "support/hub_process.rs"]
mod hub_process;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use hub_process::{admin, register, write, Hub};
use serde_json::json;

/// CPU seconds an idle hub may use in [`WINDOW`] (its poll timers, the
/// checkpointer); the loop this guards against used about 2.
const IDLE_CPU: f64 = 0.25;
const WINDOW: Duration = Duration::from_secs(2);

/// User plus system CPU seconds of a process, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/<pid>/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')').expect("a stat line").1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    let out = std::process::Command::new("getconf").arg("CLK_TCK").output().expect("running getconf");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(100.0)
}

async fn start_receiver(bodies: Arc<Mutex<Vec<String>>>) -> String {
    let receive = move |body: String| {
        let bodies = bodies.clone();
        async move {
            bodies.lock().unwrap().push(body);
            StatusCode::NO_CONTENT
        }
    };
    hub_process::serve_receiver(axum::Router::new().route("/hook", axum::routing::post(receive))).await
}

async fn idle_cpu(hub: &Hub) -> f64 {
    let pid = hub.child.id();
    let before = cpu_seconds(pid);
    tokio::time::sleep(WINDOW).await;
    cpu_seconds(pid) - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_hub_with_a_webhook_app_uses_almost_no_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let url = start_receiver(bodies.clone()).await;
    let database = format!("sqlite://{}", dir.path().join("hub.db").display());
    let mut hub = hub_process::spawn_hub(&database, dir.path().join("hub.log"), &[]);
    hub.wait_ready(&client).await;
    let org = admin(&client, &hub, "/platform/v1/orgs", json!({ "name": "Idle" })).await;
    let org = org["org"]["id"].as_str().unwrap().to_string();
    let writer = register(&client, &hub, &org, "writer", None).await;
    register(&client, &hub, &org, "reader", Some(&url)).await;

    // Nothing written yet: the worker waits.
    let cpu = idle_cpu(&hub).await;
    assert!(cpu < IDLE_CPU, "{cpu:.2} CPU-s in {WINDOW:?} before any write\n{}", hub.logs());

    // One write, delivered; then the worker waits again.
    write(&client, &hub, &writer, None, "Quiet Ltd").await;
    for _ in 0..200 {
        if !bodies.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(bodies.lock().unwrap().first().is_some_and(|b| b.contains("Quiet Ltd")), "the write is delivered");
    let cpu = idle_cpu(&hub).await;
    assert!(cpu < IDLE_CPU, "{cpu:.2} CPU-s in {WINDOW:?} after delivering\n{}", hub.logs());
    hub.terminate().await;
}
