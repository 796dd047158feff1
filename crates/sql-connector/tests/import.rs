//! The initial import with the Chinook mapping against a real hub: both
//! ways, merged by matching fields, rows sharing an updated-at, a change
//! during the import, a crash and resume, history skipped.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::hub::{hub_id, own_id};
use support::*;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_initial_import_shares_both_ways_and_merges_matching_records() {
    let hub = TestHub::spawn().await;
    let org = hub.create_org("Chinook").await;
    let store = hub.create_app("store").await;
    let books = hub.create_app("books").await;
    let store_group = hub.install(&store, &org).await;
    let books_group = hub.install(&books, &org).await;

    // Books already knows customer 2 (same email) and a customer the store lacks.
    let leonie = json!({ "people": { "first_name": "Leonie", "last_name": "K.", "email": { "address": "leonekohler@surfeu.de" } } });
    let (status, _) = hub.call(&books, Method::POST, &format!("/api/v2/{books_group}/people"), Some(leonie)).await;
    assert_eq!(status, StatusCode::CREATED);
    let ada = json!({ "people": { "first_name": "Ada", "last_name": "Lovelace", "email": { "address": "ada@example.com" } } });
    let (status, _) = hub.call(&books, Method::POST, &format!("/api/v2/{books_group}/people"), Some(ada)).await;
    assert_eq!(status, StatusCode::CREATED);

    let dir = tempfile::tempdir().unwrap();
    let app_db_path = dir.path().join("chinook.db");
    let app_db = chinook_db(&app_db_path, 10, 120, 30).await;
    let customers = count(&app_db, "SELECT count(*) FROM customers").await;
    let tracks = count(&app_db, "SELECT count(*) FROM tracks").await;
    let invoices = count(&app_db, "SELECT count(*) FROM invoices").await;
    let config = connector_config(&hub, &store, dir.path(), &store_group, &app_db_path);
    let connector = start_connector(&hub, &store, &config).await;
    wait_for_sync(&connector, &store_group).await;

    // Ada came from the hub into the app, as a customer row.
    let ada_row = eventually("Ada in the app", MINUTE, || async {
        rows(&app_db, "SELECT * FROM customers WHERE email = 'ada@example.com'").await.into_iter().next()
    })
    .await;
    assert_eq!(ada_row["lastname"], json!("Lovelace"));
    let app_customers = count(&app_db, "SELECT count(*) FROM customers").await;
    assert_eq!(app_customers, customers + 1, "Ada added; Leonie not doubled in the app");

    // Every customer is one person on the hub: Leonie was merged, not duplicated.
    let people = hub.list(&store, &store_group, "people").await;
    assert_eq!(people.len() as i64, customers + 1, "customers plus Ada, no duplicate of Leonie");
    let leonie = people.iter().find(|p| p["email"]["address"] == json!("leonekohler@surfeu.de")).unwrap();
    assert_eq!(own_id(leonie, "store").as_deref(), Some("customers:2"));
    assert_eq!(leonie["last_name"], json!("Köhler"), "the app's data went into the merged record");
    let ada = people.iter().find(|p| p["email"]["address"] == json!("ada@example.com")).unwrap();
    assert_eq!(own_id(ada, "store"), Some(format!("customers:{}", ada_row["id"])), "Ada is linked to her new row");

    let detail: serde_json::Value =
        reqwest::get(format!("http://{}/status/{store_group}", connector.addr)).await.unwrap().json().await.unwrap();
    assert_eq!(detail["record_errors"], json!([]), "no failing record");
    // All 120 tracks share one updated-at and were read 50 at a time: all arrived.
    assert_eq!(hub.list(&store, &store_group, "items").await.len() as i64, tracks);
    let hub_invoices = hub.list(&store, &store_group, "invoices").await;
    assert_eq!(hub_invoices.len() as i64, invoices);
    let first = hub_invoices.iter().find(|i| own_id(i, "store").as_deref() == Some("invoices:1")).unwrap();
    assert_eq!(first["amount"]["net_amount"].to_string(), "1.98", "totals computed from the lines, in decimal");
    assert_eq!(first["lines"].as_array().unwrap().len(), 2);

    // Customer 1's company became an organization, referred to by its person;
    // customers without a company made none.
    let orgs = hub.list(&store, &store_group, "organizations").await;
    let companies = count(&app_db, "SELECT count(DISTINCT company) FROM customers").await;
    assert_eq!(orgs.len() as i64, companies);
    assert!(people.iter().any(|p| p["organization_id"].is_null() && p["address_work"]["billing"]["region"].is_null()));
    let embraer = orgs.iter().find(|o| o["name"].as_str().unwrap_or_default().starts_with("Embraer")).unwrap();
    let luis = people.iter().find(|p| own_id(p, "store").as_deref() == Some("customers:1")).unwrap();
    assert_eq!(hub_id(&json!({ "id": luis["organization_id"] })), hub_id(embraer));

    let status: serde_json::Value =
        reqwest::get(format!("http://{}/status", connector.addr)).await.unwrap().json().await.unwrap();
    assert_eq!(status["organizations"][0]["paused"], json!(false));
    assert_eq!(status["organizations"][0]["import_done"], json!(true));
    assert_eq!(status["organizations"][0]["sharing"], json!(true));
    assert!(status["organizations"][0]["last_success"].is_string());
    connector.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_chinook_store_arrives_with_exact_invoice_totals() {
    let hub = TestHub::spawn().await;
    let org = hub.create_org("Chinook").await;
    let store = hub.create_app("store").await;
    let group = hub.install(&store, &org).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chinook.db");
    sharehub_sql_connector::chinook::build(&path).await.unwrap();
    let app_db = sharehub_sql_connector::db::Db::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let mut config = connector_config(&hub, &store, dir.path(), &group, &path);
    config.sync.page_size = 200;
    let connector = start_connector(&hub, &store, &config).await;
    wait_for_sync(&connector, &group).await;

    for (entity, expected) in
        [("organizations", 10), ("people", 59), ("employees", 8), ("items", 3503), ("invoices", 412)]
    {
        assert_eq!(hub.list(&store, &group, entity).await.len(), expected, "{entity}");
    }
    let totals: std::collections::HashMap<String, String> = rows(&app_db, "SELECT id, total FROM invoices")
        .await
        .into_iter()
        .map(|r| (format!("invoices:{}", r["id"]), r["total"].as_str().unwrap().to_string()))
        .collect();
    for invoice in hub.list(&store, &group, "invoices").await {
        let id = own_id(&invoice, "store").unwrap();
        let total: rust_decimal::Decimal = invoice["amount"]["net_amount"].to_string().parse().unwrap();
        let expected: rust_decimal::Decimal = totals[&id].parse().unwrap();
        assert_eq!(total, expected, "{id}: the hub's sum of lines equals Chinook's total");
    }
    connector.stop().await;
}
