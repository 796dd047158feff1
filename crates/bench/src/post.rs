//! Single-record `POST /api/v2/{group}/people` from many concurrent clients
//! sharing one keep-alive `reqwest::Client`, for a time or a count limit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::json;

use crate::data::person;
use crate::hub::Hub;
use crate::report::{ms, rate, Metric, Percentiles};

pub struct PostArgs {
    pub clients: usize,
    pub seconds: u64,
    pub max_requests: usize,
}

pub async fn run(args: &PostArgs) -> Result<Vec<Metric>> {
    const S: &str = "post-single";
    println!("{S}: {} clients, up to {} s or {} requests", args.clients, args.seconds, args.max_requests);
    let (count, elapsed, p) = measure(Hub::start().await?, args).await?;
    let (per_s, text) = rate(count, elapsed);
    Ok(vec![
        Metric::new(S, "requests/s", ">= 3,000/s", text, Some(per_s >= 3000.0)),
        Metric::info(S, "latency p50", ms(p.at(50.0))),
        Metric::info(S, "latency p99", ms(p.at(99.0))),
        Metric::info(S, "requests / clients / time", format!("{count} / {} / {elapsed:.1?}", args.clients)),
    ])
}

/// Drives `hub` (on any database) and stops it: (successful requests, wall time, latencies).
pub async fn measure(hub: Hub, args: &PostArgs) -> Result<(usize, Duration, Percentiles)> {
    let (app, group) = hub.platform.writer_app("bench-post", &["people"]).await?;
    let path = format!("/api/v2/{group}/people");

    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (platform, app, path, next) = (hub.platform.clone(), app.clone(), path.clone(), next.clone());
        let max = args.max_requests;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max || Instant::now() >= deadline {
                    break;
                }
                // A plain create, no external id: the hub assigns the id.
                let mut record = person("bench-post", n as u64).record;
                record.as_object_mut().map(|o| o.remove("id"));
                let body = json!({ "people": record }).to_string();
                let sent = Instant::now();
                let response = platform.api(&app, reqwest::Method::POST, &path).body(body).send().await;
                let ok = match response {
                    Ok(r) => r.status().as_u16() == 201 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(sent.elapsed());
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = start.elapsed();
    hub.stop().await;
    if failures > 0 {
        bail!("{failures} requests failed");
    }
    Ok((latencies.len(), elapsed, Percentiles::new(latencies)))
}
