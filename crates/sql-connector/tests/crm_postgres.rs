//! The CRM mapping on a real PostgreSQL database (from
//! `SHAREHUB_TEST_POSTGRES_URL`, skipped when unset) against a real hub.

mod support;

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::hub::{hub_id, own_id};
use support::pg::{self, PgDatabase};
use support::*;

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crm_on_postgres_shares_both_ways() {
    let Some(base) = pg::server_url() else { return };
    let (pg, crm) = PgDatabase::create_crm(&base).await;
    let seed = [
        "INSERT INTO accounts (account_name, industry, annual_revenue) VALUES ('Globex', 'Energy', 1250000.50), ('Initech', 'Software', NULL)",
        "INSERT INTO contacts (account_ref, given_name, family_name, email_address) VALUES (1, 'Hank', 'Scorpio', 'hank@globex.example'), (2, 'Peter', 'Gibbons', 'peter@initech.example'), (NULL, 'Joan', 'Doe', 'joan@example.com')",
        "INSERT INTO products (sku, title, list_price) VALUES ('HAM-1', 'Hammock', 149.90), ('TPS-9', 'TPS cover sheet', 0.05)",
        "INSERT INTO orders (contact_ref, state) VALUES (1, 'SUBMITTED')",
        "INSERT INTO order_items (order_no, sku, qty, price) VALUES (1, 'HAM-1', 2, 149.90), (1, 'TPS-9', 100, 0.05)",
    ];
    for sql in seed {
        exec(&crm, sql, &[]).await;
    }

    let hub = TestHub::spawn().await;
    let org = hub.create_org("CRM").await;
    let app = hub.create_app("crm").await;
    let books = hub.create_app("books").await;
    let group = hub.install(&app, &org).await;
    let books_group = hub.install(&books, &org).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = connector_config(&hub, &app, dir.path(), &group, Path::new("unused"));
    config.mapping = pg::crm_mapping();
    config.orgs[0].database = pg.url.clone();
    let connector = start_connector(&hub, &app, &config).await;
    wait_for_sync(&connector, &group).await;

    // App -> hub, with references and exact money.
    let orgs = hub.list(&books, &books_group, "organizations").await;
    let globex = orgs.iter().find(|o| o["name"] == json!("Globex")).expect("Globex on the hub");
    assert_eq!(globex["annual_revenue"].to_string(), "1250000.50");
    let people = hub.list(&app, &group, "people").await;
    assert_eq!(people.len(), 3);
    let hank = people.iter().find(|p| own_id(p, "crm").as_deref() == Some("contacts:1")).unwrap();
    assert_eq!(own_id(&json!({ "id": hank["organization_id"] }), "crm").as_deref(), Some("accounts:1"));
    let orders = hub.list(&app, &group, "invoices").await;
    assert_eq!(orders.len(), 1);
    let lines = orders[0]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(own_id(&json!({ "id": lines[1]["item_id"] }), "crm").as_deref(), Some("products:TPS-9"));

    // Hub -> app: a person of Globex made by books becomes a contact of account 1.
    let person = json!({ "people": { "first_name": "Mindy", "last_name": "Lee",
        "email": { "address": "mindy@globex.example" }, "organization_id": hub_id(globex) } });
    let (status, body) = hub.call(&books, Method::POST, &format!("/api/v2/{books_group}/people"), Some(person)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mindy = eventually("Mindy in the CRM", MINUTE, || async {
        rows(&crm, "SELECT * FROM contacts WHERE email_address = 'mindy@globex.example'").await.into_iter().next()
    })
    .await;
    assert_eq!(mindy["account_ref"], json!(1));

    // An edit in the CRM (timestamptz with microseconds) reaches the hub.
    exec(
        &crm,
        "UPDATE accounts SET industry = 'Doomsday devices', modified = clock_timestamp() WHERE account_id = 1",
        &[],
    )
    .await;
    eventually("the CRM's edit on the hub", MINUTE, || async {
        let orgs = hub.list(&books, &books_group, "organizations").await;
        let globex = orgs.iter().find(|o| o["name"] == json!("Globex"))?;
        (globex["industry"] == json!("Doomsday devices")).then_some(())
    })
    .await;
    connector.stop().await;
    drop(crm);
    pg.drop().await;
}
