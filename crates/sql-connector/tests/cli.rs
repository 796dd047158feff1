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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_imports_reports_pauses_and_resumes() {
    let hub = TestHub::spawn().await;
    let org = hub.create_org("Chinook").await;
    let store = hub.create_app("store").await;
    let group = hub.install(&store, &org).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chinook.db");
    cli(&["chinook-db", db.to_str().unwrap()]);

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config_path = dir.path().join("connector.toml");
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
page_size = 200
[[orgs]]
group_id = "{group}"
database = "sqlite://chinook.db"
[orgs.entities]
customers = "both"
employees = "push"
"#,
        mapping = chinook_mapping().display(),
        url = hub.base,
        id = store.api_id,
        key = store.api_key,
        secret = store.webhook_secret,
    );
    std::fs::write(&config_path, config).unwrap();
    hub.set_url(&store, Some(&format!("http://127.0.0.1:{port}/webhooks"))).await;

    let config_arg = config_path.to_str().unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config", config_arg])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _child = Child(child);
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
