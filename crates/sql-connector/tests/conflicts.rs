//! Conflicts and webhooks against a real hub: the newer change wins unless
//! the hub has preemption; signed webhooks are checked, handled once per
//! webhook id, and a stale version is dropped.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sharehub_connector::OrgSettings;
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
    async fn new() -> Self {
        let hub = TestHub::spawn().await;
        let org = hub.create_org("Chinook").await;
        let store = hub.create_app("store").await;
        let books = hub.create_app("books").await;
        let store_group = hub.install(&store, &org).await;
        let books_group = hub.install(&books, &org).await;
        let dir = tempfile::tempdir().unwrap();
        let app_db = chinook_db(&dir.path().join("chinook.db"), 3, 10, 1).await;
        Self { hub, store, books, store_group, books_group, dir, app_db }
    }

    fn config(&self, hub_preemption: bool) -> sharehub_sql_connector::Config {
        let mut config = connector_config(
            &self.hub,
            &self.store,
            self.dir.path(),
            &self.store_group,
            &self.dir.path().join("chinook.db"),
        );
        config.orgs[0].settings = OrgSettings { hub_preemption, ..OrgSettings::new(&self.store_group) };
        config
    }

    async fn item(&self, track: i64) -> Value {
        let items = self.hub.list(&self.store, &self.store_group, "items").await;
        items.into_iter().find(|i| own_id(i, "store") == Some(format!("tracks:{track}"))).unwrap()
    }

    async fn track_name(&self, track: i64) -> Value {
        rows(&self.app_db, &format!("SELECT name FROM tracks WHERE id = {track}")).await.remove(0)["name"].clone()
    }

    /// While the connector is down: books renames the item, then (or first)
    /// the app renames the track. Answers once both sides agree.
    async fn conflict(&self, app_first: bool, hub_preemption: bool) -> Value {
        let connector = start_connector(&self.hub, &self.store, &self.config(hub_preemption)).await;
        wait_for_sync(&connector, &self.store_group).await;
        connector.stop().await;
        self.hub.set_url(&self.store, None).await;

        let path = format!("/api/v2/{}/items/{}", self.books_group, hub_id(&self.item(3).await));
        let hub_edit = || async {
            let body = json!({ "items": { "name": "Hub side" } });
            assert_eq!(self.hub.call(&self.books, Method::PUT, &path, Some(body)).await.0, StatusCode::OK);
        };
        let app_edit = || async {
            let sql = "UPDATE tracks SET name = 'App side', updated_at = ?1 WHERE id = 3";
            exec(&self.app_db, sql, &[Param::Text(now_text())]).await;
        };
        if app_first {
            app_edit().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            hub_edit().await;
        } else {
            hub_edit().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
            app_edit().await;
        }

        let connector = start_connector(&self.hub, &self.store, &self.config(hub_preemption)).await;
        let agreed = eventually("both sides agree", MINUTE, || async {
            let (app, hub) = (self.track_name(3).await, self.item(3).await["name"].clone());
            (app == hub).then_some(app)
        })
        .await;
        synced_after(&connector, &self.store_group, &now_text()).await;
        assert_eq!(self.track_name(3).await, agreed, "and stay agreed");
        connector.stop().await;
        agreed
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newer_change_wins_a_conflict() {
    assert_eq!(Setup::new().await.conflict(false, false).await, json!("App side"), "the app's later edit");
    assert_eq!(Setup::new().await.conflict(true, false).await, json!("Hub side"), "the hub's later edit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hub_preemption_the_hub_wins_a_conflict() {
    assert_eq!(Setup::new().await.conflict(false, true).await, json!("Hub side"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_handled_once_and_stale_versions_dropped() {
    let s = Setup::new().await;
    let connector = start_connector(&s.hub, &s.store, &s.config(false)).await;
    wait_for_sync(&connector, &s.store_group).await;
    let url = format!("http://{}/webhooks", connector.addr);
    let item = s.item(2).await;
    let version = item["version"].as_i64().unwrap();
    let delivery = |name: &str, version: i64| {
        let mut record = item.clone();
        record["name"] = json!(name);
        record["version"] = json!(version);
        serde_json::to_vec(&json!({ "items": [record] })).unwrap()
    };
    let send = |id: &'static str, body: Vec<u8>, secret: String| {
        let (url, store) = (url.clone(), s.store.clone());
        async move {
            let timestamp = jiff::Timestamp::now().as_second().to_string();
            let signature = sharehub_connector::webhook::sign(&secret, id, &timestamp, &body).unwrap();
            let signature = format!("v1,{}", base64_encode(&signature));
            reqwest::Client::new()
                .post(url)
                .basic_auth(&store.api_id, Some(&store.api_key))
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp)
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let secret = s.store.webhook_secret.clone();

    let forged = "whsec_".to_string() + &base64_encode(b"not the app's secret at all");
    assert_eq!(send("msg_forged", delivery("Forged", version + 1), forged).await, StatusCode::UNAUTHORIZED);
    assert_eq!(s.track_name(2).await, item["name"], "a forged delivery changes nothing");

    assert_eq!(send("msg_1", delivery("First", version + 1), secret.clone()).await, StatusCode::NO_CONTENT);
    assert_eq!(s.track_name(2).await, json!("First"));
    assert_eq!(send("msg_1", delivery("Replayed", version + 2), secret.clone()).await, StatusCode::NO_CONTENT);
    assert_eq!(s.track_name(2).await, json!("First"), "one webhook id is handled once");
    assert_eq!(send("msg_2", delivery("Stale", version + 1), secret.clone()).await, StatusCode::NO_CONTENT);
    assert_eq!(s.track_name(2).await, json!("First"), "a version already applied is dropped");
    connector.stop().await;
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
