//! A quiet app costs a quiet poll. Polls re-read the `overlap` window before
//! their cursor (for rows committed late), but only while such rows can still
//! commit: once `overlap` has passed since a bulk change, a poll lists
//! nothing, and the next change is still shared at the next poll.
//!
//! Also what a poll does when the hub refuses the connector's group: the
//! step fails once, with a message naming the settings to check, and no
//! record is blamed.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use sharehub_connector::Result as AppResult;
use sharehub_connector::{
    AppAdapter, AppRecord, Connector, ConnectorParts, Cursor, Hub, HubCredentials, OrgSettings, Page, State,
};
use sharehub_sql_connector::db::Param;
use sharehub_sql_connector::{MappingFile, SqlAdapter};
use support::hub::own_id;
use support::*;

/// The Chinook database as the connector reaches it, counting the rows each
/// listing of changes answers.
struct Counting {
    app: SqlAdapter,
    listed: Arc<Mutex<HashMap<String, usize>>>,
}

#[async_trait]
impl AppAdapter for Counting {
    async fn list_changed(&self, entity: &str, after: Option<&Cursor>, limit: usize) -> AppResult<Page> {
        let page = self.app.list_changed(entity, after, limit).await?;
        *self.listed.lock().unwrap().entry(entity.to_string()).or_default() += page.records.len();
        Ok(page)
    }

    async fn fetch(&self, entity: &str, id: &str) -> AppResult<Option<AppRecord>> {
        self.app.fetch(entity, id).await
    }

    async fn create(&self, entity: &str, fields: Map<String, Value>) -> AppResult<AppRecord> {
        self.app.create(entity, fields).await
    }

    async fn update(&self, entity: &str, id: &str, fields: Map<String, Value>) -> AppResult<AppRecord> {
        self.app.update(entity, id, fields).await
    }

    async fn mark_inactive(&self, entity: &str, id: &str) -> AppResult<()> {
        self.app.mark_inactive(entity, id).await
    }
}

/// Rows listed per entity since the last call.
fn take(listed: &Mutex<HashMap<String, usize>>) -> HashMap<String, usize> {
    std::mem::take(&mut *listed.lock().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_stop_re_reading_a_bulk_change_once_it_has_settled() {
    let StoreSetup { hub, store, group, dir, db, .. } = StoreSetup::new().await;
    // A bulk change: every track at one instant, just before the import.
    exec(&db, "UPDATE tracks SET updated_at = ?1", &[Param::Text(now_text())]).await;

    let listed = Arc::new(Mutex::new(HashMap::new()));
    let config = connector_config(&hub, &store, dir.path(), &group, &dir.path().join("chinook.db"));
    let overlap = config.sync.overlap;
    let connector = build(&config, &db, &listed).await;
    assert!(connector.sync_once(&group, true).await.unwrap(), "the initial import");
    assert_eq!(take(&listed).get("tracks"), Some(&20), "the import lists every track");

    // Right after it, the window before the cursor is re-read: a row could
    // still commit late there.
    assert!(connector.sync_once(&group, false).await.unwrap());
    assert_eq!(take(&listed).get("tracks"), Some(&20), "re-read within the overlap");

    // Once a poll has begun `overlap` after the change, nothing is left to
    // commit before the cursor: the polls after it list nothing at all.
    tokio::time::sleep(overlap + Duration::from_millis(300)).await;
    assert!(connector.sync_once(&group, false).await.unwrap());
    take(&listed);
    assert!(connector.sync_once(&group, false).await.unwrap());
    let quiet = take(&listed);
    assert_eq!(quiet.values().sum::<usize>(), 0, "a quiet app, a quiet poll: {quiet:?}");

    // A new change is listed alone and shared.
    exec(&db, "UPDATE tracks SET name = 'Renamed', updated_at = ?1 WHERE id = 3", &[Param::Text(now_text())]).await;
    assert!(connector.sync_once(&group, false).await.unwrap());
    assert_eq!(take(&listed).get("tracks"), Some(&1), "only the edited track");
    let items = hub.list(&store, &group, "items").await;
    let item = items.iter().find(|i| own_id(i, "store").as_deref() == Some("tracks:3")).expect("the track's item");
    assert_eq!(item["name"], json!("Renamed"));
}

/// The connector of `config`, its one organization's app counted in `listed`.
async fn build(
    config: &sharehub_sql_connector::Config,
    db: &sharehub_sql_connector::db::Db,
    listed: &Arc<Mutex<HashMap<String, usize>>>,
) -> Connector {
    let file = MappingFile::load(&config.mapping).unwrap();
    let app = SqlAdapter::new(db.clone(), file.tables.clone()).await.unwrap();
    let adapter: Arc<dyn AppAdapter> = Arc::new(Counting { app, listed: listed.clone() });
    let creds = HubCredentials {
        url: config.hub.url.clone(),
        api_id: config.hub.api_id.clone(),
        api_key: config.hub.api_key.clone(),
        provider: config.hub.provider.clone(),
    };
    Connector::new(ConnectorParts {
        state: State::open(&config.state).await.unwrap(),
        hub: Hub::new(creds, config.sync.hub_attempts, config.sync.hub_backoff),
        mapping: file.mapping,
        options: config.sync.clone(),
        orgs: vec![(OrgSettings::new(&config.orgs[0].settings.group_id), adapter)],
        webhook_secret: config.hub.webhook_secret.clone(),
        api_id: config.hub.api_id.clone(),
        api_key: config.hub.api_key.clone(),
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_the_hub_refuses_fails_the_step_once_not_every_record() {
    let StoreSetup { hub, org, store, dir, db, .. } = StoreSetup::new().await;
    // A group of no app: every op of the import is a 401.
    let wrong = "cld-notours";
    let config = connector_config(&hub, &store, dir.path(), wrong, &dir.path().join("chinook.db"));
    let connector = build(&config, &db, &Arc::new(Mutex::new(HashMap::new()))).await;

    let step = connector.sync_once(wrong, true).await;
    let error = step.expect_err("the step fails").to_string();
    assert!(error.contains("401") && error.contains("group_id"), "{error}");
    let status = connector.state().status(wrong).await.unwrap();
    assert_eq!(status.failing_records, 0, "no record is blamed: {status:?}");
    assert!(status.last_error.as_deref().is_some_and(|e| e.contains("401")), "{status:?}");
    assert!(hub.list(&store, &hub.install(&store, &org).await, "people").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_the_hub_does_not_know_the_app_by_pauses_before_writing() {
    let StoreSetup { hub, store, group, dir, db, .. } = StoreSetup::new().await;
    let mut config = connector_config(&hub, &store, dir.path(), &group, &dir.path().join("chinook.db"));
    config.hub.provider = "shop".into();
    let connector = build(&config, &db, &Arc::new(Mutex::new(HashMap::new()))).await;

    let error = connector.sync_once(&group, true).await.expect_err("the step fails").to_string();
    assert!(error.contains("\"store\"") && error.contains("\"shop\""), "names both providers: {error}");
    let status = connector.state().status(&group).await.unwrap();
    assert!(status.paused, "{status:?}");
    assert!(!connector.sync_once(&group, true).await.unwrap(), "paused: later steps do nothing");
    assert!(hub.list(&store, &group, "people").await.is_empty(), "nothing was written");
}
