//! Shared fixtures of the API suite: one organization with one app installed,
//! raw requests, and checks of the contract's error body.
#![allow(dead_code)]

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::common::{AppCreds, TestApp};

/// The entities the default test app may read and write.
pub const ALL_RW: &[(&str, &str)] =
    &[("people", "rw"), ("organizations", "rw"), ("invoices", "rw"), ("items", "rw"), ("company", "rw")];

/// A hub with one organization and one app (provider `store`) installed in it.
pub struct World {
    pub hub: TestApp,
    pub org: String,
    pub app: AppCreds,
    pub group: String,
}

impl World {
    pub async fn new() -> Self {
        Self::on(TestApp::spawn().await).await
    }

    /// Sets up the organization and the app on an already started hub.
    pub async fn on(hub: TestApp) -> Self {
        let org = hub.create_org("Music store").await;
        let app = hub.create_app("store", ALL_RW, None).await;
        let group = hub.install(&app, &org).await;
        Self { hub, org, app, group }
    }

    /// `/api/v2/{group}/{rest}`.
    pub fn path(&self, rest: &str) -> String {
        format!("/api/v2/{}/{rest}", self.group)
    }

    /// A request as the world's app to `/api/v2/{group}/{rest}`.
    pub fn req(&self, method: Method, rest: &str) -> RequestBuilder {
        self.hub.api(&self.app, method, &self.path(rest))
    }

    pub async fn post(&self, entity: &str, record: Value) -> (StatusCode, Value) {
        self.hub.post(&self.app, &self.group, entity, record).await
    }

    /// POSTs a record that must be created; answers it.
    pub async fn create(&self, entity: &str, record: Value) -> Value {
        let (status, body) = self.post(entity, record).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body[entity].clone()
    }

    pub async fn get(&self, rest: &str) -> (StatusCode, Value) {
        self.hub.get(&self.app, &self.path(rest)).await
    }

    pub async fn put(&self, rest: &str, entity: &str, record: Value) -> (StatusCode, Value) {
        send_json(self.req(Method::PUT, rest).json(&json!({ entity: record }))).await
    }

    /// Every live record of `entity` in the organization, following `next`.
    pub async fn list_all(&self, entity: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut url = format!("{}{}?$top=1000", self.hub.base, self.path(entity));
        loop {
            let request = self.hub.client.get(&url).basic_auth(&self.app.api_id, Some(&self.app.api_key));
            let (status, body) = send_json(request).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            out.extend(body[entity].as_array().cloned().unwrap_or_default());
            match body["pagination"]["next"].as_str() {
                Some(next) => url = next.to_string(),
                None => return out,
            }
        }
    }

    /// The whole change feed of the world's group, in the order served.
    pub async fn feed(&self) -> Vec<Value> {
        let (status, body) = self.get("changes?after=0&limit=1000").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["changes"].as_array().cloned().unwrap_or_default()
    }

    /// The caller's own id entry for an external id.
    pub fn own(&self, id: &str) -> Value {
        json!([{ "provider": self.app.provider, "realm": self.group, "id": id }])
    }
}

/// Sends a request; answers (status, JSON body or `Null`).
pub async fn send_json(request: RequestBuilder) -> (StatusCode, Value) {
    let (status, _, bytes) = send_raw(request).await;
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Sends a request; answers status, headers and the raw body bytes.
pub async fn send_raw(request: RequestBuilder) -> (StatusCode, HeaderMap, Vec<u8>) {
    let response = request.send().await.expect("request reaches the hub");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body").to_vec();
    (status, headers, bytes)
}

/// Checks the contract's error body and answers its first entry.
pub fn assert_error(status: StatusCode, body: &Value, expected: u16, code: &str) -> Value {
    assert_eq!(status.as_u16(), expected, "{body}");
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors array in {body}"));
    assert!(!errors.is_empty(), "{body}");
    let first = errors[0].clone();
    assert_eq!(first["status"], Value::String(expected.to_string()), "{body}");
    assert_eq!(first["code"], code, "{body}");
    for field in ["id", "title", "detail"] {
        assert!(first[field].as_str().is_some_and(|s| !s.is_empty()), "{field} missing in {body}");
    }
    first
}

/// Checks a 422 that points at `pointer`.
pub fn assert_invalid_at(status: StatusCode, body: &Value, pointer: &str) {
    assert_error(status, body, 422, "invalid-field");
    let pointers: Vec<&str> =
        body["errors"].as_array().unwrap().iter().filter_map(|e| e["source"]["pointer"].as_str()).collect();
    assert!(pointers.contains(&pointer), "expected pointer {pointer} in {body}");
}

/// A batch of POSTs of `records` to `entity` in `group`.
pub fn batch_of(group: &str, entity: &str, records: impl IntoIterator<Item = Value>) -> Value {
    let ops: Vec<Value> = records
        .into_iter()
        .map(|r| json!({ "method": "post", "url": format!("/api/v2/{group}/{entity}"), "params": { entity: r } }))
        .collect();
    json!({ "sequential": true, "ops": ops })
}
