//! Failures against a real hub: a connector killed mid-import, a change
//! during a long import, an app table that fails to load, a hub outage, and
//! hub changes made while the connector was down.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sharehub_connector::State;
use sharehub_sql_connector::db::Param;
use support::hub::{hub_id, own_id};
use support::*;

const MINUTE: Duration = Duration::from_secs(60);

struct Setup {
    hub: TestHub,
    store: AppCreds,
    books: AppCreds,
    store_group: String,
    books_group: String,
    dir: tempfile::TempDir,
    app_db: sharehub_sql_connector::db::Db,
}

impl Setup {
    async fn new(tracks: i64) -> Self {
        let hub = TestHub::spawn().await;
        let org = hub.create_org("Chinook").await;
        let store = hub.create_app("store").await;
        let books = hub.create_app("books").await;
        let store_group = hub.install(&store, &org).await;
        let books_group = hub.install(&books, &org).await;
        let dir = tempfile::tempdir().unwrap();
        let app_db = chinook_db(&dir.path().join("chinook.db"), 5, tracks, 3).await;
        Self { hub, store, books, store_group, books_group, dir, app_db }
    }

    fn config(&self) -> sharehub_sql_connector::Config {
        connector_config(
            &self.hub,
            &self.store,
            self.dir.path(),
            &self.store_group,
            &self.dir.path().join("chinook.db"),
        )
    }

    async fn state(&self) -> State {
        State::open(&self.dir.path().join("connector-state.db")).await.unwrap()
    }

    async fn items(&self) -> Vec<Value> {
        self.hub.list(&self.books, &self.books_group, "items").await
    }
}

/// The store's external ids of `records`, failing on a duplicate.
fn unique_ids(records: &[Value]) -> HashSet<String> {
    let mut seen = HashSet::new();
    for record in records {
        let id = own_id(record, "store").expect("linked to the store");
        assert!(seen.insert(id.clone()), "{id} twice on the hub");
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_killed_mid_import_resumes_without_duplicates() {
    let s = Setup::new(1500).await;
    let connector = start_connector(&s.hub, &s.store, &s.config()).await;
    let state = s.state().await;
    eventually("part of the import", MINUTE, || async {
        (state.count_links(&s.store_group, "items").await.ok()? >= 200).then_some(())
    })
    .await;
    connector.kill();
    let linked = state.count_links(&s.store_group, "items").await.unwrap();
    assert!(linked < 1500, "killed before the end ({linked} linked)");

    let connector = start_connector(&s.hub, &s.store, &s.config()).await;
    eventually("the rest of the import", Duration::from_secs(180), || async {
        (s.items().await.len() >= 1500).then_some(())
    })
    .await;
    wait_for_sync(&connector, &s.store_group).await;
    let items = s.items().await;
    assert_eq!(items.len(), 1500);
    assert_eq!(unique_ids(&items).len(), 1500);
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_during_a_long_import_is_not_missed() {
    let s = Setup::new(1500).await;
    let connector = start_connector(&s.hub, &s.store, &s.config()).await;
    let state = s.state().await;
    eventually("the import under way", MINUTE, || async {
        (state.count_links(&s.store_group, "items").await.ok()? >= 100).then_some(())
    })
    .await;
    // Track 1 was read already ("1" < "100" in key order); track 999 not yet.
    let sql = "UPDATE tracks SET name = ?1, updated_at = ?2 WHERE id = ?3";
    for id in [1, 999] {
        exec(&s.app_db, sql, &[Param::Text(format!("Renamed {id}")), Param::Text(now_text()), Param::Int(id)]).await;
    }
    for id in [1, 999] {
        eventually("the renamed track", Duration::from_secs(180), || async {
            let items = s.items().await;
            let item = items.iter().find(|i| own_id(i, "store") == Some(format!("tracks:{id}")))?;
            (item["name"] == json!(format!("Renamed {id}"))).then_some(())
        })
        .await;
    }
    assert_eq!(unique_ids(&s.items().await).len(), 1500);
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_fails_to_load_deletes_nothing_and_the_org_pauses_then_resumes() {
    let s = Setup::new(20).await;
    let mut config = s.config();
    config.sync.pause_after_failures = 3;
    let connector = start_connector(&s.hub, &s.store, &config).await;
    wait_for_sync(&connector, &s.store_group).await;
    assert_eq!(s.items().await.len(), 20);

    exec(&s.app_db, "ALTER TABLE tracks RENAME TO tracks_away", &[]).await;
    let state = s.state().await;
    let status = eventually("the organization paused", MINUTE, || async {
        let status = state.status(&s.store_group).await.ok()?;
        status.paused.then_some(status)
    })
    .await;
    assert!(status.last_error.unwrap().contains("tracks"), "the status says what failed");
    let items = s.items().await;
    assert_eq!(items.len(), 20, "nothing archived on the hub");
    assert!(items.iter().all(|i| i["archived"] != json!(true)));

    exec(&s.app_db, "ALTER TABLE tracks_away RENAME TO tracks", &[]).await;
    state.set_paused(&s.store_group, false).await.unwrap();
    wait_for_sync(&connector, &s.store_group).await;
    assert_eq!(count(&s.app_db, "SELECT count(*) FROM tracks").await, 20, "nothing deleted in the app");
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_changes_made_during_a_hub_outage_arrive_when_it_is_back() {
    let mut s = Setup::new(20).await;
    let connector = start_connector(&s.hub, &s.store, &s.config()).await;
    wait_for_sync(&connector, &s.store_group).await;

    s.hub.stop().await;
    exec(&s.app_db, "UPDATE tracks SET name = 'Offline', updated_at = ?1 WHERE id = 7", &[Param::Text(now_text())])
        .await;
    let state = s.state().await;
    eventually("the outage noticed", MINUTE, || async {
        (state.status(&s.store_group).await.ok()?.failures > 0).then_some(())
    })
    .await;
    s.hub.start_again().await;

    eventually("the offline edit on the hub", MINUTE, || async {
        let items = s.items().await;
        let item = items.iter().find(|i| own_id(i, "store").as_deref() == Some("tracks:7"))?;
        (item["name"] == json!("Offline")).then_some(())
    })
    .await;
    assert_eq!(unique_ids(&s.items().await).len(), 20);
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_changes_made_while_the_connector_was_down_arrive_from_the_change_feed() {
    let s = Setup::new(20).await;
    let connector = start_connector(&s.hub, &s.store, &s.config()).await;
    wait_for_sync(&connector, &s.store_group).await;
    connector.stop().await;
    // No webhooks at all from now on: only the change feed can tell.
    s.hub.set_url(&s.store, None).await;

    let items = s.items().await;
    let item = items.iter().find(|i| own_id(i, "store").as_deref() == Some("tracks:5")).unwrap();
    let path = format!("/api/v2/{}/items/{}", s.books_group, hub_id(item));
    let (status, _) = s.hub.call(&s.books, Method::PUT, &path, Some(json!({ "items": { "name": "Edited" } }))).await;
    assert_eq!(status, StatusCode::OK);
    let new = json!({ "items": { "name": "Brand new", "sale_price": { "net_amount": "2.50" } } });
    let (status, _) = s.hub.call(&s.books, Method::POST, &format!("/api/v2/{}/items", s.books_group), Some(new)).await;
    assert_eq!(status, StatusCode::CREATED);

    let config = s.config();
    let connector = sharehub_sql_connector::run::build(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = sharehub_sql_connector::run::start(connector, listener).await.unwrap();
    eventually("both changes in the app", MINUTE, || async {
        let edited = rows(&s.app_db, "SELECT name FROM tracks WHERE id = 5").await;
        let new = rows(&s.app_db, "SELECT unit_price FROM tracks WHERE name = 'Brand new'").await;
        (edited[0]["name"] == json!("Edited") && new.first()?["unit_price"] == json!("2.50")).then_some(())
    })
    .await;
    running.stop().await;
}
