//! Builds a [`Connector`] from a [`Config`] and serves it: the sync loops and
//! the webhook receiver with its status endpoint.

use std::sync::Arc;

use sharehub_connector::{AppAdapter, Connector, ConnectorParts, Hub, HubCredentials, State};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::Db;
use crate::error::Result;
use crate::{MappingFile, SqlAdapter};

/// A connector built from its configuration, not yet running.
pub async fn build(config: &Config) -> Result<Connector> {
    let file = MappingFile::load(&config.mapping)?;
    let state = State::open(&config.state).await?;
    let creds = HubCredentials {
        url: config.hub.url.clone(),
        api_id: config.hub.api_id.clone(),
        api_key: config.hub.api_key.clone(),
        provider: config.hub.provider.clone(),
    };
    let hub = Hub::new(creds, config.sync.hub_attempts, config.sync.hub_backoff);
    let mut orgs = Vec::new();
    for org in &config.orgs {
        let db = Db::connect(&org.database).await?;
        let adapter: Arc<dyn AppAdapter> = Arc::new(SqlAdapter::new(db, file.tables.clone()).await?);
        orgs.push((org.settings.clone(), adapter));
    }
    let parts = ConnectorParts {
        state,
        hub,
        mapping: file.mapping,
        options: config.sync.clone(),
        orgs,
        webhook_secret: config.hub.webhook_secret.clone(),
        api_id: config.hub.api_id.clone(),
        api_key: config.hub.api_key.clone(),
    };
    Ok(Connector::new(parts)?)
}

/// A running connector: its HTTP address and how to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the loops and the receiver and waits for them.
    pub async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Stops at once, as a crash would: tasks are aborted mid-step.
    pub fn kill(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Serves `connector` on `listener` and runs its loops.
pub async fn start(connector: Connector, listener: TcpListener) -> Result<Running> {
    let addr = listener.local_addr().map_err(|e| crate::Error::Config(e.to_string()))?;
    let shutdown = CancellationToken::new();
    let router = sharehub_connector::webhook::router(connector.clone());
    let token = shutdown.clone();
    let server = tokio::spawn(async move {
        let stopped = async move { token.cancelled().await };
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stopped).await {
            tracing::error!(error = %e, "webhook receiver stopped");
        }
    });
    let token = shutdown.clone();
    let loops = tokio::spawn(async move { connector.run(token).await });
    Ok(Running { addr, shutdown, tasks: vec![server, loops] })
}
