//! `sharehub demo`: the hub on the Chinook sample data, end to end and for
//! real. It starts the hub on a fresh SQLite file, sets up an organization and
//! two apps through the platform API, imports Chinook as the "store" app
//! through the public API, receives the "books" app's signed webhooks on a
//! real listener, reads every invoice back to check its totals, and prints how
//! to try the API with curl.

mod chinook;
mod hub;
mod import;
mod listener;
mod report;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use sharehub_server::config::Secret;
use sharehub_server::{Config, Running};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use hub::Hub;

/// How long to wait for the books app to have every record by webhook.
const WEBHOOK_WAIT: Duration = Duration::from_secs(30);

/// Options of `sharehub demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Stop after the report instead of serving until Ctrl-C (for scripts).
    #[arg(long)]
    pub exit: bool,
    /// The SQLite file of the demo; one an earlier demo left is deleted first
    /// (any other file there is refused, never deleted).
    #[arg(long, default_value = "sharehub-demo.db")]
    pub db_file: PathBuf,
    /// Address to listen on; when taken, any free port of the same address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
}

/// Runs the demo; an error when the import or the verification failed.
pub async fn run(args: DemoArgs, mut config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let admin_token = sharehub_model::ids::new_api_key();
    config.admin_token = Some(Secret::new(admin_token.clone()));
    config.database_url = fresh_database(&args.db_file).await?;
    let plan = chinook::plan()?;

    let running = start_hub(config, args.bind).await?;
    let hub = Hub::new(format!("http://{}", running.addr), admin_token.clone());
    println!("sharehub demo: hub on {} with {}", hub.base, args.db_file.display());

    let outcome = run_steps(&hub, &plan, &admin_token, !args.exit).await;
    println!("\nDone in {:.1} s.", started.elapsed().as_secs_f64());
    let (listener, passed) = match outcome {
        Ok(done) => done,
        Err(e) => {
            running.stop().await;
            return Err(e);
        }
    };

    if !args.exit {
        println!("Serving on {} until Ctrl-C; webhooks to \"books\" are printed as they come.", hub.base);
        listener.go_live();
        crate::cli::shutdown_signal().await;
    }
    running.stop().await;
    anyhow::ensure!(passed, "the demo found errors (see above)");
    Ok(())
}

/// Platform set-up, import, webhooks, verification and the report. Answers
/// the listener (to keep it serving) and whether every check passed.
async fn run_steps(
    hub: &Hub,
    plan: &chinook::Plan,
    admin_token: &str,
    serving: bool,
) -> anyhow::Result<(listener::Listener, bool)> {
    let bound = listener::bind().await?;
    let hook_url = bound.url.clone();
    let platform = hub.set_up(&hook_url).await.context("setting up the platform")?;
    let books = &platform.books;
    let listener = bound.serve(&books.api_id, &books.api_key, &books.webhook_secret)?;
    println!(
        "Organization {} with apps \"store\" ({}, writes) and \"books\" ({}, webhooks to {})",
        platform.org, platform.store.api_id, books.api_id, hook_url
    );

    let imported = import::import(hub, &platform.store, plan).await?;
    report::print_import(&imported);

    let complete = listener.wait_for(&imported.counts, WEBHOOK_WAIT).await;
    report::print_webhooks(&listener.tally(), complete, imported.records());

    let verified = report::verify(hub, &platform.store, &plan.invoice_totals).await?;
    report::print_verified(&verified);
    // curl commands are only worth printing for a hub that stays up.
    if serving {
        report::print_try_it(hub, &platform, admin_token);
    }

    let passed = imported.errors == 0 && imported.records() == plan.len() && complete && verified.ok();
    Ok((listener, passed))
}

/// A `sqlite://` URL for `file`, deleting what an earlier demo left there.
async fn fresh_database(file: &Path) -> anyhow::Result<String> {
    ensure_demo_leftover(file).await?;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = file.as_os_str().to_owned();
        path.push(suffix);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing the old demo database {}", Path::new(&path).display()))
            }
        }
    }
    Ok(format!("sqlite://{}", file.display()))
}

/// Refuses a file that is not an earlier demo's: one that is no sharehub
/// database, or that holds an organization other than the demo's. A typo in
/// `--db-file` must not wipe a real hub.
async fn ensure_demo_leftover(file: &Path) -> anyhow::Result<()> {
    if !file.exists() {
        return Ok(());
    }
    if sharehub_store::sqlite::in_use(file).with_context(|| format!("checking whether {} is in use", file.display()))? {
        anyhow::bail!(
            "{} is in use by a running hub (another demo?), so it is not deleted: stop that one or pass another --db-file",
            file.display()
        );
    }
    // No journal mode or migration is applied: reading changes nothing.
    let options = SqliteConnectOptions::new().filename(file).create_if_missing(false);
    let names: Result<Vec<String>, sqlx::Error> = async {
        let mut conn = options.connect().await?;
        let names = sqlx::query_scalar("SELECT name FROM orgs").fetch_all(&mut conn).await;
        conn.close().await?;
        names
    }
    .await;
    match names {
        Ok(names) if names.iter().all(|name| name == hub::DEMO_ORG) => Ok(()),
        _ => anyhow::bail!(
            "{} is not a database an earlier demo left, so it is not deleted: pass another --db-file",
            file.display()
        ),
    }
}

/// Starts the hub on `bind`, or on a free port when that one is taken
/// (another hub or demo may well run on 8080).
async fn start_hub(config: Config, bind: SocketAddr) -> anyhow::Result<Running> {
    let socket = match tokio::net::TcpListener::bind(bind).await {
        Ok(socket) => socket,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let any = SocketAddr::new(bind.ip(), 0);
            tokio::net::TcpListener::bind(any).await.with_context(|| format!("binding {any}"))?
        }
        Err(e) => return Err(e).with_context(|| format!("binding {bind}")),
    };
    let store = sharehub_store::open(&config.database_url).await.context("opening the demo database")?;
    Ok(sharehub_server::start(config, store, socket).await?)
}
