//! Webhook latency: three subscribed apps with real receivers, one writer
//! app posting people at a steady pace, each write with a unique marker.
//! Latency = arrival at a receiver − the moment the write was sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::time::MissedTickBehavior;

use crate::data::person;
use crate::hub::Hub;
use crate::report::{ms, Metric, Percentiles};

pub struct WebhookArgs {
    pub rate: u64,
    pub seconds: u64,
}

type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

/// A receiver on 127.0.0.1:0 that timestamps every person it gets by marker.
async fn receiver() -> Result<(String, Arrivals)> {
    let arrivals: Arrivals = Arc::default();
    let app = Router::new().route("/hook", post(receive)).with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, arrivals))
}

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let at = Instant::now();
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) {
        let mut list = arrivals.lock().unwrap();
        for record in map.get("people").and_then(Value::as_array).into_iter().flatten() {
            if let Some(marker) = record["description"].as_str() {
                list.push((marker.to_string(), at));
            }
        }
    }
    "ok"
}

/// What [`measure`] saw: per-delivery latencies, writes, their sending time, duplicates.
pub struct Measured {
    pub latencies: Percentiles,
    pub writes: usize,
    pub write_time: Duration,
    pub duplicates: usize,
}

pub async fn run(args: &WebhookArgs) -> Result<Vec<Metric>> {
    const S: &str = "webhook-latency";
    let m = measure(Hub::start().await?, args).await?;
    let (p, total, write_time, duplicates) = (m.latencies, m.writes, m.write_time, m.duplicates);
    Ok(vec![
        Metric::new(S, "latency p50", "< 10 ms", ms(p.at(50.0)), Some(p.at(50.0) < Duration::from_millis(10))),
        Metric::info(S, "latency p95", ms(p.at(95.0))),
        Metric::new(S, "latency p99", "< 50 ms", ms(p.at(99.0)), Some(p.at(99.0) < Duration::from_millis(50))),
        Metric::info(S, "latency max", ms(p.max())),
        Metric::info(S, "deliveries (writes x 3), duplicates", format!("{} ({total} x 3), {duplicates}", p.len())),
        Metric::info(S, "achieved write rate", format!("{:.0}/s", total as f64 / write_time.as_secs_f64())),
    ])
}

/// Runs the scenario on `hub` (on any database) and stops it.
pub async fn measure(hub: Hub, args: &WebhookArgs) -> Result<Measured> {
    let p = &hub.platform;
    let org = p.create_org("webhook org").await?;
    let mut receivers = Vec::new();
    for i in 0..3 {
        let (url, arrivals) = receiver().await?;
        let app = p.create_app(&format!("bench-sub-{i}"), &[("people", "rs")], Some(&url)).await?;
        p.install(&app, &org).await?;
        receivers.push(arrivals);
    }
    let writer = p.create_app("bench-writer", &[("people", "rw")], None).await?;
    let group = p.install(&writer, &org).await?;
    let path = format!("/api/v2/{group}/people");

    // Warm-up: the delivery loop finds newly registered apps on its next
    // poll (up to `poll_interval_ms`, 1 s by default); measure steady state.
    let warm_start = Instant::now();
    let warm = json!({ "people": { "first_name": "Warm", "description": "warm-up" } }).to_string();
    p.api(&writer, reqwest::Method::POST, &path).body(warm).send().await?.error_for_status()?;
    let ready = Instant::now() + Duration::from_secs(10);
    while receivers.iter().any(|r| r.lock().unwrap().is_empty()) {
        anyhow::ensure!(Instant::now() < ready, "warm-up write not delivered within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("  warm-up delivered to all 3 receivers after {:.0?}", warm_start.elapsed());
    receivers.iter().for_each(|r| r.lock().unwrap().clear());

    let total = (args.rate * args.seconds) as usize;
    println!("  3 subscribers, {total} writes at {}/s", args.rate);
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut writes = Vec::with_capacity(total);
    let start = Instant::now();
    for n in 0..total {
        interval.tick().await;
        let marker = format!("m-{n}");
        let mut record = person("bench-writer", n as u64).record;
        record.as_object_mut().map(|o| o.remove("id"));
        record["description"] = json!(marker);
        let body = json!({ "people": record }).to_string();
        let (platform, writer, path, sent) = (p.clone(), writer.clone(), path.clone(), sent.clone());
        writes.push(tokio::spawn(async move {
            sent.lock().unwrap().insert(marker, Instant::now());
            let r = platform.api(&writer, reqwest::Method::POST, &path).body(body).send().await?;
            let status = r.status();
            r.bytes().await?;
            anyhow::ensure!(status.as_u16() == 201, "write answered {status}");
            Ok::<_, anyhow::Error>(())
        }));
    }
    let write_time = start.elapsed();
    for w in writes {
        w.await??;
    }
    println!(
        "  {total} writes sent in {write_time:.2?} ({:.0}/s); waiting for deliveries",
        total as f64 / write_time.as_secs_f64()
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    while receivers.iter().any(|r| r.lock().unwrap().len() < total) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.stop().await;

    let sent = sent.lock().unwrap();
    let mut latencies = Vec::new();
    let mut missing = 0;
    let mut duplicates = 0;
    for r in &receivers {
        let list = r.lock().unwrap();
        let mut seen: HashMap<&str, Instant> = HashMap::new();
        for (marker, at) in list.iter() {
            if seen.insert(marker, *at).is_some() {
                duplicates += 1;
            }
        }
        for (marker, at_sent) in sent.iter() {
            match seen.get(marker.as_str()) {
                Some(at) => latencies.push(at.saturating_duration_since(*at_sent)),
                None => missing += 1,
            }
        }
    }
    if missing > 0 {
        bail!("{missing} of {} deliveries never arrived", total * 3);
    }
    Ok(Measured { latencies: Percentiles::new(latencies), writes: total, write_time, duplicates })
}
