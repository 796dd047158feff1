//! Checks the import by reading it back, and prints what the demo did.

use std::collections::BTreeMap;

use anyhow::Context;
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::Value;

use super::chinook::{decimal, PROVIDER};
use super::hub::{AppCreds, Hub, Platform};
use super::import::Imported;
use super::listener::Tally;

/// Invoices read per page.
const PAGE: usize = 100;
/// Mismatches kept to print.
const MISMATCHES_KEPT: usize = 5;

/// What reading the invoices back found.
pub struct Verified {
    pub invoices: usize,
    /// One line per invoice whose totals are wrong or that is missing.
    pub mismatches: Vec<String>,
}

impl Verified {
    /// True when every invoice was found and matched.
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Reads every invoice through the API (following `pagination.next`) and
/// checks that its `amount` is the sum of its lines and Chinook's total.
pub async fn verify(hub: &Hub, store: &AppCreds, expected: &BTreeMap<String, Decimal>) -> anyhow::Result<Verified> {
    let mut seen = BTreeMap::new();
    let mut url = Some(format!("/api/v2/{}/invoices?$top={PAGE}", store.group));
    while let Some(next) = url {
        let page = hub.call(hub.api(store, Method::GET, &next)).await.context("reading invoices back")?;
        for invoice in page.get("invoices").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let id = store_id(invoice).unwrap_or_else(|| "(no store id)".into());
            seen.insert(id, totals(invoice));
        }
        url = page.pointer("/pagination/next").and_then(Value::as_str).map(str::to_string);
    }

    let mut mismatches = Vec::new();
    for (id, want) in expected {
        let problem = match seen.get(id) {
            None => Some("missing".to_string()),
            Some(Err(e)) => Some(e.clone()),
            Some(Ok((amount, lines))) if amount != lines || amount != want => {
                Some(format!("amount {amount}, lines sum to {lines}, Chinook says {want}"))
            }
            Some(Ok(_)) => None,
        };
        mismatches.extend(problem.map(|p| format!("{id}: {p}")));
    }
    let extra = seen.keys().filter(|id| !expected.contains_key(*id)).count();
    if extra > 0 {
        mismatches.push(format!("{extra} invoices the import did not write"));
    }
    Ok(Verified { invoices: seen.len(), mismatches })
}

/// The store's own id of a record read with external ids on.
fn store_id(record: &Value) -> Option<String> {
    let entries = record.get("id")?.as_array()?;
    let entry = entries.iter().find(|e| e.get("provider").and_then(Value::as_str) == Some(PROVIDER))?;
    entry.get("id")?.as_str().map(str::to_string)
}

/// (`amount/total_amount`, sum of the lines' `total_price/total_amount`).
fn totals(invoice: &Value) -> Result<(Decimal, Decimal), String> {
    let amount = invoice.pointer("/amount/total_amount").ok_or("no amount/total_amount")?;
    let amount = decimal(amount).map_err(|e| format!("amount/total_amount: {e}"))?;
    let mut sum = Decimal::ZERO;
    for (i, line) in
        invoice.get("lines").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().enumerate()
    {
        let total =
            line.pointer("/total_price/total_amount").ok_or(format!("line {i} has no total_price/total_amount"))?;
        sum += decimal(total).map_err(|e| format!("line {i}: {e}"))?;
    }
    Ok((amount, sum))
}

/// The import: records per entity, speed, errors.
pub fn print_import(imported: &Imported) {
    let secs = imported.took.as_secs_f64().max(0.001);
    println!("\nImported through POST /batch as \"store\" ({} calls, external ids on):", imported.batches);
    for (entity, n) in &imported.counts {
        println!("  {entity:<14} {n:>6}");
    }
    println!(
        "  {:<14} {:>6} records in {:.2} s = {:.0} records/s, {} errors",
        "total",
        imported.records(),
        secs,
        imported.records() as f64 / secs,
        imported.errors
    );
    for error in &imported.first_errors {
        println!("  ! {error}");
    }
}

/// What "books" received by webhook.
pub fn print_webhooks(tally: &Tally, complete: bool, expected: usize) {
    println!("\nWebhooks received by \"books\" (HTTP Basic and Standard Webhooks signature checked):");
    for (entity, n) in &tally.records {
        println!("  {entity:<14} {n:>6}");
    }
    let signatures =
        if tally.refused == 0 { "all signatures valid".to_string() } else { format!("{} REFUSED", tally.refused) };
    println!(
        "  {} POSTs, {} records ({} distinct of {expected} imported), {} replays dropped, {signatures}",
        tally.posts,
        tally.received_records(),
        tally.distinct_records(),
        tally.replays
    );
    if !complete {
        println!("  ! not every imported record arrived in time");
    }
}

/// The verification's verdict.
pub fn print_verified(verified: &Verified) {
    println!("\nVerify (every invoice read back with GET, following pagination.next):");
    if verified.ok() {
        println!("  {} invoices: totals match their lines to the cent", verified.invoices);
        return;
    }
    println!("  {} invoices read, {} MISMATCHES:", verified.invoices, verified.mismatches.len());
    for m in verified.mismatches.iter().take(MISMATCHES_KEPT) {
        println!("  ! {m}");
    }
}

/// Where to look next, with the store app's credentials.
pub fn print_try_it(hub: &Hub, platform: &Platform, admin_token: &str) {
    let store = &platform.store;
    let api = format!("{}/api/v2/{}", hub.base, store.group);
    let auth = format!("{}:{}", store.api_id, store.api_key);
    println!("\nTry it (organization {}, \"store\" app {}, group {}):", platform.org, store.api_id, store.group);
    println!("  curl -u {auth} '{api}/people?$top=5'");
    println!("  curl -u {auth} '{api}/invoices?$top=1&$orderby=transaction_date%20DESC'");
    println!("  curl -u {auth} -H 'CONNEC-EXTERNAL-IDS: true' '{api}/items?$filter=code%20eq%20%271%27'");
    println!("  curl -u {auth} '{api}/changes?limit=3'");
    println!(
        "  curl -u {auth} -H 'content-type: application/json' -d '{{\"people\":{{\"first_name\":\"Ada\",\"last_name\":\"Lovelace\"}}}}' '{api}/people'"
    );
    println!("  curl -H 'authorization: Bearer {admin_token}' {}/platform/v1/apps", hub.base);
}
