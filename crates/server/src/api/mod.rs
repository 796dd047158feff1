//! The Connec!-compatible API under `/api/v2`, plus `/batch` and `/version`.

mod batch;
mod changes;
pub mod context;
mod idempotency;
mod meta;
pub mod records;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub use meta::not_found;

/// The routes of the data API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/version", get(meta::version))
        .route("/openapi.json", get(crate::openapi::document))
        .route("/health/live", get(meta::live))
        .route("/health/ready", get(meta::ready))
        .route("/batch", post(batch::batch))
        .route("/api/v2/json_schema/{entity}", get(meta::json_schema))
        .route("/api/v2/{group}", get(meta::collections))
        .route("/api/v2/{group}/changes", get(changes::feed))
        .route("/api/v2/{group}/{entity}", get(records::list).post(records::create).put(records::update_singleton))
        .route("/api/v2/{group}/{entity}/{id}", get(records::get).put(records::update).delete(records::delete))
}
