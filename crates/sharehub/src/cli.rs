//! The plain subcommands: serving, migrating and bootstrapping the platform
//! straight on the database (no admin token needed on the machine itself).

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use sharehub_server::platform::service;
use sharehub_server::Config;
use sharehub_store::{EntityAccess, NewApp, Store};

/// What is logged when `RUST_LOG` says nothing.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,tower_http=warn";

/// Sets up logs: `RUST_LOG` filters (else `default_filter`), text or JSON lines.
pub fn init_logging(format: &str, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // Logs go to stderr, coloured only on a terminal, so stdout stays for
    // what commands print (JSON of the CLI, the demo's report).
    let builder = builder.with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    // Listening before anything starts: a SIGTERM sent as soon as the hub
    // answers must still stop it cleanly.
    let stop = shutdown_signal();
    let store = sharehub_store::open(&config.database_url).await.context("opening the database")?;
    let listener =
        tokio::net::TcpListener::bind(config.bind).await.with_context(|| format!("binding {}", config.bind))?;
    let grace = std::time::Duration::from_secs(config.request_timeout_secs);
    let running = sharehub_server::start(config, store, listener).await?;
    println!("sharehub listening on http://{}", running.addr);
    stop.await;
    tracing::info!(grace_secs = grace.as_secs(), "shutting down: finishing requests in flight");
    if tokio::time::timeout(grace, running.stop()).await.is_err() {
        tracing::warn!("requests still in flight after the grace period; stopping anyway");
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM received after this call (the handlers are
/// installed at once, not when the future is first awaited).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (term, interrupt) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! { _ = term.recv() => {}, _ = interrupt.recv() => {} }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    sharehub_store::open(&config.database_url).await.context("migrating the database")?.close().await;
    // Named without its credentials, as in the start-up log.
    let database = sharehub_server::without_credentials(&config.database_url);
    print_text(&format!("database {database} migrated: every migration of this sharehub is applied\n"))?;
    Ok(())
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organization; prints its id.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List organizations.
    List,
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// Register an app; prints its api id, api key and webhook secret (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// The provider name in id arrays, a slug such as `shopify`.
        #[arg(long)]
        provider: String,
        /// Where webhooks go.
        #[arg(long)]
        url: Option<String>,
        /// Entities and rights: `people:rws,items:r` (r read, w write, s subscribe to webhooks).
        #[arg(long, default_value = "")]
        entities: String,
    },
    /// List apps.
    List,
    /// Replace an app's api key; prints the new one.
    RotateKey { app_id: String },
    /// Replace an app's webhook secret; prints the new one.
    RotateSecret { app_id: String },
}

#[derive(Args)]
pub struct InstallArgs {
    #[arg(long)]
    app: String,
    #[arg(long)]
    org: String,
    /// The app's account in the organization (defaults to the group id).
    #[arg(long)]
    realm: Option<String>,
}

/// Prints a document; a closed pipe (`sharehub app list | head`) is not an
/// error, so the command still closes its store.
pub fn print_text(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn print(value: serde_json::Value) -> anyhow::Result<()> {
    print_text(&format!("{}\n", serde_json::to_string_pretty(&value)?))
}

/// Runs `command` on the configured store, then closes it (on SQLite this
/// folds the write-ahead log back into the database file).
async fn on_store<F>(config: &Config, command: F) -> anyhow::Result<()>
where
    F: AsyncFnOnce(&dyn Store) -> anyhow::Result<()>,
{
    let store = sharehub_store::open(&config.database_url).await?;
    let result = command(store.as_ref()).await;
    store.close().await;
    result
}

pub async fn org(config: &Config, cmd: OrgCommand) -> anyhow::Result<()> {
    on_store(config, async |store| {
        match cmd {
            OrgCommand::Create { name } => print(json!({ "org": service::create_org(store, &name).await? }))?,
            OrgCommand::List => print(json!({ "orgs": store.list_orgs().await? }))?,
        }
        Ok(())
    })
    .await
}

pub async fn app(config: &Config, cmd: AppCommand) -> anyhow::Result<()> {
    on_store(config, async |store| app_command(store, cmd).await).await
}

async fn app_command(store: &dyn Store, cmd: AppCommand) -> anyhow::Result<()> {
    match cmd {
        AppCommand::Create { name, provider, url, entities } => {
            let new = NewApp { name, provider, notification_url: url, entities: parse_entities(&entities)? };
            let (app, secrets) = service::register_app(store, new).await?;
            print(json!({ "app": app, "secrets": secrets }))?;
        }
        AppCommand::List => print(json!({ "apps": store.list_apps().await? }))?,
        AppCommand::RotateKey { app_id } => {
            print(json!({ "api_id": app_id, "api_key": service::rotate_api_key(store, &app_id).await? }))?
        }
        AppCommand::RotateSecret { app_id } => {
            print(json!({ "api_id": app_id, "webhook_secret": service::rotate_webhook_secret(store, &app_id).await? }))?
        }
    }
    Ok(())
}

pub async fn install(config: &Config, args: InstallArgs) -> anyhow::Result<()> {
    on_store(config, async |store| {
        let group = service::install(store, &args.app, &args.org, args.realm.as_deref()).await?;
        print(json!({ "group": group }))?;
        Ok(())
    })
    .await
}

/// Parses `people:rws,items:r`.
pub fn parse_entities(spec: &str) -> anyhow::Result<Vec<EntityAccess>> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((entity, rights)) = item.split_once(':') else {
            anyhow::bail!(
                "in {item:?}: give the rights after a colon, such as {item}:rws (r read, w write, s subscribe)"
            );
        };
        if rights.is_empty() {
            anyhow::bail!("in {item:?}: no rights given; use r (read), w (write), s (subscribe)");
        }
        if let Some(bad) = rights.chars().find(|c| !"rws".contains(*c)) {
            anyhow::bail!("in {item:?}: {bad:?} is not a right; use r (read), w (write), s (subscribe)");
        }
        out.push(EntityAccess {
            entity: entity.to_string(),
            read: rights.contains('r'),
            write: rights.contains('w'),
            subscribe: rights.contains('s'),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_entities;

    #[test]
    fn entities_take_their_rights_after_a_colon() {
        let parsed = parse_entities("people:rws, items:r,invoices:w").unwrap();
        let rights: Vec<_> = parsed.iter().map(|a| (a.entity.as_str(), a.read, a.write, a.subscribe)).collect();
        assert_eq!(
            rights,
            [("people", true, true, true), ("items", true, false, false), ("invoices", false, true, false)]
        );
        assert!(parse_entities("").unwrap().is_empty());
    }

    #[test]
    fn entities_without_rights_or_with_unknown_ones_are_refused() {
        for (spec, says) in [("people", "after a colon"), ("people:", "no rights"), ("people:rx", "'x' is not a right")]
        {
            let error = parse_entities(spec).unwrap_err().to_string();
            assert!(error.contains(says), "{spec}: {error}");
        }
    }
}
