//! idmap-1m: the connector's id map lookups (app id -> hub id and back,
//! through `State`, as the sync loops make them) with 1k and with 1M links
//! in one organization. Both go through a primary key or an index, so the
//! time per lookup should not grow with the map.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sharehub_connector::State;

use crate::report::Metric;

const SCENARIO: &str = "idmap-1m";
const GROUP: &str = "cld-bench";

pub async fn run(links: u64, lookups: u64) -> Result<Vec<Metric>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("connector-state.db");
    let state = State::open(&path).await?;
    // Filled with SQL rather than `save_link` one by one: only the lookups
    // are measured, and a million single inserts would take minutes.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;

    fill(&pool, 1, 1_000).await?;
    let small = per_lookup(&state, 1_000, lookups).await?;
    fill(&pool, 1_001, links).await?;
    let large = per_lookup(&state, links, lookups).await?;
    pool.close().await;

    let ratio = large.as_secs_f64() / small.as_secs_f64();
    Ok(vec![
        Metric::info(SCENARIO, "per lookup, 1k links", micros(small)),
        Metric::info(SCENARIO, format!("per lookup, {} links", crate::report::thousands(links)), micros(large)),
        Metric::new(SCENARIO, "ratio large / small", "stays O(1) (< 2x)", format!("{ratio:.2}x"), Some(ratio < 2.0)),
    ])
}

/// Links app ids `from..=to` of tracks to hub items.
async fn fill(pool: &sqlx::SqlitePool, from: u64, to: u64) -> Result<()> {
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {to})
         INSERT INTO id_map SELECT '{GROUP}', 'tracks', CAST(i AS TEXT), 'items', 'hub-' || i, 1, 'fp' FROM n"
    );
    sqlx::query(&sql).execute(pool).await?;
    Ok(())
}

/// Mean time of one lookup, half of them app -> hub and half hub -> app,
/// at ids spread over `1..=links` (a fixed pseudo-random sequence).
async fn per_lookup(state: &State, links: u64, lookups: u64) -> Result<Duration> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let started = Instant::now();
    for _ in 0..lookups / 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let id = (x % links + 1).to_string();
        let link = state.link_by_app(GROUP, "tracks", "items", &id).await?.context("a linked track")?;
        let back = state.links_by_hub(GROUP, "items", &link.hub_id).await?;
        anyhow::ensure!(back.len() == 1 && back[0].app_id == id, "hub {} maps back to {back:?}", link.hub_id);
    }
    Ok(started.elapsed() / (lookups / 2 * 2) as u32)
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
