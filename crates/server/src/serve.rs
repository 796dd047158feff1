//! The HTTP/1.1 server loop: hyper's connection handling under the router,
//! with a deadline on reading each request's headers and a graceful stop.
//!
//! `axum::serve` gives hyper no timer, so hyper's header-read timeout never
//! runs there: a client could open connections and send headers a byte at a
//! time, or never finish them, and hold each connection forever. The body is
//! covered by the router's own timeout layer (a JSON 408); a request whose
//! headers are not all in within the same time is cut off, since there is no
//! request yet to answer.

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `app` on `listener` until `shutdown`; then stops accepting, lets
/// the requests in flight finish and closes idle keep-alive connections.
pub async fn serve(listener: TcpListener, app: Router, header_timeout: Duration, shutdown: CancellationToken) {
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
