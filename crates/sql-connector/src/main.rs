//! `sharehub-sql-connector`: runs a SQL connector, shows its status, pauses
//! and resumes organizations, and builds the Chinook sample database.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sharehub_connector::State;
use sharehub_sql_connector::{chinook, run, Config};

#[derive(Parser)]
#[command(version, about = "Bridges an app's SQLite or PostgreSQL database with sharehub")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the connector: initial import, polling, webhooks, change feed.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Prints each organization's status (and failing records) as JSON.
    Status {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Pauses an organization's sync (a running connector obeys at its next step).
    Pause {
        #[arg(long, short)]
        config: PathBuf,
        group: String,
    },
    /// Resumes an organization's sync and clears its failure count.
    Resume {
        #[arg(long, short)]
        config: PathBuf,
        group: String,
    },
    /// Builds the Chinook store's SQLite database from the built-in sample.
    ChinookDb { out: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Coloured only on a terminal: a log redirected to a file stays plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Run { config } => serve(&Config::load(&config)?).await,
        Command::Status { config } => status(&Config::load(&config)?).await,
        Command::Pause { config, group } => set_paused(&Config::load(&config)?, &group, true).await,
        Command::Resume { config, group } => set_paused(&Config::load(&config)?, &group, false).await,
        Command::ChinookDb { out } => {
            chinook::build(&out).await?;
            print_line(&serde_json::json!({ "database": out.display().to_string() }).to_string())?;
            Ok(())
        }
    }
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    let connector = run::build(config).await.context("building the connector")?;
    let listener =
        tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let running = run::start(connector, listener).await?;
    tracing::info!(addr = %running.addr, "connector running: POST /webhooks, GET /status");
    tokio::signal::ctrl_c().await?;
    running.stop().await;
    Ok(())
}

async fn status(config: &Config) -> anyhow::Result<()> {
    let state = State::open(&config.state).await?;
    let mut out = Vec::new();
    for org in &config.orgs {
        let group = &org.settings.group_id;
        out.push(serde_json::json!({
            "status": state.status(group).await?,
            "settings": org.settings,
            "record_errors": state.record_errors(group).await?,
        }));
    }
    print_line(&serde_json::to_string_pretty(&out)?)?;
    Ok(())
}

async fn set_paused(config: &Config, group: &str, paused: bool) -> anyhow::Result<()> {
    anyhow::ensure!(config.orgs.iter().any(|o| o.settings.group_id == group), "{group} is not in the configuration");
    State::open(&config.state).await?.set_paused(group, paused).await?;
    print_line(&serde_json::json!({ "group_id": group, "paused": paused }).to_string())?;
    Ok(())
}

/// Prints a line of output; a reader that went away (`status | head`) ends
/// the command quietly, where `println!` would panic.
fn print_line(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
