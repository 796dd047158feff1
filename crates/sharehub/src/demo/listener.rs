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

/// A running receiver.
#[derive(Clone)]
pub struct Listener {
    pub url: String,
    inner: Arc<Inner>,
}

impl Listener {
    /// Binds 127.0.0.1:0. The secret and credentials come later
    /// ([`Listener::arm`]): the app must exist first, and it needs this URL.
    pub async fn start() -> anyhow::Result<(Self, tokio::sync::oneshot::Sender<Armed>)> {
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the webhook listener")?;
        let url = format!("http://{}/webhooks", socket.local_addr()?);
        let (arm, armed) = tokio::sync::oneshot::channel::<Armed>();
        let listener_url = url.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let Ok(armed) = armed.await else { return };
            let inner = Arc::new(Inner {
                secret: armed.secret,
                basic: format!("Basic {}", BASE64.encode(format!("{}:{}", armed.api_id, armed.api_key))),
                tally: Mutex::new(Tally::default()),
                live: AtomicBool::new(false),
            });
            let _ = ready_tx.send(inner.clone());
            let app = Router::new().route("/webhooks", post(receive)).with_state(inner);
            if let Err(e) = axum::serve(socket, app).await {
                tracing::error!("the demo webhook listener stopped: {e}");
            }
        });
        let pending = Self { url: listener_url, inner: Arc::new(Inner::placeholder()) };
        Ok((pending.with_ready(ready_rx), arm))
    }

    fn with_ready(mut self, ready: tokio::sync::oneshot::Receiver<Arc<Inner>>) -> Self {
        self.inner = Arc::new(Inner::placeholder());
        self.ready = Some(ready);
        self
    }
}
