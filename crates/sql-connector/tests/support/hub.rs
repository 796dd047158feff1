//! A real sharehub in-process, as its own test harness starts it.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use sharehub_server::{Config, Running};

pub const ADMIN_TOKEN: &str = "connector-test-admin";

#[derive(Debug, Clone)]
pub struct AppCreds {
    pub api_id: String,
    pub api_key: String,
    pub webhook_secret: String,
    pub provider: String,
}

pub struct TestHub {
    pub base: String,
    pub client: reqwest::Client,
    config: Config,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

impl TestHub {
    pub async fn spawn() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::load(None).expect("default config");
        config.database_url = format!("sqlite://{}", dir.path().join("hub.db").display());
        config.admin_token = Some(sharehub_server::config::Secret::new(ADMIN_TOKEN));
        config.delivery.retry_schedule = "100ms,200ms,300ms,500ms,1s".into();
        config.delivery.jitter = 0.0;
        config.delivery.timeout_secs = 10;
        config.delivery.poll_interval_ms = 100;
        let running = start(&config, "127.0.0.1:0").await;
        let base = format!("http://{}", running.addr);
        Self { base, client: reqwest::Client::new(), config, running: Some(running), _dir: dir }
    }

    /// Stops the hub: an outage.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Starts the hub again on the same database and the same port.
    pub async fn start_again(&mut self) {
        let addr = self.base.trim_start_matches("http://").to_string();
        self.running = Some(start(&self.config, &addr).await);
    }

    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base)).bearer_auth(ADMIN_TOKEN)
    }

    pub async fn create_org(&self, name: &str) -> String {
        let body: Value = self
            .admin(Method::POST, "/platform/v1/orgs")
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["org"]["id"].as_str().expect("org id").to_string()
    }

    /// Registers an app with every right on the Chinook entities.
    pub async fn create_app(&self, provider: &str) -> AppCreds {
        let entities: Vec<Value> = ["organizations", "people", "employees", "items", "invoices", "sales_orders"]
            .iter()
            .map(|e| json!({ "entity": e, "read": true, "write": true, "subscribe": true }))
            .collect();
        let response = self
            .admin(Method::POST, "/platform/v1/apps")
            .json(&json!({ "name": provider, "provider": provider, "notification_url": null, "entities": entities }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "registering {provider}");
        let body: Value = response.json().await.unwrap();
        let s = &body["secrets"];
        AppCreds {
            api_id: s["api_id"].as_str().unwrap().into(),
            api_key: s["api_key"].as_str().unwrap().into(),
            webhook_secret: s["webhook_secret"].as_str().unwrap().into(),
            provider: provider.into(),
        }
    }

    pub async fn set_url(&self, app: &AppCreds, url: Option<&str>) {
        let response = self
            .admin(Method::PATCH, &format!("/platform/v1/apps/{}", app.api_id))
            .json(&json!({ "notification_url": url }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "setting the notification URL: {}", response.status());
    }

    pub async fn install(&self, app: &AppCreds, org: &str) -> String {
        let body: Value = self
            .admin(Method::POST, "/platform/v1/groups")
            .json(&json!({ "app_id": app.api_id, "org_id": org }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["group"]["id"].as_str().expect("group id").to_string()
    }

    pub fn api(&self, app: &AppCreds, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&app.api_id, Some(&app.api_key))
            .header("content-type", "application/vnd.api+json")
            .header("CONNEC-EXTERNAL-IDS", "true")
    }

    pub async fn call(&self, app: &AppCreds, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.api(app, method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Every live record of an entity (following pages).
    pub async fn list(&self, app: &AppCreds, group: &str, entity: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut skip = 0;
        loop {
            let path = format!("/api/v2/{group}/{entity}?$top=1000&$skip={skip}");
            let (status, body) = self.call(app, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "listing {entity}: {body}");
            let page = body[entity].as_array().cloned().unwrap_or_default();
            skip += page.len();
            out.extend(page);
            if body["pagination"]["next"].is_null() {
                return out;
            }
        }
    }

    /// The hub's last change seq for the organization, as `app` sees it.
    pub async fn last_seq(&self, app: &AppCreds, group: &str) -> i64 {
        let mut after = 0;
        loop {
            let path = format!("/api/v2/{group}/changes?after={after}&limit=1000");
            let (_, body) = self.call(app, Method::GET, &path, None).await;
            after = body["next_after"].as_i64().unwrap();
            if body["has_more"] != json!(true) {
                return after;
            }
        }
    }
}

/// The app's own external id in a hub record, if linked.
pub fn own_id(record: &Value, provider: &str) -> Option<String> {
    record["id"].as_array()?.iter().find(|e| e["provider"] == provider)?["id"].as_str().map(String::from)
}

/// The hub's id of a record.
pub fn hub_id(record: &Value) -> String {
    record["id"].as_array().unwrap().iter().find(|e| e["provider"] == "connec").unwrap()["id"].as_str().unwrap().into()
}

async fn start(config: &Config, addr: &str) -> Running {
    let store = sharehub_store::open(&config.database_url).await.expect("open store");
    let mut tries = 0;
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("binding {addr}: {e}"),
        }
    };
    sharehub_server::start(config.clone(), store, listener).await.expect("start hub")
}
