//! Steady-state sharing with the Chinook mapping against a real hub: edits
//! both ways without loops, rows sharing an updated-at or committed late,
//! and the direction and sharing settings.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sharehub_connector::{Direction, OrgSettings};
use sharehub_sql_connector::db::Param;
use support::hub::{hub_id, own_id};
use support::*;

const MINUTE: Duration = Duration::from_secs(60);

/// A hub with the store (connected by the connector) and books (a plain API client).
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
        let app_db = chinook_db(&dir.path().join("chinook.db"), 5, 20, 3).await;
        Self { hub, store, books, store_group, books_group, dir, app_db }
    }

    fn config(&self, settings: OrgSettings) -> sharehub_sql_connector::Config {
        let mut config = connector_config(
            &self.hub,
            &self.store,
            self.dir.path(),
            &self.store_group,
            &self.dir.path().join("chinook.db"),
        );
        config.orgs[0].settings = settings;
        config
    }

    /// The record the store linked as `external_id`, as books sees it.
    async fn hub_record(&self, entity: &str, external_id: &str) -> Option<Value> {
        let records = self.hub.list(&self.store, &self.store_group, entity).await;
        let record = records.into_iter().find(|r| own_id(r, "store").as_deref() == Some(external_id))?;
        let path = format!("/api/v2/{}/{entity}/{}", self.books_group, hub_id(&record));
        let (status, body) = self.hub.call(&self.books, Method::GET, &path, None).await;
        (status == StatusCode::OK).then(|| body[entity].clone())
    }

    async fn customer(&self, id: i64) -> serde_json::Map<String, Value> {
        rows(&self.app_db, &format!("SELECT * FROM customers WHERE id = {id}")).await.remove(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_on_either_side_arrives_once_and_the_system_goes_quiet() {
    let s = Setup::new().await;
    let connector = start_connector(&s.hub, &s.store, &s.config(OrgSettings::new(&s.store_group))).await;
    wait_for_sync(&connector, &s.store_group).await;

    // App -> hub.
    let sql = "UPDATE customers SET city = 'Berlin', updated_at = ?1 WHERE id = 2";
    exec(&s.app_db, sql, &[Param::Text(now_text())]).await;
    let person = eventually("the app's edit on the hub", MINUTE, || async {
        let p = s.hub_record("people", "customers:2").await?;
        (p["address_work"]["billing"]["city"] == json!("Berlin")).then_some(p)
    })
    .await;
    let version = person["version"].clone();

    // Hub -> app.
    let path = format!("/api/v2/{}/people/{}", s.books_group, hub_id(&person));
    let edit = json!({ "people": { "first_name": "Leonie-Marie" } });
    let (status, _) = s.hub.call(&s.books, Method::PUT, &path, Some(edit)).await;
    assert_eq!(status, StatusCode::OK);
    let row = eventually("the hub's edit in the app", MINUTE, || async {
        let row = s.customer(2).await;
        (row["firstname"] == json!("Leonie-Marie")).then_some(row)
    })
    .await;

    // Quiet: several polls and feed reads later nothing moved on either side.
    let settled = now_text();
    synced_after(&connector, &s.store_group, &settled).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let person = s.hub_record("people", "customers:2").await.unwrap();
    assert_eq!(person["version"], json!(version.as_i64().unwrap() + 1), "one version per edit, no echo");
    assert_eq!(person["first_name"], json!("Leonie-Marie"));
    assert_eq!(s.customer(2).await["updated_at"], row["updated_at"], "the app was written once");
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_sharing_an_updated_at_or_committed_late_are_all_shared() {
    let s = Setup::new().await;
    let connector = start_connector(&s.hub, &s.store, &s.config(OrgSettings::new(&s.store_group))).await;
    wait_for_sync(&connector, &s.store_group).await;

    // Two rows with one updated-at, then a third committed late with an
    // earlier updated-at than rows the connector has already read.
    let same = now_text();
    let insert = "INSERT INTO tracks (id, name, unit_price, updated_at) VALUES (?1, ?2, '1.29', ?3)";
    for (id, name) in [(9001, "Twin A"), (9002, "Twin B")] {
        exec(&s.app_db, insert, &[Param::Int(id), Param::Text(name.into()), Param::Text(same.clone())]).await;
    }
    synced_after(&connector, &s.store_group, &now_text()).await;
    // 200 ms before the twins: late, yet within the 2 s `overlap` of now, as
    // a real transaction that stayed open that long would be.
    let before = same.parse::<jiff::Timestamp>().unwrap() - jiff::SignedDuration::from_millis(200);
    let late = sharehub_connector::convert::format_timestamp(before);
    exec(&s.app_db, insert, &[Param::Int(9003), Param::Text("Late".into()), Param::Text(late)]).await;

    for id in ["tracks:9001", "tracks:9002", "tracks:9003"] {
        let item = eventually(id, MINUTE, || s.hub_record("items", id)).await;
        assert_eq!(item["sale_price"]["net_amount"].to_string(), "1.29");
    }
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directions_per_entity_and_the_sharing_switch_are_obeyed() {
    let s = Setup::new().await;
    let mut settings = OrgSettings::new(&s.store_group);
    settings.entities = [
        ("customers".to_string(), Direction::Push),
        ("tracks".to_string(), Direction::Pull),
        ("invoices".to_string(), Direction::Off),
    ]
    .into();
    let connector = start_connector(&s.hub, &s.store, &s.config(settings)).await;
    wait_for_sync(&connector, &s.store_group).await;

    assert_eq!(s.hub.list(&s.books, &s.books_group, "people").await.len(), 5, "customers pushed");
    assert!(s.hub.list(&s.books, &s.books_group, "items").await.is_empty(), "tracks not pushed");
    assert!(s.hub.list(&s.books, &s.books_group, "employees").await.is_empty(), "employees not listed: off");
    assert!(s.hub.list(&s.books, &s.books_group, "invoices").await.is_empty(), "invoices off");

    // Items flow in, people do not flow back.
    let item = json!({ "items": { "name": "Jingle", "sale_price": { "net_amount": "0.49", "currency": "USD" } } });
    let (status, _) = s.hub.call(&s.books, Method::POST, &format!("/api/v2/{}/items", s.books_group), Some(item)).await;
    assert_eq!(status, StatusCode::CREATED);
    let person = s.hub_record("people", "customers:3").await.unwrap();
    let path = format!("/api/v2/{}/people/{}", s.books_group, hub_id(&person));
    let (status, _) =
        s.hub.call(&s.books, Method::PUT, &path, Some(json!({ "people": { "last_name": "Nope" } }))).await;
    assert_eq!(status, StatusCode::OK);

    let jingle = eventually("the hub's item in the app", MINUTE, || async {
        rows(&s.app_db, "SELECT * FROM tracks WHERE name = 'Jingle'").await.into_iter().next()
    })
    .await;
    assert_eq!(jingle["unit_price"], json!("0.49"), "the price arrives as exact decimal text");
    synced_after(&connector, &s.store_group, &now_text()).await;
    assert_ne!(s.customer(3).await["lastname"], json!("Nope"), "customers are push only");
    connector.stop().await;

    // Sharing off: an app edit stays in the app.
    let mut off = OrgSettings::new(&s.store_group);
    off.sharing = false;
    exec(&s.app_db, "UPDATE customers SET city = 'Nowhere', updated_at = ?1 WHERE id = 4", &[Param::Text(now_text())])
        .await;
    let connector = start_connector(&s.hub, &s.store, &s.config(off)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let person = s.hub_record("people", "customers:4").await.unwrap();
    assert_ne!(person["address_work"]["billing"]["city"], json!("Nowhere"));
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_historical_data_only_later_changes_are_shared() {
    let s = Setup::new().await;
    let before = json!({ "items": { "name": "Old hub item" } });
    let (status, _) =
        s.hub.call(&s.books, Method::POST, &format!("/api/v2/{}/items", s.books_group), Some(before)).await;
    assert_eq!(status, StatusCode::CREATED);

    let settings = OrgSettings { historical: false, ..OrgSettings::new(&s.store_group) };
    let connector = start_connector(&s.hub, &s.store, &s.config(settings)).await;
    wait_for_sync(&connector, &s.store_group).await;
    assert!(s.hub.list(&s.books, &s.books_group, "people").await.is_empty(), "existing customers stay in the app");
    assert_eq!(count(&s.app_db, "SELECT count(*) FROM tracks WHERE name = 'Old hub item'").await, 0);

    exec(&s.app_db, "UPDATE customers SET city = 'Later', updated_at = ?1 WHERE id = 1", &[Param::Text(now_text())])
        .await;
    let after = json!({ "items": { "name": "New hub item" } });
    let (status, _) =
        s.hub.call(&s.books, Method::POST, &format!("/api/v2/{}/items", s.books_group), Some(after)).await;
    assert_eq!(status, StatusCode::CREATED);
    eventually("the later changes shared", MINUTE, || async {
        let on_hub = s.hub_record("people", "customers:1").await.is_some();
        let in_app = count(&s.app_db, "SELECT count(*) FROM tracks WHERE name = 'New hub item'").await == 1;
        (on_hub && in_app).then_some(())
    })
    .await;
    assert_eq!(s.hub.list(&s.books, &s.books_group, "people").await.len(), 1);
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_record_is_archived_on_the_other_side_once() {
    let s = Setup::new().await;
    let connector = start_connector(&s.hub, &s.store, &s.config(OrgSettings::new(&s.store_group))).await;
    wait_for_sync(&connector, &s.store_group).await;
    let person3 = s.hub_record("people", "customers:3").await.unwrap();
    let person4 = s.hub_record("people", "customers:4").await.unwrap();

    // App -> hub: the store deactivates customer 3.
    exec(&s.app_db, "UPDATE customers SET active = 0, updated_at = ?1 WHERE id = 3", &[Param::Text(now_text())]).await;
    let path3 = format!("/api/v2/{}/people/{}", s.books_group, hub_id(&person3));
    eventually("customer 3 archived on the hub", MINUTE, || async {
        let (_, body) = s.hub.call(&s.books, Method::GET, &path3, None).await;
        (body["people"]["archived"] == json!(true)).then_some(())
    })
    .await;

    // Hub -> app: books deletes customer 4's person.
    let path4 = format!("/api/v2/{}/people/{}", s.books_group, hub_id(&person4));
    let (status, _) = s.hub.call(&s.books, Method::DELETE, &path4, None).await;
    assert!(status.is_success(), "{status}");
    eventually("customer 4 inactive in the app", MINUTE, || async {
        (s.customer(4).await["active"] == json!(0)).then_some(())
    })
    .await;

    // Quiet afterwards: no more changes logged, nothing rewritten.
    synced_after(&connector, &s.store_group, &now_text()).await;
    let seq = s.hub.last_seq(&s.store, &s.store_group).await;
    let row = s.customer(4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.hub.last_seq(&s.store, &s.store_group).await, seq);
    assert_eq!(s.customer(4).await, row);
    assert_eq!(s.hub.list(&s.books, &s.books_group, "people").await.len(), 3);
    connector.stop().await;
}
