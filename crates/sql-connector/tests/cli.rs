//! The real `sharehub-sql-connector` binary: `chinook-db`, `run` with a
//! configuration file against a real hub, `status`, `pause` and `resume`.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_sharehub-sql-connector");

fn cli(args: &[&str]) -> Value {
    let out = Command::new(BIN).args(args).output().expect("running the connector binary");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Kills the child when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Writes a configuration for `store` in `group` to `dir`, listening on a free port.
fn write_config(hub: &TestHub, store: &AppCreds, group: &str, dir: &std::path::Path, entities: &str) -> (String, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
state = "state.db"
mapping = "{mapping}"
[hub]
url = "{url}"
api_id = "{id}"
api_key = "{key}"
webhook_secret = "{secret}"
provider = "store"
[sync]
poll_interval = 200
page_size = 50
[[orgs]]
group_id = "{group}"
database = "sqlite://chinook.db"
{entities}
"#,
        mapping = chinook_mapping().display(),
        url = hub.base,
        id = store.api_id,
        key = store.api_key,
        secret = store.webhook_secret,
    );
    let path = dir.join("connector.toml");
    std::fs::write(&path, config).unwrap();
    (path.to_str().unwrap().to_string(), port)
}

fn spawn_run(config: &str, dir: &std::path::Path) -> Child {
    let child = Command::new(BIN)
        .args(["run", "--config", config])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Child(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_process_killed_mid_import_resumes_without_duplicates() {
    let hub = TestHub::spawn().await;
    let org = hub.create_org("Chinook").await;
    let store = hub.create_app("store").await;
    let group = hub.install(&store, &org).await;
    let dir = tempfile::tempdir().unwrap();
    cli(&["chinook-db", dir.path().join("chinook.db").to_str().unwrap()]);
    let (config, port) = write_config(&hub, &store, &group, dir.path(), "");

    let mut first = spawn_run(&config, dir.path());
    let state = sharehub_connector::State::open(&dir.path().join("state.db")).await.unwrap();
    eventually("part of the tracks pushed", Duration::from_secs(60), || async {
        (state.count_links(&group, "items").await.ok()? >= 300).then_some(())
    })
    .await;
    first.0.kill().unwrap(); // SIGKILL: no shutdown of any kind
    first.0.wait().unwrap();
    assert!(state.count_links(&group, "items").await.unwrap() < 3503, "killed mid-import");

    let _second = spawn_run(&config, dir.path());
    let status_url = format!("http://127.0.0.1:{port}/status");
    eventually("the import done", Duration::from_secs(120), || async {
        let status: Value = reqwest::get(&status_url).await.ok()?.json().await.ok()?;
        (status["organizations"][0]["import_done"] == Value::Bool(true)).then_some(())
    })
    .await;
    let items = hub.list(&store, &group, "items").await;
    assert_eq!(items.len(), 3503);
    let ids: std::collections::HashSet<_> =
        items.iter().map(|i| support::hub::own_id(i, "store").expect("linked")).collect();
    assert_eq!(ids.len(), 3503, "one hub item per track");
    assert_eq!(hub.list(&store, &group, "invoices").await.len(), 412);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_imports_reports_pauses_and_resumes() {
    let hub = TestHub::spawn().await;
    let org = hub.create_org("Chinook").await;
    let store = hub.create_app("store").await;
    let group = hub.install(&store, &org).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chinook.db");
    cli(&["chinook-db", db.to_str().unwrap()]);

    let entities = "[orgs.entities]\ncustomers = \"both\"\nemployees = \"push\"";
    let (config_arg, port) = write_config(&hub, &store, &group, dir.path(), entities);
    hub.set_url(&store, Some(&format!("http://127.0.0.1:{port}/webhooks"))).await;

    let config_arg = config_arg.as_str();
    let _child = spawn_run(config_arg, dir.path());
    let status_url = format!("http://127.0.0.1:{port}/status");
    eventually("the import done", Duration::from_secs(60), || async {
        let status: Value = reqwest::get(&status_url).await.ok()?.json().await.ok()?;
        (status["organizations"][0]["import_done"] == Value::Bool(true)).then_some(())
    })
    .await;
    assert_eq!(hub.list(&store, &group, "people").await.len(), 59);
    assert_eq!(hub.list(&store, &group, "employees").await.len(), 8);
    assert!(hub.list(&store, &group, "items").await.is_empty(), "tracks are not in the entities table");

    let report = cli(&["status", "--config", config_arg]);
    assert_eq!(report[0]["status"]["paused"], Value::Bool(false));
    assert!(report[0]["status"]["last_success"].is_string());
    assert_eq!(cli(&["pause", "--config", config_arg, &group])["paused"], Value::Bool(true));
    assert_eq!(cli(&["status", "--config", config_arg])[0]["status"]["paused"], Value::Bool(true));
    assert_eq!(cli(&["resume", "--config", config_arg, &group])["paused"], Value::Bool(false));
}
