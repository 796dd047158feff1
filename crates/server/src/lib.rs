//! The HTTP side of sharehub: the Connec!-compatible API ([`api`]), the
//! platform API ([`platform`]), configuration, the one error type, and the
//! wiring that starts the server and the webhook delivery workers.
#![forbid(unsafe_code)]

pub mod api;
pub mod cache;
pub mod config;
pub mod error;
pub mod extract;
mod json_errors;
pub mod openapi;
pub mod platform;
mod serve;
pub mod state;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use sharehub_delivery::worker::{Deliverer, DeliveryOptions};
use sharehub_store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::ApiError;
pub use state::AppState;

/// The whole router with its middleware.
pub fn router(state: AppState) -> Router {
    let limit = state.config.body_limit_bytes;
    let timeout = Duration::from_secs(state.config.request_timeout_secs);
    let router = Router::new()
        .merge(api::routes())
        .merge(platform::routes())
        // A path the API lacks is 404; a method a path lacks is axum's 405
        // (with `Allow`), made the contract's JSON by `ensure_json_errors`.
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(limit))
        // A client that stalls mid-request is cut off, so it can neither hold
        // a connection forever nor keep a graceful shutdown waiting.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::map_response(json_errors::ensure_json_errors))
        .with_state(state);
    let routed = telemetry::instrument(router);
    // The suffix goes before routing, so that every route takes it.
    Router::new().fallback_service(tower::util::MapRequest::new(routed, without_json_suffix))
}

/// Old Connec! clients append `.json` to paths (`/api/v2/{group}/people.json`,
/// `/version.json`); the path is routed without it. `/openapi.json` is a
/// name, not a suffix.
fn without_json_suffix(mut request: axum::extract::Request) -> axum::extract::Request {
    let uri = request.uri();
    let Some(path) = uri.path().strip_suffix(".json").filter(|p| *p != "/openapi" && !p.ends_with('/')) else {
        return request;
    };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    // A path cut from a valid one stays valid; if not, it is routed as sent.
    let Ok(pq) = path_and_query.parse() else { return request };
    parts.path_and_query = Some(pq);
    if let Ok(uri) = axum::http::Uri::from_parts(parts) {
        *request.uri_mut() = uri;
    }
    request
}

/// A running hub: its address and how to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub store: Arc<dyn Store>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<()>,
    delivery: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops taking requests, lets in-flight ones finish, stops delivery,
    /// then closes the store (on SQLite: no write-ahead log is left behind).
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.server.await;
        if let Some(delivery) = self.delivery {
            let _ = delivery.await;
        }
        self.store.close().await;
    }
}

/// Starts the hub on `listener` with `store`: the HTTP server and, when
/// configured, the delivery workers.
pub async fn start(config: Config, store: Arc<dyn Store>, listener: TcpListener) -> std::io::Result<Running> {
    let addr = listener.local_addr()?;
    sharehub_model::schema::prepare();
    let shutdown = CancellationToken::new();
    let delivery = match config.delivery.enabled {
        true => Some(start_delivery(&config, store.clone(), shutdown.clone())?),
        false => None,
    };

    // Which database, said once: a misspelt setting falls back to the default file.
    let database = without_credentials(&config.database_url);
    let app_timeout_secs = config.request_timeout_secs;
    let app = router(AppState::new(store.clone(), config));
    let header_timeout = Duration::from_secs(app_timeout_secs);
    let server = tokio::spawn(serve::serve(listener, app, header_timeout, shutdown.clone()));
    tracing::info!(%addr, database, "sharehub is listening");
    Ok(Running { addr, store, shutdown, server, delivery })
}

/// A database URL without its user and password.
pub fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => url.to_string(),
    }
}

fn start_delivery(
    config: &Config,
    store: Arc<dyn Store>,
    shutdown: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let d = &config.delivery;
    let options = DeliveryOptions {
        schedule: sharehub_delivery::schedule::RetrySchedule {
            delays: sharehub_delivery::schedule::RetrySchedule::parse_delays(&d.retry_schedule).unwrap_or_default(),
            jitter: d.jitter,
        },
        timeout: Duration::from_secs(d.timeout_secs),
        batch_records: d.batch_records,
        poll_interval: Duration::from_millis(d.poll_interval_ms),
        lease: Duration::from_millis(d.lease_ms),
    };
    let deliverer = Deliverer::new(store, options).map_err(std::io::Error::other)?;
    Ok(tokio::spawn(deliverer.run(shutdown)))
}
