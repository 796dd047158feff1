//! `pg-fanout`: webhook deliveries per second with 1 and then 2 `sharehub
//! serve` processes (children, target/release/sharehub) sharing one fresh
//! PostgreSQL database, against fast loopback receivers.
//!
//! Each run: start the processes, register `--fanout-apps` subscribed apps
//! (app `i` through process `i mod n`, as a load balancer would spread the
//! calls: the process that registers an app starts its task at once and so
//! takes the app's delivery lease first) and one writer, then write
//! `--fanout-records` people through `/batch`. Meanwhile the receivers hold
//! every POST at a gate, so each app's first batch is in flight and the rest
//! of the changes pile up. The gate then opens; deliveries/s = records
//! delivered (records x apps) / time from the opening to the last arrival.
//! The CPU busy share of the machine (`/proc/stat`) and each hub's CPU time
//! over that window are reported to explain the scaling on few cores.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use sharehub_store::test_support::TestDb;
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::data;
use crate::hub::{Platform, ADMIN_TOKEN};
use crate::import::{batch_body, send_batch};
use crate::report::{rate, Metric};

pub struct FanoutArgs {
    pub records: u64,
    pub apps: usize,
    pub batch: usize,
}

/// What one run measured.
struct Run {
    per_s: f64,
    text: String,
    elapsed: Duration,
    /// Apps per lease holder, most first.
    split: Vec<i64>,
    /// Machine CPU busy share over the delivery window (1.0 = all cores).
    busy: f64,
    /// CPU seconds of each hub process over the window.
    hub_cpu: Vec<f64>,
}

/// One receiver: holds POSTs until the gate opens, then counts records.
struct Receiver {
    gate: watch::Receiver<bool>,
    held: AtomicUsize,
    records: AtomicUsize,
    last: Mutex<Option<Instant>>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    people: Vec<serde::de::IgnoredAny>,
}

async fn receive(State(r): State<Arc<Receiver>>, body: Bytes) -> &'static str {
    r.held.fetch_add(1, Ordering::Relaxed);
    let mut gate = r.gate.clone();
    let _ = gate.wait_for(|open| *open).await;
    let n = serde_json::from_slice::<Body>(&body).map_or(0, |b| b.people.len());
    r.records.fetch_add(n, Ordering::Relaxed);
    *r.last.lock().unwrap() = Some(Instant::now());
    "ok"
}

async fn receiver(gate: watch::Receiver<bool>) -> Result<(String, Arc<Receiver>)> {
    let state = Arc::new(Receiver { gate, held: 0.into(), records: 0.into(), last: Mutex::new(None) });
    let app = Router::new().route("/hook", post(receive)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, state))
}

/// Starts `sharehub serve` on `url` and waits until it is ready.
async fn spawn_hub(url: &str) -> Result<(Child, Platform)> {
    let exe = std::env::current_exe()?.with_file_name("sharehub");
    if !exe.exists() {
        bail!("{} not found: run `cargo build --release -p sharehub` first", exe.display());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(&exe)
        .arg("serve")
        .env("SHAREHUB_DATABASE_URL", url)
        .env("SHAREHUB_BIND", format!("127.0.0.1:{port}"))
        .env("SHAREHUB_ADMIN_TOKEN", ADMIN_TOKEN)
        // Held POSTs must not time out; new apps are found within 200 ms.
        .env("SHAREHUB_DELIVERY__TIMEOUT_SECS", "300")
        .env("SHAREHUB_DELIVERY__POLL_INTERVAL_MS", "200")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let platform = Platform::new(format!("http://127.0.0.1:{port}"));
    for _ in 0..300 {
        let ready = platform.client.get(format!("{}/health/ready", platform.base)).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Ok((child, platform));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("sharehub serve did not become ready on port {port}")
}

/// (busy, total) jiffies of all CPUs.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// utime + stime of a process, in seconds.
fn proc_cpu(pid: Option<u32>) -> f64 {
    let stat = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok()).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0
}

async fn measure_on(db: &TestDb, processes: usize, args: &FanoutArgs) -> Result<Run> {
    let mut hubs = Vec::new();
    for _ in 0..processes {
        hubs.push(spawn_hub(&db.app_url).await?);
    }
    let (open, gate) = watch::channel(false);
    let first = &hubs[0].1;
    let org = first.create_org("fanout org").await?;
    let mut receivers = Vec::new();
    for i in 0..args.apps {
        let (url, state) = receiver(gate.clone()).await?;
        let platform = &hubs[i % processes].1;
        let app = platform.create_app(&format!("bench-sub-{i}"), &[("people", "rs")], Some(&url)).await?;
        platform.install(&app, &org).await?;
        receivers.push(state);
    }
    let writer = first.create_app("bench-fanout", &[("people", "rw")], None).await?;
    let group = first.install(&writer, &org).await?;
    // Every process lists the apps on its next poll (200 ms).
    tokio::time::sleep(Duration::from_secs(1)).await;

    let rows = data::people("bench-fanout", 0, args.records);
    for chunk in rows.chunks(args.batch) {
        send_batch(first, &writer, batch_body(&group, chunk)).await?;
    }
    let ready = Instant::now() + Duration::from_secs(60);
    while receivers.iter().any(|r| r.held.load(Ordering::Relaxed) == 0) {
        anyhow::ensure!(Instant::now() < ready, "not every app's first webhook arrived within 60 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut conn = PgConnection::connect(&db.admin_url).await?;
    let mut split: Vec<i64> =
        sqlx::query_scalar("SELECT count(*) FROM delivery_leases GROUP BY holder").fetch_all(&mut conn).await?;
    split.sort_unstable_by(|a, b| b.cmp(a));
    conn.close().await.ok();

    let expected = args.records as usize * args.apps;
    let (cpu0, hub_cpu0) = (cpu_jiffies(), hubs.iter().map(|(c, _)| proc_cpu(c.id())).collect::<Vec<_>>());
    let start = Instant::now();
    open.send(true)?;
    let deadline = start + Duration::from_secs(600);
    while receivers.iter().map(|r| r.records.load(Ordering::Relaxed)).sum::<usize>() < expected {
        anyhow::ensure!(Instant::now() < deadline, "deliveries not done within 600 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu1 = cpu_jiffies();
    let hub_cpu: Vec<f64> = hubs.iter().zip(&hub_cpu0).map(|((c, _), before)| proc_cpu(c.id()) - before).collect();
    let last = receivers.iter().filter_map(|r| *r.last.lock().unwrap()).max().context("no arrival")?;
    let elapsed = last.saturating_duration_since(start);
    let got: usize = receivers.iter().map(|r| r.records.load(Ordering::Relaxed)).sum();
    if got != expected {
        bail!("{got} record deliveries arrived, {expected} expected (duplicates?)");
    }
    let busy = (cpu1.0 - cpu0.0) as f64 / (cpu1.1 - cpu0.1).max(1) as f64;
    let (per_s, text) = rate(expected, elapsed);
    for (mut child, _) in hubs {
        child.kill().await.ok();
    }
    Ok(Run { per_s, text, elapsed, split, busy, hub_cpu })
}

/// One run on a fresh database of its own, dropped afterwards.
async fn measure(base: &str, processes: usize, args: &FanoutArgs) -> Result<Run> {
    let db = TestDb::create(base).await?;
    let run = measure_on(&db, processes, args).await;
    db.drop_database().await?;
    let run = run?;
    println!(
        "  {processes} process(es): {} record deliveries in {:.2?} ({}); leases {:?}; CPU busy {:.0}%; hub CPU s {:.1?}",
        args.records as usize * args.apps,
        run.elapsed,
        run.text,
        run.split,
        run.busy * 100.0,
        run.hub_cpu
    );
    Ok(run)
}

pub async fn run(base: &str, args: &FanoutArgs) -> Result<Vec<Metric>> {
    const S: &str = "pg-fanout";
    println!("{S}: {} apps x {} records, 1 then 2 processes", args.apps, args.records);
    let one = measure(base, 1, args).await?;
    let two = measure(base, 2, args).await?;
    let ratio = two.per_s / one.per_s;
    let describe = |r: &Run| {
        let cpu: Vec<String> = r.hub_cpu.iter().map(|s| format!("{s:.1}")).collect();
        let split: Vec<String> = r.split.iter().map(i64::to_string).collect();
        format!("CPU {:.0}% busy, hub CPU s {}, apps/holder {}", r.busy * 100.0, cpu.join("+"), split.join("+"))
    };
    Ok(vec![
        Metric::info(S, "1 process: deliveries/s", one.text.clone()),
        Metric::new(S, "2 processes: deliveries/s", "-", two.text.clone(), None),
        Metric::new(S, "ratio 2/1", ">= 1.5", format!("{ratio:.2}"), Some(ratio >= 1.5)),
        Metric::info(S, "1 process: window", describe(&one)),
        Metric::info(S, "2 processes: window", describe(&two)),
        Metric::info(S, "apps x records", format!("{} x {}", args.apps, args.records)),
    ])
}
