//! `sharehub-bench`: reproducible benchmarks of sharehub.
//!
//! Every scenario starts a real hub (in-process, or `sharehub serve` as a
//! child for memory), registers apps and organizations through the platform
//! API and drives it over HTTP on loopback. Import scenarios also run a raw
//! SQLite baseline in the same run, so the hub is judged against the disk it
//! sits on rather than against a number from another machine.
//!
//! `cargo run --release -p sharehub-bench -- <scenario>` or `-- all`.
//!
//! The `pg-*` scenarios (or `pg-all`) run the hub on PostgreSQL instead:
//! `-- pg-all --postgres postgres://postgres@127.0.0.1:5432/postgres` (a
//! superuser URL; each hub gets a fresh database, used as `sharehub_app`).
//!
//! The connector scenarios (`connectors` runs all three) bridge the Chinook
//! store in SQLite and an empty CRM on PostgreSQL through two real SQL
//! connectors and a hub: `-- connectors --postgres <superuser URL>`. They live
//! here rather than in the connector's binary so that one command and one
//! report format cover the whole product, and the connector ships no
//! benchmark code.

// mimalloc instead of the system allocator: the hub allocates many small
// JSON values per record, and glibc's malloc spent a third of an import in
// allocation and free (measured with perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod connector;
mod connector_pair;
mod data;
mod hub;
mod idmap;
mod import;
mod pg;
mod pg_fanout;
mod post;
mod report;
mod rss;
mod webhook;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use report::Metric;

#[derive(Parser)]
#[command(name = "sharehub-bench", about = "Benchmarks of sharehub against its targets and a raw SQLite baseline")]
struct Args {
    /// What to run.
    scenario: Scenario,
    /// The Chinook sample set.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/chinook.json"))]
    chinook: PathBuf,
    /// Ops per `/batch` call in import-chinook.
    #[arg(long, default_value_t = 500)]
    chinook_batch: usize,
    /// Generated people in import-people.
    #[arg(long, default_value_t = 100_000)]
    people: u64,
    /// Ops per `/batch` call in import-people and rss-1m.
    #[arg(long, default_value_t = 1000)]
    people_batch: usize,
    /// Concurrent clients of post-single.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Import batches in flight at once, besides the run with one (import-*).
    #[arg(long, default_value_t = 2)]
    import_in_flight: usize,
    /// Rounds of import-chinook (each: raw, hub with 1 and with several in flight); medians are reported.
    #[arg(long, default_value_t = 7)]
    chinook_rounds: usize,
    /// Rounds of import-people, as for import-chinook.
    #[arg(long, default_value_t = 3)]
    people_rounds: usize,
    /// Duration of post-single and webhook-latency, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Most requests of post-single.
    #[arg(long, default_value_t = 30_000)]
    max_requests: usize,
    /// Writes per second of webhook-latency.
    #[arg(long, default_value_t = 500)]
    write_rate: u64,
    /// Records stored by rss-1m.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Superuser URL of the PostgreSQL server of the pg-* scenarios.
    #[arg(long)]
    postgres: Option<String>,
    /// Concurrent clients of pg-post.
    #[arg(long, default_value_t = 32)]
    pg_clients: usize,
    /// Writes per second of pg-webhook-latency.
    #[arg(long, default_value_t = 300)]
    pg_write_rate: u64,
    /// Subscribed apps of pg-fanout.
    #[arg(long, default_value_t = 6)]
    fanout_apps: usize,
    /// Changes written before delivery starts in pg-fanout.
    #[arg(long, default_value_t = 20_000)]
    fanout_records: u64,
    /// Polling interval of both connectors in connector-*, in milliseconds.
    #[arg(long, default_value_t = 500)]
    connector_poll_ms: u64,
    /// CRM contact edits timed one after another by connector-latency.
    #[arg(long, default_value_t = 30)]
    edits: usize,
    /// Links in the id map of idmap-1m.
    #[arg(long, default_value_t = 1_000_000)]
    idmap_links: u64,
    /// Lookups timed at each size in idmap-1m.
    #[arg(long, default_value_t = 20_000)]
    idmap_lookups: u64,
    /// Where `all`, `pg-all` and `connectors` write their Markdown table.
    #[arg(long, default_value = "bench-results.md")]
    markdown: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    ImportChinook,
    ImportPeople,
    PostSingle,
    WebhookLatency,
    #[value(name = "rss-1m")]
    Rss1m,
    All,
    PgImport,
    PgPost,
    PgWebhookLatency,
    PgFanout,
    PgAll,
    ConnectorImport,
    ConnectorLatency,
    #[value(name = "idmap-1m")]
    Idmap1m,
    Connectors,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // Silent unless asked: `RUST_LOG=warn` shows what the hub and the
    // connectors under test complain about (failed deliveries, retries).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let machine = report::machine();
    println!("{machine}");
    if cfg!(debug_assertions) {
        println!("WARNING: a debug build; run with --release for meaningful numbers");
    }
    let scenarios = match args.scenario {
        Scenario::All => vec![
            Scenario::ImportChinook,
            Scenario::ImportPeople,
            Scenario::PostSingle,
            Scenario::WebhookLatency,
            Scenario::Rss1m,
        ],
        Scenario::PgAll => vec![Scenario::PgImport, Scenario::PgPost, Scenario::PgWebhookLatency, Scenario::PgFanout],
        Scenario::Connectors => vec![Scenario::ConnectorImport, Scenario::ConnectorLatency, Scenario::Idmap1m],
        one => vec![one],
    };
    let mut all = Vec::new();
    for scenario in scenarios {
        let metrics = run(scenario, &args).await?;
        report::print_block(name(scenario), &metrics);
        all.extend(metrics);
    }
    if matches!(args.scenario, Scenario::All | Scenario::PgAll | Scenario::Connectors) {
        let table = report::markdown(&machine, &all);
        std::fs::write(&args.markdown, &table)?;
        println!("\n{table}\n(written to {})", args.markdown.display());
    }
    Ok(())
}

fn name(s: Scenario) -> &'static str {
    match s {
        Scenario::ImportChinook => "import-chinook",
        Scenario::ImportPeople => "import-people",
        Scenario::PostSingle => "post-single",
        Scenario::WebhookLatency => "webhook-latency",
        Scenario::Rss1m => "rss-1m",
        Scenario::All => "all",
        Scenario::PgImport => "pg-import",
        Scenario::PgPost => "pg-post",
        Scenario::PgWebhookLatency => "pg-webhook-latency",
        Scenario::PgFanout => "pg-fanout",
        Scenario::PgAll => "pg-all",
        Scenario::ConnectorImport => "connector-import",
        Scenario::ConnectorLatency => "connector-latency",
        Scenario::Idmap1m => "idmap-1m",
        Scenario::Connectors => "connectors",
    }
}

async fn run(scenario: Scenario, args: &Args) -> Result<Vec<Metric>> {
    let pg_url =
        || args.postgres.as_deref().context("the pg-* and connector-* scenarios need --postgres <superuser URL>");
    match scenario {
        Scenario::ImportChinook => {
            let rows = data::chinook(&args.chinook, "bench-import")?;
            import::compare("import-chinook", &rows, args.chinook_batch, args.import_in_flight, args.chinook_rounds)
                .await
        }
        Scenario::ImportPeople => {
            let rows = data::people("bench-import", 0, args.people);
            import::compare("import-people", &rows, args.people_batch, args.import_in_flight, args.people_rounds).await
        }
        Scenario::PostSingle => {
            post::run(&post::PostArgs { clients: args.clients, seconds: args.seconds, max_requests: args.max_requests })
                .await
        }
        Scenario::WebhookLatency => {
            webhook::run(&webhook::WebhookArgs { rate: args.write_rate, seconds: args.seconds }).await
        }
        Scenario::Rss1m => rss::run(args.records, args.people_batch as u64).await,
        Scenario::PgImport => {
            pg::import(pg_url()?, &data::people("bench-import", 0, args.people), args.people_batch).await
        }
        Scenario::PgPost => {
            let post_args =
                post::PostArgs { clients: args.pg_clients, seconds: args.seconds, max_requests: args.max_requests };
            pg::post(pg_url()?, &post_args).await
        }
        Scenario::PgWebhookLatency => {
            pg::webhook_latency(pg_url()?, &webhook::WebhookArgs { rate: args.pg_write_rate, seconds: args.seconds })
                .await
        }
        Scenario::PgFanout => {
            let fanout = pg_fanout::FanoutArgs {
                records: args.fanout_records,
                apps: args.fanout_apps,
                batch: args.people_batch,
            };
            pg_fanout::run(pg_url()?, &fanout).await
        }
        Scenario::ConnectorImport => connector::import(pg_url()?, connector_poll(args)).await,
        Scenario::ConnectorLatency => connector::latency(pg_url()?, connector_poll(args), args.edits).await,
        Scenario::Idmap1m => idmap::run(args.idmap_links, args.idmap_lookups).await,
        Scenario::All | Scenario::PgAll | Scenario::Connectors => unreachable!("expanded above"),
    }
}

fn connector_poll(args: &Args) -> std::time::Duration {
    std::time::Duration::from_millis(args.connector_poll_ms)
}
