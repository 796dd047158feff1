//! Batch import through `POST /batch`, against a raw-SQLite baseline in the
//! same run: the same JSON text per row, the same rows per transaction, into
//! a plain `(id TEXT PRIMARY KEY, data TEXT)` table with the hub's pragmas.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use crate::data::Row;
use crate::hub::{AppCreds, Hub, Platform};
use crate::report::{rate, thousands, Metric};

/// The `/batch` body of `rows`, every op a POST (upsert by the app's own id).
pub fn batch_body(group: &str, rows: &[Row]) -> String {
    let ops: Vec<Value> = rows
        .iter()
        .map(|r| json!({ "method": "post", "url": format!("/api/v2/{group}/{}", r.entity), "params": { r.entity: &r.record } }))
        .collect();
    json!({ "sequential": true, "ops": ops }).to_string()
}

/// Sends one prepared batch; counts the ops answered 200/201 and fails
/// on any other answer, showing the first.
pub async fn send_batch(platform: &Platform, app: &AppCreds, body: String) -> Result<usize> {
    let response = platform.api(app, reqwest::Method::POST, "/batch").body(body).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("POST /batch answered {status}: {}", &text[..text.len().min(500)]);
    }
    let answer: Value = serde_json::from_str(&text)?;
    let results = answer["results"].as_array().context("results")?;
    for r in results {
        let s = r["status"].as_u64().unwrap_or(0);
        if s != 200 && s != 201 {
            bail!("an op answered {s}: {}", r["body"]);
        }
    }
    Ok(results.len())
}

/// Imports `rows` into a fresh in-process hub, `batch` ops per call; answers the time taken.
pub async fn hub_import(rows: &[Row], batch: usize) -> Result<Duration> {
    hub_import_on(Hub::start().await?, rows, batch).await
}

/// [`hub_import`] into a hub already started (on any database); stops it.
pub async fn hub_import_on(hub: Hub, rows: &[Row], batch: usize) -> Result<Duration> {
    let entities = ["organizations", "people", "employees", "items", "invoices"];
    let (app, group) = hub.platform.writer_app("bench-import", &entities).await?;
    // Bodies are built before the clock starts: the client shares the CPUs.
    let bodies: Vec<String> = rows.chunks(batch).map(|c| batch_body(&group, c)).collect();
    let start = Instant::now();
    let mut written = 0;
    for body in bodies {
        written += send_batch(&hub.platform, &app, body).await?;
    }
    let elapsed = start.elapsed();
    if written != rows.len() {
        bail!("{written} of {} records written", rows.len());
    }
    hub.stop().await;
    Ok(elapsed)
}

/// Inserts the same rows into a plain SQLite table, `batch` rows per transaction.
pub async fn raw_import(rows: &[Row], batch: usize) -> Result<Duration> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("raw.db").display());
    let mut conn = SqliteConnectOptions::from_str(&url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .pragma("cache_size", "-32768")
        .pragma("temp_store", "memory")
        .connect()
        .await?;
    sqlx::query("CREATE TABLE records (id TEXT PRIMARY KEY, data TEXT NOT NULL)").execute(&mut conn).await?;
    let texts: Vec<(String, String)> = rows.iter().map(|r| (r.ext_id.clone(), r.record.to_string())).collect();
    let start = Instant::now();
    for chunk in texts.chunks(batch) {
        let mut tx = conn.begin().await?;
        for (id, data) in chunk {
            sqlx::query("INSERT INTO records (id, data) VALUES (?1, ?2)").bind(id).bind(data).execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let elapsed = start.elapsed();
    conn.close().await?;
    Ok(elapsed)
}

/// Runs both imports and reports records/s of each and their ratio.
pub async fn compare(scenario: &'static str, rows: &[Row], batch: usize) -> Result<Vec<Metric>> {
    let bytes: usize = rows.iter().map(|r| r.record.to_string().len()).sum();
    println!("{scenario}: {} records ({} KiB of JSON), {batch} per batch", thousands(rows.len() as u64), bytes / 1024);
    let raw = raw_import(rows, batch).await?;
    let (raw_rate, raw_text) = rate(rows.len(), raw);
    println!("  raw SQLite: {raw:.2?} ({raw_text})");
    let hub = hub_import(rows, batch).await?;
    let (hub_rate, hub_text) = rate(rows.len(), hub);
    println!("  hub /batch: {hub:.2?} ({hub_text})");
    let ratio = hub_rate / raw_rate;
    Ok(vec![
        Metric::new(scenario, "hub import", ">= 10,000/s", hub_text, Some(hub_rate >= 10_000.0)),
        Metric::info(scenario, "raw SQLite insert (baseline)", raw_text),
        Metric::new(scenario, "ratio hub/raw", ">= 0.50", format!("{ratio:.3}"), Some(ratio >= 0.5)),
        Metric::info(scenario, "records / batch size", format!("{} / {batch}", thousands(rows.len() as u64))),
    ])
}
