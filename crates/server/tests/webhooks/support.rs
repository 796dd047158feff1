//! Setup and small helpers shared by the webhook tests: a writing app, a
//! subscribed reading app with a receiver, record writes, and the platform's
//! delivery views.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::receiver::{Received, Receiver};
use crate::common::{eventually, AppCreds, TestApp};

/// How long the tests wait for something that should happen promptly.
pub const SOON: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched: longer than the whole test retry schedule.
pub const QUIET: Duration = Duration::from_millis(800);

/// One organization, an app that writes (no URL) and an app that reads and
/// subscribed to `organizations` and `people`, with its receiver.
pub struct Setup {
    pub hub: TestApp,
    pub org: String,
    pub writer: AppCreds,
    pub writer_group: String,
    pub reader: AppCreds,
    pub reader_group: String,
    pub receiver: Receiver,
}

pub async fn setup() -> Setup {
    setup_with(|_| {}).await
}

pub async fn setup_with(adjust: impl FnOnce(&mut sharehub_server::Config)) -> Setup {
    let hub = TestApp::spawn_with(adjust).await;
    let org = hub.create_org("Acme").await;
    let receiver = Receiver::start().await;
    let writer = hub.create_app("writer", &[("organizations", "rw"), ("people", "rw"), ("items", "rw")], None).await;
    let reader = hub.create_app("reader", &[("organizations", "rs"), ("people", "rs")], Some(&receiver.url)).await;
    let writer_group = hub.install(&writer, &org).await;
    let reader_group = hub.install(&reader, &org).await;
    Setup { hub, org, writer, writer_group, reader, reader_group, receiver }
}

impl Setup {
    /// Creates an organization record named `name` as the writer; answers its hub id.
    pub async fn create_org_record(&self, name: &str) -> String {
        create(&self.hub, &self.writer, &self.writer_group, "organizations", json!({ "name": name })).await
    }

    /// Renames an organization record as the writer; answers its new version.
    pub async fn rename(&self, id: &str, name: &str) -> i64 {
        let (status, body) =
            put(&self.hub, &self.writer, &self.writer_group, "organizations", id, json!({ "name": name })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["organizations"]["version"].as_i64().expect("version")
    }
}

/// Creates a record; answers its hub id.
pub async fn create(hub: &TestApp, app: &AppCreds, group: &str, entity: &str, record: Value) -> String {
    let (status, body) = hub.post(app, group, entity, record).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body[entity]["id"].as_str().expect("id").to_string()
}

pub async fn put(
    hub: &TestApp,
    app: &AppCreds,
    group: &str,
    entity: &str,
    id: &str,
    record: Value,
) -> (StatusCode, Value) {
    let path = format!("/api/v2/{group}/{entity}/{id}");
    let response = hub.api(app, Method::PUT, &path).json(&json!({ entity: record })).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub async fn delete(hub: &TestApp, app: &AppCreds, group: &str, entity: &str, id: &str) -> StatusCode {
    hub.api(app, Method::DELETE, &format!("/api/v2/{group}/{entity}/{id}")).send().await.unwrap().status()
}

/// The hub id of a record as a webhook shows it (an id array, external ids on).
pub fn hub_id(record: &Value) -> String {
    match &record["id"] {
        Value::String(id) => id.clone(),
        Value::Array(entries) => entries
            .iter()
            .find(|e| e["provider"] == "connec")
            .and_then(|e| e["id"].as_str())
            .expect("a connec entry in the id array")
            .to_string(),
        other => panic!("unexpected id {other}"),
    }
}

/// Every version of record `id` the receiver got, in the order it got them.
pub fn versions_of(receiver: &Receiver, id: &str) -> Vec<i64> {
    receiver
        .records()
        .iter()
        .filter(|(_, r)| hub_id(r) == id)
        .map(|(_, r)| r["version"].as_i64().expect("version"))
        .collect()
}

/// Waits until the receiver got record `id` in a version at least `version`; answers it.
pub async fn wait_for_version(receiver: &Receiver, id: &str, version: i64) -> Value {
    eventually(SOON, || async {
        receiver
            .records()
            .into_iter()
            .map(|(_, r)| r)
            .find(|r| hub_id(r) == id && r["version"].as_i64() >= Some(version))
    })
    .await
}

/// Waits until record `id` arrived; answers it.
pub async fn wait_for_record(receiver: &Receiver, id: &str) -> Value {
    wait_for_version(receiver, id, 1).await
}

/// Waits until the receiver got at least `n` requests; answers them.
pub async fn wait_for_requests(receiver: &Receiver, n: usize) -> Vec<Received> {
    eventually(SOON, || async { Some(receiver.received()).filter(|r| r.len() >= n) }).await
}

/// Waits [`QUIET`], then checks the receiver got exactly `n` requests in all.
pub async fn assert_no_more_requests(receiver: &Receiver, n: usize) {
    tokio::time::sleep(QUIET).await;
    assert_eq!(receiver.received().len(), n, "unexpected extra webhooks: {:#?}", bodies(receiver));
}

/// The bodies received, as text, for failure messages.
pub fn bodies(receiver: &Receiver) -> Vec<String> {
    receiver.received().iter().map(|r| String::from_utf8_lossy(&r.body).into_owned()).collect()
}

async fn admin_json(hub: &TestApp, method: Method, path: &str) -> Value {
    let response = hub.admin(method, path).send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

/// The delivery log of an app (newest first).
pub async fn deliveries(hub: &TestApp, app: &AppCreds) -> Vec<Value> {
    let body = admin_json(hub, Method::GET, &format!("/platform/v1/apps/{}/deliveries", app.api_id)).await;
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

/// The log entries of one message, oldest attempt first.
pub async fn attempts_of(hub: &TestApp, app: &AppCreds, webhook_id: &str) -> Vec<Value> {
    let mut found: Vec<Value> =
        deliveries(hub, app).await.into_iter().filter(|d| d["webhook_id"] == webhook_id).collect();
    found.sort_by_key(|d| d["attempt"].as_i64());
    found
}

/// Waits until the log holds `n` attempts of one message (a receiver sees a
/// request before the hub logs its answer); answers them, oldest first.
pub async fn logged_attempts(hub: &TestApp, app: &AppCreds, webhook_id: &str, n: usize) -> Vec<Value> {
    eventually(SOON, || async { Some(attempts_of(hub, app, webhook_id).await).filter(|log| log.len() >= n) }).await
}

pub async fn dead_letters(hub: &TestApp, app: &AppCreds) -> Vec<Value> {
    let body = admin_json(hub, Method::GET, &format!("/platform/v1/apps/{}/dead-letters", app.api_id)).await;
    body["dead_letters"].as_array().cloned().unwrap_or_default()
}

/// The app as the platform shows it.
pub async fn app_info(hub: &TestApp, app: &AppCreds) -> Value {
    admin_json(hub, Method::GET, &format!("/platform/v1/apps/{}", app.api_id)).await["app"].clone()
}

/// Sets `endpoint_enabled` of an app.
pub async fn set_endpoint_enabled(hub: &TestApp, app: &AppCreds, enabled: bool) {
    let path = format!("/platform/v1/apps/{}", app.api_id);
    let response = hub.admin(Method::PATCH, &path).json(&json!({ "endpoint_enabled": enabled })).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// An endpoint that accepts connections and never answers; answers its URL
/// and how many connections it accepted.
pub async fn hanging_endpoint() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, accepted)
}
