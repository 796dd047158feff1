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

/// The CRM takes several writes at once, so a delivery's records are applied
/// concurrently: 24 invoices of one person the CRM lacks, applied together,
/// bring that person (and her company, and the item) in once, and every
/// order refers to that one contact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_sharing_a_new_reference_create_it_once() {
    let Some(base) = pg::server_url() else { return };
    let (pg, crm) = PgDatabase::create_crm(&base).await;
    let hub = TestHub::spawn().await;
    let org = hub.create_org("CRM").await;
    let app = hub.create_app("crm").await;
    let books = hub.create_app("books").await;
    let group = hub.install(&app, &org).await;
    let books_group = hub.install(&books, &org).await;

    let post = |entity: &'static str, record: serde_json::Value| {
        let (hub, books, books_group) = (&hub, &books, &books_group);
        async move {
            let path = format!("/api/v2/{books_group}/{entity}");
            let (status, body) = hub.call(books, Method::POST, &path, Some(json!({ entity: record }))).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            hub_id(&body[entity])
        }
    };
    let company = post("organizations", json!({ "name": "Zürich Öl AG" })).await;
    let person =
        post("people", json!({ "first_name": "Zoë", "last_name": "Ångström", "organization_id": company })).await;
    let item =
        post("items", json!({ "name": "Kabel 🎸", "sale_price": { "net_amount": "4.99", "currency": "EUR" } })).await;
    for n in 0..24 {
        let line = json!({ "quantity": n + 1, "unit_price": { "net_amount": "4.99" }, "item_id": item });
        post("invoices", json!({ "type": "CUSTOMER", "status": "SUBMITTED", "transaction_date": "2026-12-01T10:00:00Z", "person_id": person, "lines": [line] })).await;
    }

    // The CRM app's own view of the invoices, applied as one delivery.
    let dir = tempfile::tempdir().unwrap();
    let mut config = connector_config(&hub, &app, dir.path(), &group, Path::new("unused"));
    config.mapping = pg::crm_mapping();
    config.orgs[0].database = pg.url.clone();
    let connector = sharehub_sql_connector::run::build(&config).await.unwrap();
    let invoices = hub.list(&app, &group, "invoices").await;
    assert_eq!(invoices.len(), 24);
    let records: Vec<(&str, &serde_json::Value)> = invoices.iter().map(|r| ("invoices", r)).collect();
    connector.apply_hub_records(&group, &records).await.unwrap();

    assert_eq!(count(&crm, "SELECT count(*) FROM accounts").await, 1);
    assert_eq!(count(&crm, "SELECT count(*) FROM contacts").await, 1);
    assert_eq!(count(&crm, "SELECT count(*) FROM products").await, 1);
    assert_eq!(count(&crm, "SELECT count(*) FROM orders").await, 24);
    let contact = rows(&crm, "SELECT * FROM contacts").await.remove(0);
    assert_eq!(contact["family_name"], json!("Ångström"));
    let orphans = "SELECT count(*) FROM orders WHERE contact_ref IS DISTINCT FROM (SELECT contact_id FROM contacts)";
    assert_eq!(count(&crm, orphans).await, 0);
    assert_eq!(count(&crm, "SELECT count(*) FROM order_items WHERE sku = (SELECT sku FROM products)").await, 24);
    let quantities = count(&crm, "SELECT CAST(sum(qty) AS BIGINT) FROM order_items").await;
    assert_eq!(quantities, (1..=24).sum::<i64>());

    // The hub knows the CRM's one id for the person, and for each invoice.
    let people = hub.list(&app, &group, "people").await;
    let linked = people.iter().filter(|p| own_id(p, "crm").is_some()).count();
    assert_eq!((people.len(), linked), (1, 1));
    let invoices = hub.list(&app, &group, "invoices").await;
    let mut orders: Vec<String> = invoices.iter().filter_map(|i| own_id(i, "crm")).collect();
    orders.sort();
    orders.dedup();
    assert_eq!(orders.len(), 24);
    drop(crm);
    pg.drop().await;
}
