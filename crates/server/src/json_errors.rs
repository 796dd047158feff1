//! Every error answers the contract's JSON body, even those made outside the
//! handlers: a request timeout, a URI too long for the HTTP parser, a query
//! string axum could not read. This middleware rewrites any error response
//! that is not JSON into the one error body, keeping its status.

use axum::http::header::{ALLOW, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Most bytes of a plain-text error kept as its detail.
const DETAIL_LIMIT: usize = 1024;

pub async fn ensure_json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json =
        response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, DETAIL_LIMIT).await.unwrap_or_default();
    let detail = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("Error").to_string(),
        text => text.to_string(),
    };
    let mut answer = ApiError::Status { status, detail }.into_response();
    // A 405 says which methods the path has.
    if let Some(allow) = parts.headers.get(ALLOW) {
        answer.headers_mut().insert(ALLOW, allow.clone());
    }
    answer
}
