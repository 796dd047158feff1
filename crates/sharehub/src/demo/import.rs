//! Pushes the Chinook plan through `POST /batch` as the "store" app, the way
//! a connector does: upserts by external id, a few hundred ops per call.

use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};

use super::chinook::Plan;
use super::hub::{shorten, AppCreds, Hub};

/// Ops per batch call: big enough to amortize a commit, small enough to
/// keep each answer quick.
const OPS_PER_BATCH: usize = 250;
/// Errors kept to print; the rest are only counted.
const ERRORS_KEPT: usize = 5;

/// What the import did.
#[derive(Default)]
pub struct Imported {
    /// Records written, per entity, in import order.
    pub counts: Vec<(&'static str, usize)>,
    pub batches: usize,
    pub errors: usize,
    /// The first few errors: which record and what the hub said.
    pub first_errors: Vec<String>,
    pub took: Duration,
}

impl Imported {
    /// Records written, all entities together.
    pub fn records(&self) -> usize {
        self.counts.iter().map(|(_, n)| n).sum()
    }
}

/// Imports every entity of `plan`, in order, so references point to records
/// already there.
pub async fn import(hub: &Hub, store: &AppCreds, plan: &Plan) -> anyhow::Result<Imported> {
    let started = Instant::now();
    let mut imported = Imported::default();
    for (entity, records) in &plan.entities {
        let mut written = 0;
        for chunk in records.chunks(OPS_PER_BATCH) {
            let results = post_batch(hub, store, entity, chunk).await?;
            imported.batches += 1;
            written += tally(&mut imported, entity, chunk, &results);
        }
        imported.counts.push((entity, written));
    }
    imported.took = started.elapsed();
    Ok(imported)
}

async fn post_batch(hub: &Hub, store: &AppCreds, entity: &str, records: &[Value]) -> anyhow::Result<Vec<Value>> {
    let url = format!("/api/v2/{}/{entity}", store.group);
    let ops: Vec<Value> =
        records.iter().map(|r| json!({ "method": "post", "url": url, "params": { entity: r } })).collect();
    let request = hub.api(store, Method::POST, "/batch").json(&json!({ "sequential": true, "ops": ops }));
    let answer = hub.call(request).await.with_context(|| format!("importing {entity}"))?;
    let results = answer.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
    anyhow::ensure!(
        results.len() == records.len(),
        "the batch answered {} results for {} ops",
        results.len(),
        records.len()
    );
    Ok(results)
}

/// Counts the 2xx results; records the others as errors. Answers the 2xx count.
fn tally(imported: &mut Imported, entity: &str, records: &[Value], results: &[Value]) -> usize {
    let mut ok = 0;
    for (record, result) in records.iter().zip(results) {
        let status = result.get("status").and_then(status_code).unwrap_or(0);
        if (200..300).contains(&status) {
            ok += 1;
            continue;
        }
        imported.errors += 1;
        if imported.first_errors.len() < ERRORS_KEPT {
            let id = record.pointer("/id/0/id").and_then(Value::as_str).unwrap_or("?");
            let body = result.get("body").map(Value::to_string).unwrap_or_default();
            imported.first_errors.push(format!("{entity} {id}: {status} {}", shorten(&body, 300)));
        }
    }
    ok
}

/// A status written as a number or, as in error bodies, a string.
fn status_code(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str()?.parse().ok())
}
