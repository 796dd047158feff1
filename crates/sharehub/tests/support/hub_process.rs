//! Real `sharehub serve` processes for the fault tests: started on a free
//! port with settings from the environment, logs to a file, killed on drop.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "fault-test-admin-token";

/// One `sharehub serve` process; killed when dropped.
pub struct Hub {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on now: the hub cannot tell us the one it got.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `sharehub serve` on `database_url` with extra `SHAREHUB_*` settings.
pub fn spawn_hub(database_url: &str, log: PathBuf, settings: &[(&str, String)]) -> Hub {
    let port = free_port();
    let out = std::fs::File::create(&log).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sharehub"));
    command
        .arg("serve")
        .env("SHAREHUB_DATABASE_URL", database_url)
        .env("SHAREHUB_BIND", format!("127.0.0.1:{port}"))
        .env("SHAREHUB_ADMIN_TOKEN", ADMIN_TOKEN);
    for (name, value) in settings {
        command.env(name, value);
    }
    let child = command
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("starting sharehub serve");
    Hub { child, base: format!("http://127.0.0.1:{port}"), log }
}

impl Hub {
    /// Waits until `/health/ready` answers 2xx, failing if the process exits.
    pub async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client.get(format!("{}/health/ready", self.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            self.assert_alive();
            assert!(Instant::now() < deadline, "hub not ready:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("hub exited with {status}:\n{}", self.logs());
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Asks for a graceful shutdown and waits for the process to exit.
    pub async fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(status.success());
        let exit = self.exited().await;
        assert!(exit.success(), "a SIGTERMed hub exits cleanly ({exit}):\n{}", self.logs());
    }

    /// Waits for the process to exit without blocking a runtime thread.
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// POSTs to the platform API with the admin token; the answer must be 2xx.
pub async fn admin(client: &reqwest::Client, hub: &Hub, path: &str, body: Value) -> Value {
    let response =
        client.post(format!("{}{path}", hub.base)).bearer_auth(ADMIN_TOKEN).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "POST {path}: {}", response.status());
    response.json().await.unwrap()
}

/// The hub's own id of a record (its `connec` entry).
pub fn hub_id(record: &Value) -> String {
    let entries = record["id"].as_array().expect("an id array");
    let connec = entries.iter().find(|e| e["provider"] == "connec").expect("a connec id");
    connec["id"].as_str().expect("id").to_string()
}

/// The app that writes (no URL) and the group it writes in.
#[derive(Clone)]
pub struct Writer {
    pub api_id: String,
    pub api_key: String,
    pub group: String,
}

/// Registers an app on `organizations` (a reader when it has a URL, a
/// writer otherwise) and installs it in `org`.
pub async fn register(client: &reqwest::Client, hub: &Hub, org: &str, name: &str, url: Option<&str>) -> Writer {
    let reads = url.is_some();
    let access = json!({ "entity": "organizations", "read": true, "write": !reads, "subscribe": reads });
    let app = json!({ "name": name, "provider": name, "notification_url": url, "entities": [access] });
    let created = admin(client, hub, "/platform/v1/apps", app).await;
    let secrets = &created["secrets"];
    let (api_id, api_key) = (secrets["api_id"].as_str().unwrap(), secrets["api_key"].as_str().unwrap());
    let installed = admin(client, hub, "/platform/v1/groups", json!({ "app_id": api_id, "org_id": org })).await;
    Writer { api_id: api_id.into(), api_key: api_key.into(), group: installed["group"]["id"].as_str().unwrap().into() }
}

/// Creates (no `id`) or renames an organization record through `hub`;
/// answers its hub id and new version.
pub async fn write(client: &reqwest::Client, hub: &Hub, w: &Writer, id: Option<&str>, name: &str) -> (String, i64) {
    let (method, path) = match id {
        Some(id) => (Method::PUT, format!("/api/v2/{}/organizations/{id}", w.group)),
        None => (Method::POST, format!("/api/v2/{}/organizations", w.group)),
    };
    let response = client
        .request(method, format!("{}{path}", hub.base))
        .basic_auth(&w.api_id, Some(&w.api_key))
        .header("content-type", "application/vnd.api+json")
        .json(&json!({ "organizations": { "name": name } }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "writing {name}: {}", response.status());
    let body: Value = response.json().await.unwrap();
    let record = &body["organizations"];
    (record["id"].as_str().unwrap().to_string(), record["version"].as_i64().unwrap())
}

/// Serves a webhook receiver on a free loopback port; answers its URL.
/// `app` routes `POST /hook`.
pub async fn serve_receiver(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The organization records `w` lists in its group through `hub` (one page
/// of up to 100, after `query` such as `&$filter=...`).
pub async fn list_organizations(client: &reqwest::Client, hub: &Hub, w: &Writer, query: &str) -> Value {
    client
        .get(format!("{}/api/v2/{}/organizations?$top=100{query}", hub.base, w.group))
        .basic_auth(&w.api_id, Some(&w.api_key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// POSTs an organization named Acme with `w`'s own id `external_id` (under
/// `provider`, `w`'s provider) through `hub`; answers the status and the hub id.
pub async fn post_external_id(
    client: &reqwest::Client,
    hub: &Hub,
    w: &Writer,
    provider: &str,
    external_id: &str,
) -> (u16, String) {
    let record = json!({ "organizations": { "name": "Acme", "id": [{ "provider": provider, "id": external_id }] } });
    let response = client
        .post(format!("{}/api/v2/{}/organizations", hub.base, w.group))
        .basic_auth(&w.api_id, Some(&w.api_key))
        .header("content-type", "application/vnd.api+json")
        .json(&record)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["organizations"]["id"].as_str().unwrap_or_default().to_string())
}
