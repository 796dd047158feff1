//! The OpenAPI 3.1 document of the whole API (data API, platform API and
//! webhooks), written by hand in `openapi.json` and served at `GET /openapi.json`.
//! `tests/openapi.rs` fails when it and the routers drift apart.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// The document, as served and as `sharehub openapi` prints it.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /openapi.json`.
pub async fn document() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], OPENAPI_JSON)
        .into_response()
}
