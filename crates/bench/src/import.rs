//! Batch import through `POST /batch`, against a raw-SQLite baseline in the
//! same run: the same JSON text per row, the same rows per transaction, into
//! a plain `(id TEXT PRIMARY KEY, data TEXT)` table with the hub's pragmas.

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures::StreamExt;
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

/// The statuses of a `/batch` answer; the records in it are skipped unread,
/// as an importer that only checks its writes would.
#[derive(serde::Deserialize)]
struct BatchAnswer {
    results: Vec<OpStatus>,
}

#[derive(serde::Deserialize)]
struct OpStatus {
    status: u16,
    #[serde(rename = "body")]
    _body: serde::de::IgnoredAny,
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
    let answer: BatchAnswer = serde_json::from_str(&text).context("reading the /batch answer")?;
    if let Some(i) = answer.results.iter().position(|r| r.status != 200 && r.status != 201) {
        let full: Value = serde_json::from_str(&text)?;
        bail!("an op answered {}: {}", answer.results[i].status, full["results"][i]["body"]);
    }
    Ok(answer.results.len())
}

/// Imports `rows` into a fresh in-process hub, `batch` ops per call and up to
/// `in_flight` calls at once; answers the time taken.
pub async fn hub_import(rows: &[Row], batch: usize, in_flight: usize) -> Result<Duration> {
    hub_import_on(Hub::start().await?, rows, batch, in_flight).await
}

/// [`hub_import`] into a hub already started (on any database); stops it.
///
/// Batches of one entity may be in flight together; the next entity starts
/// once they are all answered, since its records refer to the earlier ones
/// (people to organizations, invoices to people and items).
pub async fn hub_import_on(hub: Hub, rows: &[Row], batch: usize, in_flight: usize) -> Result<Duration> {
    let entities = ["organizations", "people", "employees", "items", "invoices"];
    let (app, group) = hub.platform.writer_app("bench-import", &entities).await?;
    // Bodies are built before the clock starts: the client shares the CPUs.
    let phases: Vec<Vec<String>> =
        by_entity(rows).iter().map(|rows| rows.chunks(batch).map(|c| batch_body(&group, c)).collect()).collect();
    let start = Instant::now();
    let mut written = 0;
    for bodies in phases {
        let sends = bodies.into_iter().map(|body| send_batch(&hub.platform, &app, body));
        let mut answers = futures::stream::iter(sends).buffer_unordered(in_flight.max(1));
        while let Some(count) = answers.next().await {
            written += count?;
        }
    }
    let elapsed = start.elapsed();
    if written != rows.len() {
        bail!("{written} of {} records written", rows.len());
    }
    hub.stop().await;
    Ok(elapsed)
}

/// The rows split into runs of one entity, in order.
fn by_entity(rows: &[Row]) -> Vec<&[Row]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        if i == rows.len() || rows[i].entity != rows[start].entity {
            runs.push(&rows[start..i]);
            start = i;
        }
    }
    runs
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

/// Runs `rounds` rounds of the raw import, then the hub's with one batch in
/// flight and with `in_flight`, each on a fresh database; reports the median
/// records/s of each and the ratios of those medians to the raw one. One
/// import of Chinook lasts a third of a second, so a single round swings with
/// whatever else the two cores do; rounds interleave the three so that a
/// noisy moment hits them alike.
pub async fn compare(
    scenario: &'static str,
    rows: &[Row],
    batch: usize,
    in_flight: usize,
    rounds: usize,
) -> Result<Vec<Metric>> {
    let bytes: usize = rows.iter().map(|r| r.record.to_string().len()).sum();
    let records = thousands(rows.len() as u64);
    println!("{scenario}: {records} records ({} KiB of JSON), {batch} per batch, {rounds} rounds", bytes / 1024);
    let (mut raws, mut ones, mut manys) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds.max(1) {
        let raw = raw_import(rows, batch).await?;
        let one = hub_import(rows, batch, 1).await?;
        let many = hub_import(rows, batch, in_flight).await?;
        let text = |d: Duration| rate(rows.len(), d).1;
        println!(
            "  round {round}: raw SQLite {raw:.2?} ({}), hub 1 in flight {one:.2?} ({}), {in_flight} in flight {many:.2?} ({})",
            text(raw),
            text(one),
            text(many)
        );
        raws.push(raw);
        ones.push(one);
        manys.push(many);
    }
    let ((raw_rate, raw_text), (one_rate, one_text), (many_rate, many_text)) =
        (rate(rows.len(), median(raws)), rate(rows.len(), median(ones)), rate(rows.len(), median(manys)));
    println!("  medians: raw {raw_text}, hub 1 in flight {one_text}, {in_flight} in flight {many_text}");

    let (one_ratio, many_ratio) = (one_rate / raw_rate, many_rate / raw_rate);
    let many_label = format!("hub import, {in_flight} batches in flight");
    let many_ratio_label = format!("ratio hub/raw, {in_flight} in flight");
    Ok(vec![
        Metric::info(scenario, "raw SQLite insert (baseline)", raw_text),
        Metric::new(scenario, "hub import, 1 batch in flight", ">= 10,000/s", one_text, Some(one_rate >= 10_000.0)),
        Metric::new(
            scenario,
            "ratio hub/raw, 1 in flight",
            ">= 0.50",
            format!("{one_ratio:.3}"),
            Some(one_ratio >= 0.5),
        ),
        Metric::new(scenario, many_label, ">= 10,000/s", many_text, Some(many_rate >= 10_000.0)),
        Metric::new(scenario, many_ratio_label, ">= 0.50", format!("{many_ratio:.3}"), Some(many_ratio >= 0.5)),
        Metric::info(scenario, "records / batch size / rounds", format!("{records} / {batch} / {rounds}")),
    ])
}

/// The middle one of some durations (the upper middle of an even count).
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}
