//! The "books" app's webhook receiver: a real HTTP server on 127.0.0.1:0
//! that checks every delivery as a careful app would (HTTP Basic with its own
//! credentials, the Standard Webhooks signature, a fresh timestamp), drops
//! replays by `webhook-id`, and counts what it got.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;
use sharehub_delivery::signature::{WebhookSecret, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};

/// Oldest (or newest) timestamp accepted, as Standard Webhooks suggests.
const TOLERANCE_SECS: i64 = 5 * 60;

/// What the receiver counted.
#[derive(Default, Clone)]
pub struct Tally {
    /// Every POST, replays and refusals included.
    pub posts: usize,
    /// POSTs whose `webhook-id` had been seen already.
    pub replays: usize,
    /// POSTs refused: bad credentials, signature or timestamp.
    pub refused: usize,
    /// Records of accepted deliveries, per entity.
    pub records: BTreeMap<String, usize>,
    /// Distinct records (by hub id), per entity.
    pub distinct: BTreeMap<String, HashSet<String>>,
    seen: HashSet<String>,
}

impl Tally {
    /// Distinct records received, all entities together.
    pub fn distinct_records(&self) -> usize {
        self.distinct.values().map(HashSet::len).sum()
    }

    /// Records received, replays excluded.
    pub fn received_records(&self) -> usize {
        self.records.values().sum()
    }
}

struct Inner {
    secret: WebhookSecret,
    /// The `Authorization` header the hub must send: the app's own api id and key.
    basic: String,
    tally: Mutex<Tally>,
    /// After the report: print each delivery as it comes.
    live: AtomicBool,
}

/// A bound socket, waiting for the app's secrets: the app must be registered
/// with the URL before its secret exists.
pub struct Bound {
    pub url: String,
    socket: tokio::net::TcpListener,
}

/// Binds 127.0.0.1:0 for the receiver.
pub async fn bind() -> anyhow::Result<Bound> {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the webhook listener")?;
    let url = format!("http://{}/webhooks", socket.local_addr()?);
    Ok(Bound { url, socket })
}

/// A running receiver.
#[derive(Clone)]
pub struct Listener {
    inner: Arc<Inner>,
}

impl Bound {
    /// Serves webhooks for the app with these credentials.
    pub fn serve(self, api_id: &str, api_key: &str, webhook_secret: &str) -> anyhow::Result<Listener> {
        let secret = WebhookSecret::parse(webhook_secret).context("the platform handed out a bad webhook secret")?;
        let inner = Arc::new(Inner {
            secret,
            basic: format!("Basic {}", BASE64.encode(format!("{api_id}:{api_key}"))),
            tally: Mutex::new(Tally::default()),
            live: AtomicBool::new(false),
        });
        let app = Router::new().route("/webhooks", post(receive)).with_state(inner.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(self.socket, app).await {
                tracing::error!("the demo webhook listener stopped: {e}");
            }
        });
        Ok(Listener { inner })
    }
}

impl Listener {
    /// A copy of the counts so far.
    pub fn tally(&self) -> Tally {
        lock(&self.inner.tally).clone()
    }

    /// From now on, print one line per delivery.
    pub fn go_live(&self) {
        self.inner.live.store(true, Ordering::Relaxed);
    }

    /// Waits until `expected` distinct records per entity have arrived, or
    /// `timeout` passed; answers whether they all did.
    pub async fn wait_for(&self, expected: &[(&str, usize)], timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done = {
                let tally = lock(&self.inner.tally);
                expected.iter().all(|(entity, n)| tally.distinct.get(*entity).map_or(0, HashSet::len) >= *n)
            };
            if done {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

fn lock(tally: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    // A panic while counting leaves counts that are still worth printing.
    tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let verdict = check(&inner, &headers, &body);
    let mut tally = lock(&inner.tally);
    tally.posts += 1;
    let webhook_id = match verdict {
        Ok(id) => id,
        Err(why) => {
            tally.refused += 1;
            eprintln!("webhook refused: {why}");
            return StatusCode::UNAUTHORIZED;
        }
    };
    if !tally.seen.insert(webhook_id.clone()) {
        // Already processed: a retry whose first answer got lost. Say yes again.
        tally.replays += 1;
        return StatusCode::OK;
    }
    let counted = count_records(&mut tally, &body);
    if inner.live.load(Ordering::Relaxed) {
        println!("  webhook {webhook_id} -> books: {counted}");
    }
    StatusCode::OK
}

/// The delivery's `webhook-id` when credentials, timestamp and signature hold.
fn check(inner: &Inner, headers: &HeaderMap, body: &[u8]) -> Result<String, &'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("authorization") != Some(inner.basic.as_str()) {
        return Err("wrong HTTP Basic credentials");
    }
    let (Some(id), Some(timestamp), Some(signature)) =
        (header(HEADER_ID), header(HEADER_TIMESTAMP), header(HEADER_SIGNATURE))
    else {
        return Err("missing webhook-id, webhook-timestamp or webhook-signature");
    };
    let timestamp: i64 = timestamp.parse().map_err(|_| "webhook-timestamp is not unix seconds")?;
    let now = jiff::Timestamp::now().as_second();
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err("webhook-timestamp is too far from now");
    }
    if !inner.secret.verify(id, timestamp, body, signature) {
        return Err("the signature does not match");
    }
    Ok(id.to_string())
}

/// Counts the body's records per entity; answers a short summary ("3 people").
fn count_records(tally: &mut Tally, body: &[u8]) -> String {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return "a body that is not a JSON object".into();
    };
    let mut summary = Vec::new();
    for (entity, records) in map {
        let records = records.as_array().map(Vec::as_slice).unwrap_or_default();
        *tally.records.entry(entity.clone()).or_default() += records.len();
        let distinct = tally.distinct.entry(entity.clone()).or_default();
        distinct.extend(records.iter().filter_map(hub_id));
        summary.push(format!("{} {entity}", records.len()));
    }
    summary.join(", ")
}

/// The record's hub id: the `connec` entry of its id array.
fn hub_id(record: &Value) -> Option<String> {
    let entries = record.get("id")?.as_array()?;
    let entry = entries.iter().find(|e| e.get("provider").and_then(Value::as_str) == Some("connec"))?;
    entry.get("id")?.as_str().map(str::to_string)
}
