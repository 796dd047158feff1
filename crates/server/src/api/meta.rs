//! What the API says about itself: `/version`, JSON Schemas, the collections
//! a group may read, and health checks.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use sharehub_model::{catalog, schema};

use super::context::{entity_named, Ctx};
use super::records::json_response;
use crate::error::ApiError;
use crate::extract::CallerApp;
use crate::state::AppState;

/// `GET /version`: build information, with the field names Connec! used.
pub async fn version() -> Response {
    let body = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ci_branch": option_env!("SHAREHUB_GIT_BRANCH").unwrap_or("unknown"),
        "ci_commit": option_env!("SHAREHUB_GIT_COMMIT").unwrap_or("unknown"),
        "ci_build_number": option_env!("SHAREHUB_BUILD_NUMBER").unwrap_or("local"),
        "env": "sharehub",
    });
    json_response(StatusCode::OK, body, None)
}

/// `GET /api/v2/json_schema/{entity}`.
pub async fn json_schema(Path(entity): Path<String>) -> Result<Response, ApiError> {
    let def = entity_named(&entity)?;
    Ok(json_response(StatusCode::OK, schema::json_schema(def).clone(), None))
}

/// `GET /api/v2/{group}`: the collections this app may read, as `_links`.
pub async fn collections(
    State(state): State<AppState>,
    CallerApp(app): CallerApp,
    Path(group_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = Ctx::new(&state, app, &group_id, &headers).await?;
    let mut links = Map::new();
    for def in catalog::all().iter().filter(|d| ctx.app.can_read(d.name)) {
        let href = format!("{}/api/v2/{}/{}", ctx.base_url, ctx.group.id, def.name);
        links.insert(def.name.to_string(), json!({ "href": href }));
    }
    // Beyond Connec!: who the hub takes the caller for, so that a client
    // (a connector) can check its configured provider before writing.
    let body = json!({ "_links": Value::Object(links), "group_id": ctx.group.id, "channel_id": ctx.group.org_id,
        "provider": ctx.app.provider, "realm": ctx.group.realm });
    Ok(json_response(StatusCode::OK, body, None))
}

/// `GET /health/live`: the process answers.
pub async fn live() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "live" }))).into_response()
}

/// `GET /health/ready`: the database answers too.
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({ "status": "ready" }))).into_response(),
        Err(e) => ApiError::Unavailable(e.to_string()).into_response(),
    }
}

/// Any path the API does not have.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("No such path in the API".into())
}
