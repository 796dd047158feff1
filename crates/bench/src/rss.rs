//! Memory of a hub holding many records: `sharehub serve` runs as a child
//! process (so the client's memory is not counted), gets `--records` people
//! through `/batch`, then answers a few list queries; its VmRSS is read from
//! /proc/<pid>/status after each step.

use std::time::Instant;

use anyhow::Result;

use crate::data::people;
use crate::hub::ChildHub;
use crate::import::{batch_body, send_batch};
use crate::report::{rate, thousands, Metric};

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

pub async fn run(records: u64, batch: u64) -> Result<Vec<Metric>> {
    const S: &str = "rss-1m";
    let hub = ChildHub::start().await?;
    let (app, group) = hub.platform.writer_app("bench-rss", &["people"]).await?;
    let (idle, _) = hub.memory_kb()?;
    println!("{S}: importing {} people in batches of {batch}; idle RSS {:.1} MiB", thousands(records), mib(idle));

    let start = Instant::now();
    let mut done = 0u64;
    let mut next_report = 50_000;
    while done < records {
        let to = (done + batch).min(records);
        let body = batch_body(&group, &people("bench-rss", done, to));
        send_batch(&hub.platform, &app, body).await?;
        done = to;
        if done >= next_report || done == records {
            let (rss, _) = hub.memory_kb()?;
            let (_, r) = rate(done as usize, start.elapsed());
            println!("  {:>9} records, {:>6.0?}, {r}, RSS {:.1} MiB", thousands(done), start.elapsed(), mib(rss));
            next_report += 50_000;
        }
    }
    let import_time = start.elapsed();
    let (_, import_rate) = rate(records as usize, import_time);
    let (after_import, _) = hub.memory_kb()?;

    let queries = [
        "$top=100".to_string(),
        format!("$top=100&$skip={}", records / 2),
        "$top=100&$filter=last_name eq 'Müller'".to_string(),
        format!(
            "$top=50&$filter=email/address eq '{}'",
            crate::data::person("bench-rss", records / 3).record["email"]["address"].as_str().unwrap_or("")
        ),
        "$top=100&$orderby=last_name ASC".to_string(),
    ];
    let mut timings = Vec::new();
    for q in &queries {
        let t = Instant::now();
        let response = hub
            .platform
            .api(&app, reqwest::Method::GET, &format!("/api/v2/{group}/people"))
            .query(&parse(q))
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?.len();
        let took = t.elapsed();
        println!("  GET people?{q}: {status}, {bytes} bytes, {took:.1?}");
        timings.push(format!("{q}: {took:.0?}"));
    }
    let (after_queries, hwm) = hub.memory_kb()?;
    let db_bytes: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", hub.db.display())).ok())
        .map(|m| m.len())
        .sum();
    hub.stop().await?;

    // The target is in MB (10^6 bytes); the figures are shown in MiB.
    let ok = |kb: u64| Some((kb as f64) * 1024.0 < 150.0e6);
    Ok(vec![
        Metric::new(
            S,
            "RSS after import",
            "< 150 MB (143.1 MiB)",
            format!("{:.1} MiB", mib(after_import)),
            ok(after_import),
        ),
        Metric::new(
            S,
            "RSS after list queries",
            "< 150 MB (143.1 MiB)",
            format!("{:.1} MiB", mib(after_queries)),
            ok(after_queries),
        ),
        Metric::info(S, "peak RSS (VmHWM)", format!("{:.1} MiB", mib(hwm))),
        Metric::info(S, "idle RSS before import", format!("{:.1} MiB", mib(idle))),
        Metric::info(S, "records / import rate", format!("{} / {import_rate}", thousands(records))),
        Metric::info(S, "database size (with WAL)", format!("{:.0} MiB", db_bytes as f64 / 1048576.0)),
        Metric::info(S, "list query times", timings.join("; ")),
    ])
}

/// `a=b&c=d` into query pairs (reqwest encodes them).
fn parse(q: &str) -> Vec<(String, String)> {
    q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
