//! connector-import and connector-latency: the Chinook store (SQLite) and
//! an empty CRM (PostgreSQL) behind two real SQL connectors on one hub.
//!
//! The import is timed from starting both connectors until every Chinook
//! customer, track and invoice line is in the CRM, against a baseline that
//! copies the same rows into the CRM tables with plain SQL inserts. The
//! latency is that of a CRM contact edit reaching the Chinook row.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;
use sharehub_sql_connector::db::{Db, Param};

use crate::connector_pair::{count, last_success, CrmDatabase, Pair, Running};
use crate::report::{ms, Metric, Percentiles};

const IMPORT: &str = "connector-import";
const LATENCY: &str = "connector-latency";

/// What every complete import holds: (CRM count, Chinook count).
const CHECKS: &[(&str, &str)] = &[
    ("SELECT count(*) FROM contacts", "SELECT count(*) FROM customers"),
    ("SELECT count(*) FROM products", "SELECT count(*) FROM tracks"),
    ("SELECT count(*) FROM orders", "SELECT count(*) FROM invoices"),
    ("SELECT count(*) FROM order_items", "SELECT count(*) FROM invoice_lines"),
];

/// References in the CRM that must all be set after the import.
const DANGLING: &str = "SELECT (SELECT count(*) FROM orders WHERE contact_ref IS NULL) \
    + (SELECT count(*) FROM order_items WHERE sku IS NULL)";

pub async fn import(superuser_url: &str, poll: Duration) -> Result<Vec<Metric>> {
    let mut pair = Pair::prepare(superuser_url, "import", poll).await?;
    let (elapsed, milestones, running) = timed_import(&mut pair).await?;
    let dangling = count(&pair.crm.db, DANGLING).await?;
    let linked = count(&pair.crm.db, "SELECT count(*) FROM contacts WHERE account_ref IS NOT NULL").await?;
    let companies = count(&pair.store_db, "SELECT count(*) FROM customers WHERE company IS NOT NULL").await?;
    let rows = total_rows(&pair.store_db).await?;
    let store_db = pair.store_db.clone();
    pair.stop(running).await;
    if dangling != 0 || linked != companies {
        bail!("the import left {dangling} references unset and {linked} of {companies} contacts linked");
    }

    let baseline = baseline(superuser_url, &store_db).await?;
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let mut metrics = vec![
        Metric::new(IMPORT, "Chinook -> hub -> empty CRM", "< 30 s", secs(elapsed), Some(elapsed.as_secs() < 30)),
        Metric::info(IMPORT, "store -> hub import step done at", secs(milestones.store_done)),
    ];
    for (table, at) in ["contacts", "products", "orders", "order_items"].iter().zip(&milestones.tables) {
        metrics.push(Metric::info(IMPORT, format!("CRM {table} complete at"), secs(*at)));
    }
    metrics.extend([
        Metric::info(IMPORT, "rows written to the CRM", rows.to_string()),
        Metric::info(IMPORT, "baseline: plain SQL inserts", secs(baseline)),
        Metric::info(
            IMPORT,
            "ratio connectors / baseline",
            format!("{:.0}x", elapsed.as_secs_f64() / baseline.as_secs_f64()),
        ),
    ]);
    Ok(metrics)
}

/// When the store's import step had finished, and when each CRM table
/// held all its rows (in [`CHECKS`] order).
struct Milestones {
    store_done: Duration,
    tables: Vec<Duration>,
}

/// Starts both connectors and waits for the CRM to hold everything; answers
/// the time that took and its milestones.
async fn timed_import(pair: &mut Pair) -> Result<(Duration, Milestones, Running)> {
    let client = reqwest::Client::new();
    let mut expected = Vec::new();
    for (_, chinook) in CHECKS {
        expected.push(count(&pair.store_db, chinook).await?);
    }
    let started = Instant::now();
    let running = pair.start().await?;
    let mut store_done = None;
    let mut tables = vec![None; CHECKS.len()];
    loop {
        if store_done.is_none() && last_success(&client, &running.store, &pair.store_group).await.is_some() {
            store_done = Some(started.elapsed());
        }
        for (((crm, _), want), at) in CHECKS.iter().zip(&expected).zip(&mut tables) {
            if at.is_none() && count(&pair.crm.db, crm).await? == *want {
                *at = Some(started.elapsed());
            }
        }
        if tables.iter().all(Option::is_some) {
            let tables = tables.into_iter().flatten().collect();
            let milestones = Milestones { store_done: store_done.unwrap_or_default(), tables };
            return Ok((started.elapsed(), milestones, running));
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the CRM did not hold the whole store after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn total_rows(store: &Db) -> Result<i64> {
    let companies = count(store, "SELECT count(DISTINCT company) FROM customers").await?;
    let mut rows = companies;
    for (_, chinook) in CHECKS {
        rows += count(store, chinook).await?;
    }
    Ok(rows)
}

/// Copies the same Chinook rows into a fresh CRM database with plain
/// inserts (one transaction, one statement per row, ids kept in memory):
/// what the two connectors and the hub are compared with.
async fn baseline(superuser_url: &str, store: &Db) -> Result<Duration> {
    let crm = CrmDatabase::create(superuser_url, "baseline").await?;
    let pool = sqlx::PgPool::connect(&crm.url).await?;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let (mut accounts, mut contacts) = (HashMap::new(), HashMap::new());
    for c in store.fetch("SELECT * FROM customers ORDER BY id", &[]).await? {
        let company = text(&c["company"]);
        let account = match &company {
            Some(name) if !accounts.contains_key(name) => {
                let sql = "INSERT INTO accounts (account_name) VALUES ($1) RETURNING account_id";
                let id: i64 = sqlx::query_scalar(sql).bind(name).fetch_one(&mut *tx).await?;
                accounts.insert(name.clone(), id);
                Some(id)
            }
            Some(name) => accounts.get(name).copied(),
            None => None,
        };
        let sql = "INSERT INTO contacts (account_ref, given_name, family_name, email_address) \
            VALUES ($1, $2, $3, $4) RETURNING contact_id";
        let id: i64 = sqlx::query_scalar(sql)
            .bind(account)
            .bind(text(&c["firstname"]))
            .bind(text(&c["lastname"]))
            .bind(text(&c["email"]))
            .fetch_one(&mut *tx)
            .await?;
        contacts.insert(text(&c["id"]), id);
    }
    for t in store.fetch("SELECT * FROM tracks ORDER BY id", &[]).await? {
        let sql = "INSERT INTO products (sku, title, list_price, currency) VALUES ($1, $2, $3::numeric, 'USD')";
        let sku = format!("T-{}", text(&t["id"]).unwrap_or_default());
        sqlx::query(sql).bind(sku).bind(text(&t["name"])).bind(text(&t["unit_price"])).execute(&mut *tx).await?;
    }
    let mut orders = HashMap::new();
    for i in store.fetch("SELECT * FROM invoices ORDER BY id", &[]).await? {
        let sql = "INSERT INTO orders (contact_ref, ordered_at, state) VALUES ($1, $2::timestamptz, 'PAID') \
            RETURNING order_no";
        let contact = contacts.get(&text(&i["customer"])).copied();
        let id: i64 = sqlx::query_scalar(sql).bind(contact).bind(text(&i["invoicedate"])).fetch_one(&mut *tx).await?;
        orders.insert(text(&i["id"]), id);
    }
    for l in store.fetch("SELECT * FROM invoice_lines ORDER BY id", &[]).await? {
        let sql = "INSERT INTO order_items (order_no, sku, qty, price) VALUES ($1, $2, $3::numeric, $4::numeric)";
        sqlx::query(sql)
            .bind(orders.get(&text(&l["invoice"])).copied())
            .bind(format!("T-{}", text(&l["track"]).unwrap_or_default()))
            .bind(text(&l["quantity"]))
            .bind(text(&l["unit_price"]))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let elapsed = started.elapsed();
    pool.close().await;
    crm.drop().await;
    Ok(elapsed)
}

/// A JSON value as the text bound to a PostgreSQL parameter.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `edits` edits of one CRM contact, one after another, each timed until
/// the Chinook customer row carries it.
pub async fn latency(superuser_url: &str, poll: Duration, edits: usize) -> Result<Vec<Metric>> {
    let mut pair = Pair::prepare(superuser_url, "latency", poll).await?;
    let (_, _, running) = timed_import(&mut pair).await?;
    // Past the connectors' re-read window, so no poll still re-reads the
    // thousands of rows the import just wrote (steady state).
    tokio::time::sleep(Duration::from_secs(6)).await;

    let mut samples = Vec::with_capacity(edits);
    for n in 0..edits {
        let name = format!("Edit {n}");
        let update = "UPDATE contacts SET family_name = $1, modified = clock_timestamp() \
            WHERE email_address = 'luisg@embraer.com.br'";
        let mut tx = pair.crm.db.begin().await?;
        tx.execute(update, &[Param::Text(name.clone())]).await?;
        let started = Instant::now();
        tx.commit().await?;
        loop {
            let rows = pair.store_db.fetch("SELECT lastname FROM customers WHERE id = 1", &[]).await?;
            if rows.first().and_then(|r| r["lastname"].as_str()) == Some(name.as_str()) {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("edit {n} did not reach the Chinook row within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(started.elapsed());
        // A varying pause, so edits fall at different points of the poll cycle.
        tokio::time::sleep(Duration::from_millis(100 + (n as u64 * 137) % 400)).await;
    }
    pair.stop(running).await;

    let p = Percentiles::new(samples);
    let poll_ms = poll.as_millis();
    Ok(vec![
        Metric::new(
            LATENCY,
            format!("CRM edit -> Chinook p50 (poll {poll_ms} ms)"),
            "< 1 s",
            ms(p.at(50.0)),
            Some(p.at(50.0) < Duration::from_secs(1)),
        ),
        Metric::info(LATENCY, "p95", ms(p.at(95.0))),
        Metric::info(LATENCY, "max", ms(p.max())),
        Metric::info(LATENCY, "edits", p.len().to_string()),
    ])
}
