//! The two shipped connectors together, end to end: the Chinook store in
//! SQLite ("store" app) and the CRM in PostgreSQL ("crm" app), each behind
//! its own SQL connector, installed in one organization of a real hub.
//! Needs `SHAREHUB_TEST_POSTGRES_URL` (skipped when unset).
//!
//! The store's customers become CRM accounts and contacts, its tracks CRM
//! products and its invoices CRM orders, with every reference resolved in
//! the CRM's own keys; an edit of a contact reaches the store's customer, a
//! new invoice reaches the CRM, and then nothing moves any more.

mod support;

use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::Value;
use sharehub_sql_connector::db::{Db, Param};
use support::pg::{self, PgDatabase};
use support::*;

const MINUTE: Duration = Duration::from_secs(60);

/// Each invoice line as (customer email, invoice date, track, quantity, price).
const STORE_LINES: &str = "SELECT c.email, i.invoicedate AS date, t.name AS title, l.quantity AS qty, \
    l.unit_price AS price FROM invoice_lines l JOIN invoices i ON i.id = l.invoice \
    JOIN customers c ON c.id = i.customer JOIN tracks t ON t.id = l.track";
/// The same read from the CRM, following its foreign keys (a missing
/// reference shows as an empty value and fails the comparison).
const CRM_LINES: &str = "SELECT c.email_address AS email, \
    to_char(o.ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS date, \
    p.title, i.qty::text AS qty, i.price::text AS price FROM order_items i \
    JOIN orders o ON o.order_no = i.order_no LEFT JOIN contacts c ON c.contact_id = o.contact_ref \
    LEFT JOIN products p ON p.sku = i.sku";
const STORE_INVOICES: &str =
    "SELECT c.email, i.invoicedate AS date FROM invoices i JOIN customers c ON c.id = i.customer";
const CRM_ORDERS: &str = "SELECT c.email_address AS email, \
    to_char(o.ordered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS date \
    FROM orders o LEFT JOIN contacts c ON c.contact_id = o.contact_ref";
const STORE_CUSTOMERS: &str = "SELECT email, company FROM customers";
const CRM_CONTACTS: &str = "SELECT c.email_address AS email, a.account_name AS company \
    FROM contacts c LEFT JOIN accounts a ON a.account_id = c.account_ref";
const STORE_ITEMS: &str = "SELECT name AS title, unit_price AS price FROM tracks";
const CRM_PRODUCTS: &str = "SELECT title, list_price::text AS price FROM products";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_the_crm_share_customers_items_and_invoices_both_ways() {
    let Some(base) = pg::server_url() else { return };
    let (pg, crm) = PgDatabase::create_crm(&base).await;
    let hub = TestHub::spawn().await;
    let org = hub.create_org("Chinook Music").await;
    let store = hub.create_app("store").await;
    let crm_app = hub.create_app("crm").await;
    let store_group = hub.install(&store, &org).await;
    let crm_group = hub.install(&crm_app, &org).await;

    // 20 customers (10 with a company), 200 tracks, their invoices up to 60
    // (a few left without lines by the cut: they must arrive too).
    let store_dir = tempfile::tempdir().unwrap();
    let store_path = store_dir.path().join("chinook.db");
    let chinook = chinook_db(&store_path, 20, 200, 60).await;
    // The cut leaves some invoices without lines; the real store has none.
    let store_config = connector_config(&hub, &store, store_dir.path(), &store_group, &store_path);
    let crm_dir = tempfile::tempdir().unwrap();
    let mut crm_config = connector_config(&hub, &crm_app, crm_dir.path(), &crm_group, &store_path);
    crm_config.mapping = pg::crm_mapping();
    crm_config.orgs[0].database = pg.url.clone();

    let store_connector = start_connector(&hub, &store, &store_config).await;
    let crm_connector = start_connector(&hub, &crm_app, &crm_config).await;
    wait_for_sync(&store_connector, &store_group).await;
    wait_for_sync(&crm_connector, &crm_group).await;

    // Everything of the store is in the CRM, each reference in the CRM's keys.
    eventually("the store's records in the CRM", MINUTE * 2, || async {
        let done = same(&chinook, STORE_LINES, &crm, CRM_LINES).await.is_ok()
            && same(&chinook, STORE_INVOICES, &crm, CRM_ORDERS).await.is_ok()
            && same(&chinook, STORE_ITEMS, &crm, CRM_PRODUCTS).await.is_ok()
            && same(&chinook, STORE_CUSTOMERS, &crm, CRM_CONTACTS).await.is_ok();
        done.then_some(())
    })
    .await;
    assert_eq!(same(&chinook, STORE_CUSTOMERS, &crm, CRM_CONTACTS).await, Ok(20), "contact -> account");
    assert_eq!(same(&chinook, STORE_ITEMS, &crm, CRM_PRODUCTS).await, Ok(200), "tracks as products");
    let invoices = count(&chinook, "SELECT count(*) FROM invoices").await as usize;
    assert_eq!(same(&chinook, STORE_INVOICES, &crm, CRM_ORDERS).await, Ok(invoices), "order -> contact");
    let companies = count(&chinook, "SELECT count(DISTINCT company) FROM customers").await;
    assert_eq!(count(&crm, "SELECT count(*) FROM accounts").await, companies, "one account per company");

    // A contact edited in the CRM reaches the store's customer within seconds,
    // and only the mapped column changes there.
    let started = Instant::now();
    exec(
        &crm,
        "UPDATE contacts SET family_name = 'Gonçalves da Silva', modified = clock_timestamp() \
         WHERE email_address = 'luisg@embraer.com.br'",
        &[],
    )
    .await;
    eventually("the CRM's edit in the store", MINUTE, || async {
        let rows = rows(&chinook, "SELECT lastname FROM customers WHERE id = 1").await;
        (rows[0]["lastname"] == "Gonçalves da Silva").then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let city = rows(&chinook, "SELECT city, company FROM customers WHERE id = 1").await;
    assert_eq!(city[0]["city"], "São José dos Campos");

    // An invoice added to the store, lines first as the app commits them,
    // appears in the CRM as an order of the right contact and products.
    let lines = "INSERT INTO invoice_lines (id, invoice, track, unit_price, quantity) \
        VALUES (100000, 1000, 3, '0.99', 1), (100001, 1000, 5, '0.99', 2)";
    exec(&chinook, lines, &[]).await;
    let invoice = "INSERT INTO invoices (id, customer, invoicedate, billingcity, billingcountry, total, updated_at) \
        VALUES (1000, 1, '2026-12-01T10:30:00Z', 'São José dos Campos', 'Brazil', '2.97', ?1)";
    exec(&chinook, invoice, &[Param::Text(now_text())]).await;
    eventually("the new invoice in the CRM", MINUTE, || async {
        (same(&chinook, STORE_LINES, &crm, CRM_LINES).await.ok()? > 0).then_some(())
    })
    .await;
    let order = rows(&crm, &format!("{CRM_LINES} WHERE o.ordered_at = '2026-12-01T10:30:00Z' ORDER BY i.qty")).await;
    assert_eq!(order.len(), 2);
    assert_eq!(order[0]["email"], "luisg@embraer.com.br");
    assert_eq!(order[1]["title"], rows(&chinook, "SELECT name FROM tracks WHERE id = 5").await[0]["name"]);

    // Then nothing moves: the hub's change feed and both databases stay put.
    synced_after(&store_connector, &store_group, &now_text()).await;
    synced_after(&crm_connector, &crm_group, &now_text()).await;
    let seq = hub.last_seq(&store, &store_group).await;
    let store_mark = rows(&chinook, "SELECT max(updated_at) AS m FROM customers").await;
    let crm_mark = rows(&crm, "SELECT max(modified)::text AS m FROM contacts").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hub.last_seq(&store, &store_group).await, seq, "no change logged after the edits settled");
    assert_eq!(rows(&chinook, "SELECT max(updated_at) AS m FROM customers").await, store_mark);
    assert_eq!(rows(&crm, "SELECT max(modified)::text AS m FROM contacts").await, crm_mark);

    store_connector.stop().await;
    crm_connector.stop().await;
    drop((chinook, crm));
    pg.drop().await;
}

/// Compares two queries as sorted multisets of rows (decimals compared by
/// value: `1` = `1.00`); answers the row count, or both sides when they differ.
async fn same(a: &Db, a_sql: &str, b: &Db, b_sql: &str) -> Result<usize, String> {
    let (left, right) = (canonical(a, a_sql).await, canonical(b, b_sql).await);
    match left == right {
        true => Ok(left.len()),
        false => {
            Err(format!("{} rows vs {} rows; first differing: {:?}", left.len(), right.len(), diff(&left, &right)))
        }
    }
}

async fn canonical(db: &Db, sql: &str) -> Vec<String> {
    let mut out: Vec<String> =
        rows(db, sql).await.iter().map(|row| row.values().map(text).collect::<Vec<_>>().join(" | ")).collect();
    out.sort();
    out
}

fn text(value: &Value) -> String {
    let raw = match value {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match raw.parse::<Decimal>() {
        Ok(d) => d.normalize().to_string(),
        Err(_) => raw,
    }
}

fn diff(left: &[String], right: &[String]) -> Option<(String, String)> {
    let at = left.iter().zip(right).position(|(l, r)| l != r).unwrap_or(left.len().min(right.len()));
    Some((left.get(at).cloned().unwrap_or_default(), right.get(at).cloned().unwrap_or_default()))
}
