//! The demo's HTTP client of the hub: the platform API as the admin (one
//! organization, two apps, two installs) and the public API as an app.

use anyhow::{bail, Context};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

/// The organization the demo creates; a file holding only it is a demo's own.
pub const DEMO_ORG: &str = "Chinook Music Store";

/// The entities both demo apps share.
pub const ENTITIES: [&str; 5] = ["organizations", "people", "employees", "items", "invoices"];

/// An app's credentials as the platform hands them out, with its group.
#[derive(Debug, Clone)]
pub struct AppCreds {
    pub api_id: String,
    pub api_key: String,
    pub webhook_secret: String,
    pub group: String,
}

/// What the platform set-up made.
pub struct Platform {
    pub org: String,
    /// Writes and reads everything: the app that imports Chinook.
    pub store: AppCreds,
    /// Reads and subscribes: the app whose webhooks the demo receives.
    pub books: AppCreds,
}

/// A client of one running hub.
#[derive(Clone)]
pub struct Hub {
    pub base: String,
    client: reqwest::Client,
    admin_token: String,
}

impl Hub {
    /// A client of the hub at `base` (`http://host:port`).
    pub fn new(base: String, admin_token: String) -> Self {
        Self { base, client: reqwest::Client::new(), admin_token }
    }

    /// Creates the organization and both apps, and installs them in it.
    /// `hook_url` is where "books" gets its webhooks.
    pub async fn set_up(&self, hook_url: &str) -> anyhow::Result<Platform> {
        let org = self.admin_post("/platform/v1/orgs", json!({ "name": DEMO_ORG })).await?;
        let org = text(&org, "/org/id")?;
        let mut store = self.register("Chinook Store", "store", "rw", None).await?;
        let mut books = self.register("Books", "books", "rs", Some(hook_url)).await?;
        store.group = self.install(&store.api_id, &org).await?;
        books.group = self.install(&books.api_id, &org).await?;
        Ok(Platform { org, store, books })
    }

    async fn register(&self, name: &str, provider: &str, rights: &str, url: Option<&str>) -> anyhow::Result<AppCreds> {
        let entities: Vec<Value> = ENTITIES
            .iter()
            .map(|e| json!({ "entity": e, "read": true, "write": rights.contains('w'), "subscribe": rights.contains('s') }))
            .collect();
        let body = json!({ "name": name, "provider": provider, "notification_url": url, "entities": entities });
        let answer = self.admin_post("/platform/v1/apps", body).await?;
        Ok(AppCreds {
            api_id: text(&answer, "/secrets/api_id")?,
            api_key: text(&answer, "/secrets/api_key")?,
            webhook_secret: text(&answer, "/secrets/webhook_secret")?,
            group: String::new(),
        })
    }

    async fn install(&self, app_id: &str, org: &str) -> anyhow::Result<String> {
        let answer = self.admin_post("/platform/v1/groups", json!({ "app_id": app_id, "org_id": org })).await?;
        text(&answer, "/group/id")
    }

    async fn admin_post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let request = self.client.post(format!("{}{path}", self.base)).bearer_auth(&self.admin_token).json(&body);
        send(request).await.with_context(|| format!("POST {path}"))
    }

    /// A request to the API as `app`, with external ids on.
    pub fn api(&self, app: &AppCreds, method: Method, url: &str) -> RequestBuilder {
        let url = if url.starts_with("http") { url.to_string() } else { format!("{}{url}", self.base) };
        self.client
            .request(method, url)
            .basic_auth(&app.api_id, Some(&app.api_key))
            .header("accept", "application/vnd.api+json")
            .header("connec-external-ids", "true")
    }

    /// Sends `request`; a non-2xx answer is an error carrying the body.
    pub async fn call(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        send(request).await
    }
}

async fn send(request: RequestBuilder) -> anyhow::Result<Value> {
    let response = request.send().await.context("the hub did not answer")?;
    let status = response.status();
    let body = response.text().await.context("reading the answer")?;
    if !status.is_success() {
        bail!("{status}: {}", shorten(&body, 300));
    }
    serde_json::from_str(&body).with_context(|| format!("the answer is not JSON: {}", shorten(&body, 100)))
}

/// The string at JSON `pointer`, or an error naming it.
pub fn text(value: &Value, pointer: &str) -> anyhow::Result<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
        .with_context(|| format!("no {pointer} in {}", shorten(&value.to_string(), 200)))
}

/// At most `max` characters of `s`, for messages.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}
