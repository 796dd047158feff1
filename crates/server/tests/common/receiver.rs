//! A real webhook receiver on 127.0.0.1:0 that records every request and
//! answers with the statuses a test scripts (200 once the script runs out).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    pub fn webhook_id(&self) -> String {
        self.headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    /// Every record of the body, with its entity.
    pub fn records(&self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        if let Value::Object(map) = self.json() {
            for (entity, list) in map {
                for record in list.as_array().cloned().unwrap_or_default() {
                    out.push((entity.clone(), record));
                }
            }
        }
        out
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    script: VecDeque<(StatusCode, Vec<(String, String)>)>,
}

/// A webhook listener for tests.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new().route("/hook", post(handle)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    /// The next answers, in order, before it goes back to 200.
    pub fn script(&self, statuses: &[u16]) {
        let mut inner = self.inner.lock().unwrap();
        for s in statuses {
            inner.script.push_back((StatusCode::from_u16(*s).unwrap(), Vec::new()));
        }
    }

    /// One scripted answer with headers (e.g. Retry-After or Location).
    pub fn script_with_headers(&self, status: u16, headers: &[(&str, &str)]) {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.inner.lock().unwrap().script.push_back((StatusCode::from_u16(status).unwrap(), headers));
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Every record received so far (from every request, duplicates kept).
    pub fn records(&self) -> Vec<(String, Value)> {
        self.received().iter().flat_map(Received::records).collect()
    }
}

async fn handle(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> (StatusCode, HeaderMap) {
    let mut inner = inner.lock().unwrap();
    inner.received.push(Received { headers, body });
    let (status, extra) = inner.script.pop_front().unwrap_or((StatusCode::OK, Vec::new()));
    let mut out = HeaderMap::new();
    for (k, v) in extra {
        out.insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
    }
    (status, out)
}
