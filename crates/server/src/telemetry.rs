//! Logs and request tracing: every request gets a span with its method,
//! matched route and request id (taken from `x-request-id` or made here and
//! echoed back); the app and group fill in once known.

use axum::extract::MatchedPath;
use axum::http::{HeaderName, Request};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps the router in the request-id and tracing middleware.
pub fn instrument(router: axum::Router) -> axum::Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(make_span))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
    )
}

fn make_span<B>(request: &Request<B>) -> Span {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_default();
    let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
    let level_debug = route.starts_with("/health");
    if level_debug {
        tracing::debug_span!("request", method = %request.method(), route, request_id, app_id = tracing::field::Empty, group_id = tracing::field::Empty)
    } else {
        tracing::info_span!("request", method = %request.method(), route, request_id, app_id = tracing::field::Empty, group_id = tracing::field::Empty)
    }
}
