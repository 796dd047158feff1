//! The platform (admin) API under `/platform/v1`: organizations, apps, their
//! entities and keys, installations, and the delivery log. Bearer token from
//! the configuration; closed when none is set.
//!
//! Handlers that change an app or a group forget it from the
//! [`AuthCache`](crate::cache::AuthCache) once the store answered (even with
//! an error, as the write may have committed), so the next API request sees
//! the change.

pub mod service;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sharehub_model::FieldError;
use sharehub_store::{AppUpdate, NewApp};

use crate::error::ApiError;
use crate::extract::{constant_time_eq, JsonBody};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/platform/v1/orgs", get(list_orgs).post(create_org))
        .route("/platform/v1/apps", get(list_apps).post(create_app))
        .route("/platform/v1/apps/{app}", get(get_app).patch(update_app))
        .route("/platform/v1/apps/{app}/api-key", post(rotate_key))
        .route("/platform/v1/apps/{app}/webhook-secret", post(rotate_secret))
        .route("/platform/v1/apps/{app}/groups", get(app_groups))
        .route("/platform/v1/apps/{app}/deliveries", get(deliveries))
        .route("/platform/v1/apps/{app}/dead-letters", get(dead_letters))
        .route("/platform/v1/apps/{app}/dead-letters/{webhook_id}/resend", post(resend))
        .route("/platform/v1/groups", post(install))
}

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = state.config.admin_token() else {
            return Err(ApiError::Forbidden("The admin API is closed: set admin_token (SHAREHUB_ADMIN_TOKEN)".into()));
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            // The scheme's name is case-insensitive (RFC 9110), as for Basic.
            .and_then(|v| v.split_once(' ').filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer")))
            .map(|(_, token)| token);
        match presented {
            Some(p) if constant_time_eq(p.trim().as_bytes(), token.expose().as_bytes()) => Ok(Admin),
            _ => Err(ApiError::AdminUnauthorized),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: JsonBody) -> Result<T, ApiError> {
    // Refused on every backend alike: PostgreSQL cannot store U+0000 in text.
    let nul = sharehub_model::schema::nul_characters(&body.value);
    if !nul.is_empty() {
        return Err(ApiError::Invalid(nul));
    }
    serde_path_to_error::deserialize(body.value).map_err(|e| ApiError::Invalid(vec![field_error(&e)]))
}

/// A body that does not fit the request's shape, as a 422 at the field's
/// path (`entities/0/read`), like the Connec! API's own field errors.
fn field_error(e: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let mut path: Vec<String> = e
        .path()
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect();
    let message = e.inner().to_string();
    // serde names a missing or unknown field only in its message: point at it.
    if let Some(field) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        path.push(field.to_string());
        return FieldError::new(path.join("/"), "is required");
    }
    if let Some((field, _)) = message.strip_prefix("unknown field `").and_then(|m| m.split_once('`')) {
        if path.last().map(String::as_str) != Some(field) {
            path.push(field.to_string());
        }
        return FieldError::new(path.join("/"), format!("is not a field here ({message})"));
    }
    FieldError::new(path.join("/"), message)
}

fn ok(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    name: String,
}

async fn create_org(_: Admin, State(s): State<AppState>, body: JsonBody) -> Result<Response, ApiError> {
    let new: NewOrg = parse(body)?;
    let org = service::create_org(s.store.as_ref(), &new.name).await?;
    Ok(ok(StatusCode::CREATED, json!({ "org": org })))
}

async fn list_orgs(_: Admin, State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, json!({ "orgs": s.store.list_orgs().await? })))
}

async fn create_app(_: Admin, State(s): State<AppState>, body: JsonBody) -> Result<Response, ApiError> {
    let new: NewApp = parse(body)?;
    let (app, secrets) = service::register_app(s.store.as_ref(), new).await?;
    // Nothing cached under a new id (misses are not cached); forgotten anyway
    // so registration never depends on that rule.
    s.auth_cache.forget_app(&app.id);
    Ok(ok(StatusCode::CREATED, json!({ "app": app, "secrets": secrets })))
}

async fn list_apps(_: Admin, State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(ok(StatusCode::OK, json!({ "apps": s.store.list_apps().await? })))
}

async fn get_app(_: Admin, State(s): State<AppState>, Path(app): Path<String>) -> Result<Response, ApiError> {
    let found = s.store.get_app(&app).await?.ok_or_else(|| service::no_app(&app))?;
    Ok(ok(StatusCode::OK, json!({ "app": found })))
}

async fn update_app(
    _: Admin,
    State(s): State<AppState>,
    Path(app): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let update: AppUpdate = parse(body)?;
    let updated = service::update_app(s.store.as_ref(), &app, update).await;
    s.auth_cache.forget_app(&app);
    let updated = updated?;
    Ok(ok(StatusCode::OK, json!({ "app": updated })))
}

async fn rotate_key(_: Admin, State(s): State<AppState>, Path(app): Path<String>) -> Result<Response, ApiError> {
    let key = service::rotate_api_key(s.store.as_ref(), &app).await;
    s.auth_cache.forget_app(&app);
    let key = key?;
    Ok(ok(StatusCode::OK, json!({ "api_id": app, "api_key": key })))
}

async fn rotate_secret(_: Admin, State(s): State<AppState>, Path(app): Path<String>) -> Result<Response, ApiError> {
    let secret = service::rotate_webhook_secret(s.store.as_ref(), &app).await;
    s.auth_cache.forget_app(&app);
    let secret = secret?;
    Ok(ok(StatusCode::OK, json!({ "api_id": app, "webhook_secret": secret })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    app_id: String,
    org_id: String,
    realm: Option<String>,
}

async fn install(_: Admin, State(s): State<AppState>, body: JsonBody) -> Result<Response, ApiError> {
    let new: NewGroup = parse(body)?;
    // Installing again answers the existing group: 200, not 201.
    let existed = s.store.groups_of_app(&new.app_id).await?.iter().any(|g| g.org_id == new.org_id);
    let group = service::install(s.store.as_ref(), &new.app_id, &new.org_id, new.realm.as_deref()).await;
    s.auth_cache.forget_app(&new.app_id);
    let group = group?;
    s.auth_cache.forget_group(&group.id);
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok(ok(status, json!({ "group": group })))
}

async fn app_groups(_: Admin, State(s): State<AppState>, Path(app): Path<String>) -> Result<Response, ApiError> {
    ensure_app(&s, &app).await?;
    Ok(ok(StatusCode::OK, json!({ "groups": s.store.groups_of_app(&app).await? })))
}

#[derive(Deserialize)]
struct LogQuery {
    limit: Option<u32>,
}

async fn deliveries(
    _: Admin,
    State(s): State<AppState>,
    Path(app): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    ensure_app(&s, &app).await?;
    let log = s.store.delivery_log(&app, q.limit.unwrap_or(100).min(1000)).await?;
    Ok(ok(StatusCode::OK, json!({ "deliveries": log })))
}

async fn dead_letters(_: Admin, State(s): State<AppState>, Path(app): Path<String>) -> Result<Response, ApiError> {
    ensure_app(&s, &app).await?;
    Ok(ok(StatusCode::OK, json!({ "dead_letters": s.store.dead_letters(&app).await? })))
}

/// A 404 for an app that does not exist, rather than its empty logs.
async fn ensure_app(s: &AppState, app: &str) -> Result<(), ApiError> {
    s.store.get_app(app).await?.map(|_| ()).ok_or_else(|| service::no_app(app))
}

/// Queues a dead letter for sending again: the app's delivery task sends its
/// records' present state as its next batch, under a new webhook-id (see the
/// delivery log for the outcome).
async fn resend(
    _: Admin,
    State(s): State<AppState>,
    Path((app, webhook_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let no_letter = || ApiError::NotFound(format!("No dead letter {webhook_id} of app {app}"));
    let found = s.store.get_app(&app).await?.ok_or_else(|| service::no_app(&app))?;
    let letter = s.store.dead_letter(&app, &webhook_id).await?.ok_or_else(no_letter)?;
    // Rights may have changed since: only what the app still gets is sent.
    if !letter.records.iter().any(|r| found.wants(&r.entity)) {
        return Err(ApiError::Conflict(format!(
            "Dead letter {webhook_id} holds only entities app {app} no longer reads or subscribes to; nothing to resend"
        )));
    }
    if !s.store.request_resend(&app, &webhook_id).await? {
        return Err(no_letter());
    }
    Ok(ok(StatusCode::ACCEPTED, json!({ "resend": { "webhook_id": webhook_id, "queued": true } })))
}
