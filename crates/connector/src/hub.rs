//! The hub's API as the connector uses it: batch upserts with an
//! `Idempotency-Key`, reading one record, linking an id, the change feed.
//! Outages (no answer, 5xx, 408, 429) are retried with a doubling backoff;
//! a refusal (other 4xx) is answered at once.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Error, Result};

/// Where the hub is and who the connector is to it.
#[derive(Debug, Clone)]
pub struct HubCredentials {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub api_id: String,
    pub api_key: String,
    /// The app's provider name: the `provider` of its id entries.
    pub provider: String,
}

/// One operation of a batch and its answer.
#[derive(Debug, Clone)]
pub struct BatchResult {
    pub status: u16,
    pub body: Value,
}

/// One entry of the change feed.
#[derive(Debug, Clone, Deserialize)]
pub struct Change {
    pub seq: i64,
    pub entity: String,
    pub id: String,
    pub version: i64,
    #[serde(default)]
    pub own: bool,
    #[serde(default)]
    pub record: Value,
}

/// A page of the change feed.
#[derive(Debug, Clone, Deserialize)]
pub struct FeedPage {
    pub changes: Vec<Change>,
    pub next_after: i64,
    pub has_more: bool,
}

/// A client of the hub's API.
#[derive(Clone)]
pub struct Hub {
    creds: HubCredentials,
    http: reqwest::Client,
    /// Tries per request for outages (1 = no retry).
    attempts: u32,
    backoff: Duration,
}

impl Hub {
    pub fn new(creds: HubCredentials, attempts: u32, backoff: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        Self { creds, http, attempts: attempts.max(1), backoff }
    }

    pub fn provider(&self) -> &str {
        &self.creds.provider
    }

    /// Upserts many records of one group in one call. The key makes a retry
    /// after a lost answer replay the first answer instead of writing twice.
    pub async fn batch(&self, ops: Vec<Value>, idempotency_key: &str) -> Result<Vec<BatchResult>> {
        let body = json!({ "sequential": true, "ops": ops });
        let answer = self
            .send(|| self.request(Method::POST, "/batch").header("Idempotency-Key", idempotency_key).json(&body))
            .await?;
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        Ok(results
            .into_iter()
            .map(|r| BatchResult { status: r["status"].as_u64().unwrap_or(0) as u16, body: r["body"].clone() })
            .collect())
    }

    /// The provider the hub knows this connector's app by in `group`
    /// (empty from a hub that does not say).
    pub async fn provider_in(&self, group: &str) -> Result<String> {
        let body = self.send(|| self.request(Method::GET, &format!("/api/v2/{group}"))).await?;
        Ok(body["provider"].as_str().unwrap_or_default().to_string())
    }

    /// One record by hub id; `None` when the hub has none.
    pub async fn record(&self, group: &str, entity: &str, hub_id: &str) -> Result<Option<Value>> {
        let path = format!("/api/v2/{group}/{entity}/{hub_id}");
        match self.send(|| self.request(Method::GET, &path)).await {
            Ok(body) => Ok(Some(body[entity].clone())),
            Err(Error::HubRefused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Links the connector's external id to a hub record; answers the record.
    pub async fn link(&self, group: &str, entity: &str, hub_id: &str, external_id: &str) -> Result<Value> {
        let path = format!("/api/v2/{group}/{entity}/{hub_id}");
        let body = json!({ entity: { "id": [{ "provider": self.creds.provider, "id": external_id }] } });
        let answer = self.send(|| self.request(Method::PUT, &path).json(&body)).await?;
        Ok(answer[entity].clone())
    }

    /// The organization's changes after `after`.
    pub async fn changes(&self, group: &str, after: i64, limit: usize) -> Result<FeedPage> {
        let path = format!("/api/v2/{group}/changes?after={after}&limit={limit}");
        let body = self.send(|| self.request(Method::GET, &path)).await?;
        serde_json::from_value(body).map_err(|e| Error::HubUnavailable(format!("unreadable change feed: {e}")))
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.creds.url.trim_end_matches('/')))
            .basic_auth(&self.creds.api_id, Some(&self.creds.api_key))
            .header("content-type", "application/vnd.api+json")
            .header("accept", "application/vnd.api+json")
            .header("CONNEC-EXTERNAL-IDS", "true")
    }

    /// Sends a request, retrying outages with a doubling pause.
    async fn send(&self, build: impl Fn() -> RequestBuilder) -> Result<Value> {
        let mut pause = self.backoff;
        let mut attempt = 1;
        loop {
            match once(build()).await {
                Err(Error::HubUnavailable(why)) if attempt < self.attempts => {
                    tracing::warn!(attempt, %why, "hub unavailable; retrying in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

async fn once(request: RequestBuilder) -> Result<Value> {
    let response = request.send().await.map_err(|e| Error::HubUnavailable(e.to_string()))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| Error::HubUnavailable(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_str(&text).map_err(|e| Error::HubUnavailable(format!("unreadable answer: {e}")));
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT || status == StatusCode::TOO_MANY_REQUESTS {
        return Err(Error::HubUnavailable(format!("{status}: {text}")));
    }
    Err(Error::HubRefused { status: status.as_u16(), detail: text })
}
