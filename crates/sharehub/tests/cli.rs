//! The built binary's own commands: `serve --config FILE` takes its settings
//! from the file, and the platform commands (`app create`, `install`,
//! `app rotate-key`, `app rotate-secret`) work on the database of a running
//! hub, which honours what they changed.

#[path = "support/hub_process.rs"]
mod hub_process;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use hub_process::{free_port, Hub};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// `sharehub` with no `SHAREHUB_*` setting from the test's environment, so
/// only the file or the flags can configure it.
fn sharehub() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sharehub"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SHAREHUB_")) {
        command.env_remove(name);
    }
    command.env("RUST_LOG", "warn");
    command
}

/// Runs a CLI command on `database`; it must succeed and print JSON.
fn cli(database: &str, args: &[&str]) -> Value {
    let output = sharehub().arg("--database").arg(database).args(args).output().expect("running sharehub");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sharehub {args:?} failed: {stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("sharehub {args:?} printed no JSON ({e}): {stderr}"))
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Starts `sharehub serve` with `extra` `SHAREHUB_*` settings (no others).
fn serve(dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Hub {
    let log = dir.join("serve.log");
    let out = std::fs::File::create(&log).unwrap();
    let mut command = sharehub();
    // In the temp dir, so a default path lands there and not in the tree.
    command.current_dir(dir).arg("serve").args(args);
    for (name, value) in extra {
        command.env(name, value);
    }
    let child =
        command.stdout(Stdio::from(out.try_clone().unwrap())).stderr(Stdio::from(out)).spawn().expect("starting");
    Hub { child, base: String::new(), log }
}

/// Retries `check` every 100 ms until it holds, failing after `timeout`.
async fn within(timeout: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_bind_database_url_and_admin_token_from_its_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let database = dir.path().join("from-the-file.db");
    let file = dir.path().join("sharehub.toml");
    let text = format!(
        "bind = \"127.0.0.1:{port}\"\ndatabase_url = \"{}\"\nadmin_token = \"token-from-the-file\"\n",
        sqlite_url(&database)
    );
    std::fs::write(&file, text).unwrap();

    let mut hub = serve(dir.path(), &["--config", file.to_str().unwrap()], &[]);
    hub.base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    hub.wait_ready(&client).await;

    let orgs = format!("{}/platform/v1/orgs", hub.base);
    let refused = client.get(&orgs).bearer_auth(hub_process::ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "only the file's token opens the admin API");
    let created = client.post(&orgs).bearer_auth("token-from-the-file").json(&json!({ "name": "Filed" })).send();
    let created = created.await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    hub.terminate().await;

    // It was written to the file's database.
    assert!(database.exists(), "{}", hub.logs());
    let listed = cli(&sqlite_url(&database), &["org", "list"]);
    let names: Vec<&str> = listed["orgs"].as_array().unwrap().iter().filter_map(|o| o["name"].as_str()).collect();
    assert_eq!(names, ["Filed"]);
}

/// A running hub on a SQLite file of `dir`, polling for new apps often.
async fn running_hub(dir: &Path, client: &reqwest::Client) -> (Hub, String) {
    let database = sqlite_url(&dir.join("hub.db"));
    let port = free_port().to_string();
    let settings = [
        ("SHAREHUB_DATABASE_URL", database.as_str()),
        ("SHAREHUB_BIND", &format!("127.0.0.1:{port}")),
        ("SHAREHUB_ADMIN_TOKEN", hub_process::ADMIN_TOKEN),
        ("SHAREHUB_DELIVERY__POLL_INTERVAL_MS", "100"),
        ("SHAREHUB_DELIVERY__RETRY_SCHEDULE", "100ms,200ms"),
    ];
    let mut hub = serve(dir, &[], &settings);
    hub.base = format!("http://127.0.0.1:{port}");
    hub.wait_ready(client).await;
    (hub, database)
}

/// An API request as an app with `key`.
fn api(
    client: &reqwest::Client,
    hub: &Hub,
    method: Method,
    path: &str,
    api_id: &str,
    key: &str,
) -> reqwest::RequestBuilder {
    client
        .request(method, format!("{}{path}", hub.base))
        .basic_auth(api_id, Some(key))
        .header("content-type", "application/vnd.api+json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_create_install_and_rotate_key_from_the_cli_apply_to_a_running_hub() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (mut hub, database) = running_hub(dir.path(), &client).await;

    let org = cli(&database, &["org", "create", "--name", "Acme"])["org"]["id"].as_str().unwrap().to_string();
    let created =
        cli(&database, &["app", "create", "--name", "Shop", "--provider", "shop", "--entities", "people:rws,items:r"]);
    let rights: Vec<(String, bool, bool, bool)> = created["app"]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let flag = |name: &str| e[name].as_bool().unwrap();
            (e["entity"].as_str().unwrap().to_string(), flag("read"), flag("write"), flag("subscribe"))
        })
        .collect();
    assert_eq!(rights, [("people".into(), true, true, true), ("items".into(), true, false, false)], "{created}");
    let api_id = created["secrets"]["api_id"].as_str().unwrap().to_string();
    let old_key = created["secrets"]["api_key"].as_str().unwrap().to_string();
    let group =
        cli(&database, &["install", "--app", &api_id, "--org", &org])["group"]["id"].as_str().unwrap().to_string();

    // The rights as given: people written, items only read.
    let people = format!("/api/v2/{group}/people");
    let post = api(&client, &hub, Method::POST, &people, &api_id, &old_key)
        .json(&json!({ "people": { "first_name": "Ann" } }));
    assert_eq!(post.send().await.unwrap().status(), StatusCode::CREATED);
    let items = format!("/api/v2/{group}/items");
    let read = api(&client, &hub, Method::GET, &items, &api_id, &old_key).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let write = api(&client, &hub, Method::POST, &items, &api_id, &old_key).json(&json!({ "items": { "name": "X" } }));
    assert_eq!(write.send().await.unwrap().status(), StatusCode::FORBIDDEN);

    let rotated = cli(&database, &["app", "rotate-key", &api_id]);
    let new_key = rotated["api_key"].as_str().unwrap().to_string();
    assert_ne!(new_key, old_key);
    // Behind the hub's back: its cache of apps keeps the old key for up to ~2 s.
    let status = |key: String| {
        let request = api(&client, &hub, Method::GET, &people, &api_id, &key);
        async move { request.send().await.unwrap().status() }
    };
    within(Duration::from_secs(6), "the old key refused and the new one taken", async || {
        status(old_key.clone()).await == StatusCode::UNAUTHORIZED && status(new_key.clone()).await == StatusCode::OK
    })
    .await;
    // For good: the old key does not come back once the cache turns over again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(status(old_key.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(status(new_key.clone()).await, StatusCode::OK);
    hub.terminate().await;
}

/// A webhook receiver that answers 200 and keeps every request.
async fn receiver() -> (String, Arc<Mutex<Vec<(HeaderMap, Bytes)>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let keep = keep.clone();
            async move { keep.lock().unwrap().push((headers, body)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_app_rotate_secret_webhooks_verify_with_the_new_secret_only() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (mut hub, database) = running_hub(dir.path(), &client).await;
    let (url, got) = receiver().await;

    let org = cli(&database, &["org", "create", "--name", "Acme"])["org"]["id"].as_str().unwrap().to_string();
    let writer = cli(&database, &["app", "create", "--name", "W", "--provider", "w", "--entities", "organizations:rw"]);
    let reader = cli(
        &database,
        &["app", "create", "--name", "R", "--provider", "r", "--url", &url, "--entities", "organizations:rs"],
    );
    let (writer_id, writer_key) =
        (writer["secrets"]["api_id"].as_str().unwrap(), writer["secrets"]["api_key"].as_str().unwrap());
    let reader_id = reader["secrets"]["api_id"].as_str().unwrap().to_string();
    let old_secret = reader["secrets"]["webhook_secret"].as_str().unwrap().to_string();
    let group =
        cli(&database, &["install", "--app", writer_id, "--org", &org])["group"]["id"].as_str().unwrap().to_string();
    cli(&database, &["install", "--app", &reader_id, "--org", &org]);

    let path = format!("/api/v2/{group}/organizations");
    let write = async |name: &str| {
        let request = api(&client, &hub, Method::POST, &path, writer_id, writer_key);
        let response = request.json(&json!({ "organizations": { "name": name } })).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    };
    // The webhook that carries `name`.
    let webhook_of = async |name: &str| {
        let mut found = None;
        within(Duration::from_secs(10), &format!("a webhook with {name}"), async || {
            let got = got.lock().unwrap();
            found = got.iter().find(|(_, body)| String::from_utf8_lossy(body).contains(name)).cloned();
            found.is_some()
        })
        .await;
        found.unwrap()
    };
    let old = standardwebhooks::Webhook::new(&old_secret).unwrap();

    write("Before rotation").await;
    let (headers, body) = webhook_of("Before rotation").await;
    old.verify(&body, &headers).expect("signed with the secret app create printed");

    let rotated = cli(&database, &["app", "rotate-secret", &reader_id]);
    let new_secret = rotated["webhook_secret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("whsec_"), "{rotated}");
    assert_ne!(new_secret, old_secret);
    write("After rotation").await;
    let (headers, body) = webhook_of("After rotation").await;
    let new = standardwebhooks::Webhook::new(&new_secret).unwrap();
    new.verify(&body, &headers).expect("signed with the rotated secret");
    assert!(old.verify(&body, &headers).is_err(), "the old secret must no longer verify");
    hub.terminate().await;
}
