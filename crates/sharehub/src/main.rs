//! `sharehub`: the hub that shares business records between applications.
//!
//! Subcommands: `serve` runs the hub; `demo` runs it on the Chinook sample
//! data with two apps and a real webhook receiver; `migrate` prepares a
//! database; `org`, `app` and `install` bootstrap the platform without the
//! admin API; `default-config` prints the commented defaults; `openapi` prints
//! the OpenAPI document of the API.
#![forbid(unsafe_code)]

// mimalloc instead of the system allocator: the hub allocates many small
// JSON values per record, and glibc's malloc spent a third of an import in
// allocation and free (measured with perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod demo;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sharehub", version, about = "Shares business records between applications in real time")]
struct Args {
    /// A TOML configuration file (the defaults: `sharehub default-config`).
    #[arg(long, global = true, env = "SHAREHUB_CONFIG")]
    config: Option<PathBuf>,
    /// The database URL, e.g. sqlite://sharehub.db (overrides the configuration).
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub: the API, the platform API and webhook delivery.
    Serve {
        /// Address to listen on (overrides the configuration).
        #[arg(long)]
        bind: Option<std::net::SocketAddr>,
    },
    /// Run the hub on the Chinook sample data: two apps, an import, live webhooks.
    Demo(demo::DemoArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Print the default configuration, with a comment on every setting.
    DefaultConfig,
    /// Print the OpenAPI document of the API.
    Openapi,
    /// Customer organizations.
    #[command(subcommand)]
    Org(cli::OrgCommand),
    /// Applications of the developer platform.
    #[command(subcommand)]
    App(cli::AppCommand),
    /// Install an app in an organization; prints the group id it will use.
    Install(cli::InstallArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Command::DefaultConfig = args.command {
        return cli::print_text(sharehub_server::config::DEFAULT_CONFIG);
    }
    if let Command::Openapi = args.command {
        return cli::print_text(sharehub_server::openapi::OPENAPI_JSON);
    }
    // The demo makes a SQLite file of its own; a database named for it would
    // be ignored, so it is refused rather than silently passed over.
    if matches!(args.command, Command::Demo(_)) && args.database.is_some() {
        anyhow::bail!("demo runs on a SQLite file of its own: name it with --db-file, not --database");
    }
    let mut config = sharehub_server::Config::load(args.config.as_deref())?;
    if let Some(database) = args.database {
        config.database_url = database;
    }
    // The demo prints its own report; its logs would only interleave with it.
    let default_filter = if matches!(args.command, Command::Demo(_)) { "warn" } else { cli::DEFAULT_LOG_FILTER };
    cli::init_logging(&config.log_format, default_filter);

    match args.command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                config.bind = bind;
            }
            cli::serve(config).await
        }
        Command::Demo(demo_args) => demo::run(demo_args, config).await,
        Command::Migrate => cli::migrate(&config).await,
        Command::Org(cmd) => cli::org(&config, cmd).await,
        Command::App(cmd) => cli::app(&config, cmd).await,
        Command::Install(install) => cli::install(&config, install).await,
        Command::DefaultConfig | Command::Openapi => Ok(()),
    }
}
