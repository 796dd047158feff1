//! A hub stopped with SIGTERM closes its SQLite store: the write-ahead log is
//! folded into the database file and removed with its shared-memory index,
//! and what was written reads back from the file alone.

#![cfg(unix)]

#[path = "support/hub_process.rs"]
mod hub_process;

use hub_process::{admin, register, write};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_leaves_only_the_database_file_and_it_holds_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let database = format!("sqlite://{}", dir.path().join("hub.db").display());
    let mut hub = hub_process::spawn_hub(&database, dir.path().join("first.log"), &[]);
    hub.wait_ready(&client).await;
    let org = admin(&client, &hub, "/platform/v1/orgs", json!({ "name": "Clean Exit" })).await;
    let org = org["org"]["id"].as_str().unwrap().to_string();
    let writer = register(&client, &hub, &org, "writer", None).await;
    let (id, _) = write(&client, &hub, &writer, None, "Ærøskøbing Ltd 🚢").await;
    assert!(dir.path().join("hub.db-wal").exists(), "a running hub writes through its log");

    hub.terminate().await;
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("hub.db"))
        .collect();
    assert_eq!(left, ["hub.db"], "after a SIGTERM:\n{}", hub.logs());

    // The file alone holds the write: a new hub reads it back.
    let mut again = hub_process::spawn_hub(&database, dir.path().join("second.log"), &[]);
    again.wait_ready(&client).await;
    let url = format!("{}/api/v2/{}/organizations/{id}", again.base, writer.group);
    let record: serde_json::Value =
        client.get(url).basic_auth(&writer.api_id, Some(&writer.api_key)).send().await.unwrap().json().await.unwrap();
    assert_eq!(record["organizations"]["name"], "Ærøskøbing Ltd 🚢", "{record}");
    again.terminate().await;
}

/// The CLI commands close the store too, also when their output pipe is
/// already closed (`sharehub org list | head -1`).
#[test]
fn cli_commands_leave_only_the_database_file_even_into_a_closed_pipe() {
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("cli.db").display());
    let sharehub = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sharehub"));
        command.env("SHAREHUB_DATABASE_URL", &database).env("RUST_LOG", "warn");
        command
    };
    for name in ["Ålesund AS", "東京商事", "Café 🍰"] {
        let created = sharehub().args(["org", "create", "--name", name]).output().unwrap();
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    }
    for _ in 0..5 {
        let mut list = sharehub().args(["org", "list"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(list.stdout.take()); // the reader is gone before anything is printed
        let output = list.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["cli.db"]);
    }
    let listed = sharehub().args(["org", "list"]).output().unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains("東京商事") && text.contains("Café 🍰") && text.contains("Ålesund AS"), "{text}");
}
