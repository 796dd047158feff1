//! Request extractors that answer the contract's errors: the caller app
//! (HTTP Basic), its group, and JSON bodies.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use bytes::Bytes;
use serde_json::Value;
use sharehub_store::{App, Group};

use crate::error::ApiError;
use crate::state::AppState;

/// The app that signed the request with HTTP Basic.
#[derive(Debug, Clone)]
pub struct CallerApp(pub App);

impl FromRequestParts<AppState> for CallerApp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(&parts.headers, state).await.map(CallerApp)
    }
}

/// Checks HTTP Basic credentials against the registered apps (cached for a
/// moment, see [`crate::cache`]; the key is compared on every request).
pub async fn authenticate(headers: &HeaderMap, state: &AppState) -> Result<App, ApiError> {
    let (api_id, api_key) = basic_credentials(headers).ok_or(ApiError::Unauthorized)?;
    let app = state.auth_cache.app(state.store.as_ref(), &api_id).await?.ok_or(ApiError::Unauthorized)?;
    if !constant_time_eq(api_key.as_bytes(), app.api_key.as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    tracing::Span::current().record("app_id", app.id.as_str());
    check_rate(state, &app.id)?;
    Ok(app)
}

/// A 429 once an app is over its rate, saying when to come back.
fn check_rate(state: &AppState, app_id: &str) -> Result<(), ApiError> {
    let Some(limits) = &state.rate_limits else { return Ok(()) };
    let app_id = app_id.to_string();
    limits.check_key(&app_id).map_err(|not_until| {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        ApiError::TooManyRequests { retry_after_secs: wait.as_secs() + 1 }
    })
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    // No api id or key holds U+0000; PostgreSQL could not even look one up.
    if text.contains('\0') {
        return None;
    }
    let (id, key) = text.split_once(':')?;
    Some((id.to_string(), key.to_string()))
}

/// Compares secrets without telling, by its timing, where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The group named in the path, which must belong to the caller. A group of
/// another app and a group that does not exist answer the same 401.
pub async fn caller_group(state: &AppState, app: &App, group_id: &str) -> Result<Group, ApiError> {
    let group = state.auth_cache.group(state.store.as_ref(), group_id).await?;
    match group {
        Some(group) if group.app_id == app.id => {
            tracing::Span::current().record("group_id", group.id.as_str());
            Ok(group)
        }
        _ => Err(ApiError::Unauthorized),
    }
}

/// Whether the caller asked for id arrays (`CONNEC-EXTERNAL-IDS: true`).
pub fn wants_external_ids(headers: &HeaderMap) -> bool {
    headers
        .get("connec-external-ids")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// A JSON request body, checked for media type and size, parsed with its
/// error position. Keeps the raw bytes for idempotency fingerprints.
pub struct JsonBody {
    pub value: Value,
    pub raw: Bytes,
}

impl axum::extract::FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let JsonBytes(raw) = JsonBytes::from_request(req, state).await?;
        let value = parse_json(&raw)?;
        Ok(JsonBody { value, raw })
    }
}

/// A JSON request body checked for media type and size but not parsed yet,
/// for a handler that reads it straight into its own type with
/// [`parse_json_as`] (a `/batch` of 500 records would otherwise be parsed
/// into a tree of values, then copied out of it).
pub struct JsonBytes(pub Bytes);

impl axum::extract::FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        check_media_type(req.headers())?;
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("The body is larger than {} bytes", state.config.body_limit_bytes))
            } else {
                ApiError::bad_request("bad-request", format!("Could not read the body: {e}"))
            }
        })?;
        Ok(JsonBytes(raw))
    }
}

/// Parses JSON, saying where it broke. A leading UTF-8 byte order mark is
/// skipped, as RFC 8259 lets a parser do (some Windows tools write one).
pub fn parse_json(raw: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(without_bom(raw)).map_err(|e| malformed(&e))
}

/// Parses JSON straight into `T`. Text that is not JSON is `malformed-json`,
/// as with [`parse_json`]; JSON of another shape is a `bad-request` that
/// says the shape expected (`expected`) and where the text departs from it.
pub fn parse_json_as<T: serde::de::DeserializeOwned>(raw: &[u8], expected: &str) -> Result<T, ApiError> {
    let raw = without_bom(raw);
    serde_json::from_slice(raw).map_err(|e| {
        // serde stops at the first problem, which may be a wrong type ahead
        // of broken syntax: broken syntax is what the client must hear of.
        // Read as any JSON, the way `parse_json` reads (UTF-8 included).
        if let Err(syntax) = serde_json::from_slice::<Value>(raw) {
            return malformed(&syntax);
        }
        ApiError::bad_request("bad-request", format!("Expected {expected}: {e}"))
    })
}

fn without_bom(raw: &[u8]) -> &[u8] {
    raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request(
        "malformed-json",
        format!("Malformed JSON at line {}, column {}: {}", e.line(), e.column(), without_position(e)),
    )
}

/// serde_json's message without the position it appends, said once above.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

fn check_media_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType(
            "Send Content-Type: application/vnd.api+json or application/json".into(),
        ));
    };
    let text = value.to_str().unwrap_or("").to_ascii_lowercase();
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or("").trim().to_string();
    // JSON is UTF-8 (RFC 8259); a body declared in another charset is not
    // read as if it were.
    let charset = parts.filter_map(|p| p.trim().strip_prefix("charset=")).next().map(|c| c.trim_matches('"'));
    if let Some(charset) = charset.filter(|c| *c != "utf-8" && *c != "utf8") {
        return Err(ApiError::UnsupportedMediaType(format!("charset {charset:?}: send the JSON as UTF-8")));
    }
    if essence == "application/json" || essence == "application/vnd.api+json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {essence:?} is not JSON; send application/vnd.api+json or application/json"
        )))
    }
}
