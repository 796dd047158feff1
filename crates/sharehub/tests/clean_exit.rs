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
