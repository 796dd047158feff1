//! The PostgreSQL scenarios `pg-import`, `pg-post` and `pg-webhook-latency`:
//! the same drivers as the SQLite ones, but every hub runs on a fresh
//! database of the server named by `--postgres <superuser URL>`, created,
//! migrated and granted by the bench (`sharehub_store::test_support`), used
//! by the hub as the non-superuser role `sharehub_app` (row-level security
//! on, as in production), and dropped at the end.
//!
//! `pg-import` also runs a raw baseline on the same server in the same run:
//! the same rows (the same JSON text) into a plain table
//! `(id text PRIMARY KEY, data text)` of a fresh database, in transactions of
//! the same size, once with one `INSERT` per row (a prepared statement, one
//! round trip per row, as pgbench's simple scripts do) and once with one
//! multi-row `INSERT … SELECT FROM unnest($1, $2)` per transaction.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use sharehub_store::test_support::TestDb;
use sqlx::{Connection, PgConnection};

use crate::data::Row;
use crate::hub::Hub;
use crate::report::{ms, rate, thousands, Metric};
use crate::{import, post, webhook};

/// How the raw baseline sends a transaction's rows.
#[derive(Clone, Copy)]
enum RawMode {
    /// One prepared `INSERT … VALUES ($1, $2)` per row.
    RowByRow,
    /// One `INSERT … SELECT * FROM unnest($1::text[], $2::text[])` per transaction.
    MultiRow,
}

/// Inserts `rows` into a plain table of a fresh database, `batch` per transaction.
async fn raw_import(base: &str, rows: &[Row], batch: usize, mode: RawMode) -> Result<Duration> {
    let db = TestDb::create(base).await?;
    let result: Result<Duration> = async {
        let mut conn = PgConnection::connect(&db.admin_url).await?;
        sqlx::query("CREATE TABLE raw_records (id text PRIMARY KEY, data text NOT NULL)").execute(&mut conn).await?;
        let texts: Vec<(String, String)> = rows.iter().map(|r| (r.ext_id.clone(), r.record.to_string())).collect();
        let start = Instant::now();
        for chunk in texts.chunks(batch) {
            let mut tx = conn.begin().await?;
            match mode {
                RawMode::RowByRow => {
                    for (id, data) in chunk {
                        sqlx::query("INSERT INTO raw_records (id, data) VALUES ($1, $2)")
                            .bind(id)
                            .bind(data)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                RawMode::MultiRow => {
                    let (ids, datas): (Vec<&str>, Vec<&str>) =
                        chunk.iter().map(|(i, d)| (i.as_str(), d.as_str())).unzip();
                    sqlx::query("INSERT INTO raw_records (id, data) SELECT * FROM unnest($1::text[], $2::text[])")
                        .bind(&ids[..])
                        .bind(&datas[..])
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
        }
        let elapsed = start.elapsed();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM raw_records").fetch_one(&mut conn).await?;
        if n as usize != rows.len() {
            bail!("raw baseline stored {n} of {} rows", rows.len());
        }
        conn.close().await?;
        Ok(elapsed)
    }
    .await;
    db.drop_database().await?;
    result
}

/// `pg-import`: hub `/batch` import against both raw baselines.
pub async fn import(base: &str, rows: &[Row], batch: usize) -> Result<Vec<Metric>> {
    const S: &str = "pg-import";
    let bytes: usize = rows.iter().map(|r| r.record.to_string().len()).sum();
    println!("{S}: {} records ({} KiB of JSON), {batch} per batch", thousands(rows.len() as u64), bytes / 1024);
    let raw = raw_import(base, rows, batch, RawMode::RowByRow).await?;
    let (raw_rate, raw_text) = rate(rows.len(), raw);
    println!("  raw PostgreSQL, one INSERT per row: {raw:.2?} ({raw_text})");
    let multi = raw_import(base, rows, batch, RawMode::MultiRow).await?;
    let (multi_rate, multi_text) = rate(rows.len(), multi);
    println!("  raw PostgreSQL, one multi-row INSERT per tx: {multi:.2?} ({multi_text})");
    let hub = import::hub_import_on(Hub::start_postgres(base).await?, rows, batch, 1).await?;
    let (hub_rate, hub_text) = rate(rows.len(), hub);
    println!("  hub /batch: {hub:.2?} ({hub_text})");
    Ok(vec![
        Metric::new(S, "hub import", ">= 5,000/s", hub_text, Some(hub_rate >= 5_000.0)),
        Metric::info(S, "raw PG, 1 INSERT/row (baseline)", raw_text),
        Metric::info(S, "ratio hub/raw (1 INSERT/row)", format!("{:.3}", hub_rate / raw_rate)),
        Metric::info(S, "raw PG, multi-row INSERT/tx", multi_text),
        Metric::info(S, "ratio hub/raw (multi-row)", format!("{:.3}", hub_rate / multi_rate)),
        Metric::info(S, "records / batch size", format!("{} / {batch}", thousands(rows.len() as u64))),
    ])
}

/// `pg-post`: single-record POSTs from many clients.
pub async fn post(base: &str, args: &post::PostArgs) -> Result<Vec<Metric>> {
    const S: &str = "pg-post";
    println!("{S}: {} clients, up to {} s or {} requests", args.clients, args.seconds, args.max_requests);
    let (count, elapsed, p) = post::measure(Hub::start_postgres(base).await?, args).await?;
    let (per_s, text) = rate(count, elapsed);
    Ok(vec![
        Metric::new(S, "requests/s", ">= 1,500/s", text, Some(per_s >= 1500.0)),
        Metric::info(S, "latency p50", ms(p.at(50.0))),
        Metric::info(S, "latency p99", ms(p.at(99.0))),
        Metric::info(S, "requests / clients / time", format!("{count} / {} / {elapsed:.1?}", args.clients)),
    ])
}

/// `pg-webhook-latency`: write-to-webhook latency, three subscribers.
pub async fn webhook_latency(base: &str, args: &webhook::WebhookArgs) -> Result<Vec<Metric>> {
    const S: &str = "pg-webhook-latency";
    println!("{S}: {} writes/s for {} s", args.rate, args.seconds);
    let m = webhook::measure(Hub::start_postgres(base).await?, args).await?;
    let p = &m.latencies;
    let p99_met = p.at(99.0) < Duration::from_millis(100);
    Ok(vec![
        Metric::info(S, "latency p50", ms(p.at(50.0))),
        Metric::info(S, "latency p95", ms(p.at(95.0))),
        Metric::new(S, "latency p99", "< 100 ms", ms(p.at(99.0)), Some(p99_met)),
        Metric::info(S, "latency max", ms(p.max())),
        Metric::info(
            S,
            "deliveries (writes x 3), duplicates",
            format!("{} ({} x 3), {}", p.len(), m.writes, m.duplicates),
        ),
        Metric::info(S, "achieved write rate", format!("{:.0}/s", m.writes as f64 / m.write_time.as_secs_f64())),
    ])
}
