//! `Idempotency-Key`: a repeated POST, PUT, DELETE or batch with the same key
//! replays the first answer for a day instead of writing again.
//!
//! A key is marked in the database before its request runs, so twins sent to
//! any process of the hub wait for the first (409 meanwhile); the answer
//! replaces the mark once the write has committed. A hub that dies between
//! the commit and saving the answer leaves the mark, which goes stale after
//! twice `request_timeout_secs`; a repeat after that writes again. Upserts
//! by external id (how connectors write) are idempotent anyway, and the
//! window is one local write long.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use sha2::{Digest, Sha256};
use sharehub_store::SavedResponse;

use crate::error::ApiError;
use crate::state::AppState;

const MAX_KEY_LEN: usize = 255;
const MAX_SAVED_BODY: usize = 16 * 1024 * 1024;

/// A request that may carry an idempotency key.
pub struct Replayable {
    app_id: String,
    key: Option<String>,
    fingerprint: String,
}

impl Replayable {
    pub fn from_request(
        app_id: &str,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, ApiError> {
        let key = match headers.get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v.to_str().unwrap_or("").trim().to_string();
                if key.is_empty() || key.len() > MAX_KEY_LEN {
                    return Err(ApiError::bad_request(
                        "bad-idempotency-key",
                        format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible characters"),
                    ));
                }
                Some(key)
            }
        };
        // The answer's shape depends on the external-ids header too: a repeat
        // asking for the other shape is another request.
        let shape: &[u8] = if crate::extract::wants_external_ids(headers) { b"ids" } else { b"plain" };
        let mut hasher = Sha256::new();
        for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n", shape, b"\n", body] {
            hasher.update(part);
        }
        Ok(Self { app_id: app_id.to_string(), key, fingerprint: hex::encode(hasher.finalize()) })
    }
}

/// Runs `work` once per key: a repeat replays the saved answer.
///
/// A keyed request runs to its end on a task of its own, even if its client
/// goes away: a client that timed out and sends the same key again then gets
/// the answer (or a 409 while it is still being made), rather than finding the
/// key marked by a request nobody finished.
pub async fn run<F>(state: &AppState, req: Replayable, work: F) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    let Some(key) = req.key.clone() else { return work.await };
    if let Some(saved) = fresh_saved(state, &req.app_id, &key).await? {
        return replay(saved, &req.fingerprint);
    }

    let guard = InFlight::claim(state, &req.app_id, &key)?;
    // Other processes sharing the database see the claim too.
    let stale_after = Duration::from_secs(state.config.request_timeout_secs.saturating_mul(2));
    let keep_for = Duration::from_secs(u64::from(state.config.idempotency_hours) * 3600);
    if !state.store.claim_key(&req.app_id, &key, stale_after, keep_for).await? {
        return match fresh_saved(state, &req.app_id, &key).await? {
            // A twin request finished while this one waited for the claim.
            Some(saved) => replay(saved, &req.fingerprint),
            None => Err(in_flight()),
        };
    }
    // A twin request in this process may have finished while this one
    // waited for the claim. (A mark found now is this request's own.)
    if let Some(saved) = fresh_saved(state, &req.app_id, &key).await.ok().flatten() {
        return replay(saved, &req.fingerprint);
    }
    let state = state.clone();
    let task = tokio::spawn(async move {
        // Held until the answer is saved, so a twin in this process waits for it.
        let _guard = guard;
        let response = match work.await {
            Ok(response) => response,
            Err(e) => axum::response::IntoResponse::into_response(e),
        };
        save(&state, &req, &key, response).await
    });
    task.await.map_err(|e| ApiError::Internal(anyhow::anyhow!("answering a keyed request: {e}")))?
}

fn in_flight() -> ApiError {
    ApiError::Conflict("A request with this Idempotency-Key is still being answered; retry shortly".into())
}

/// The saved answer of `key`, if any and young enough. A mark of a request
/// still running (status 0, another process's) is no answer yet: 409.
async fn fresh_saved(state: &AppState, app_id: &str, key: &str) -> Result<Option<SavedResponse>, ApiError> {
    let saved = state.store.saved_response(app_id, key).await?;
    if saved.as_ref().is_some_and(|s| s.status == 0) {
        return Err(in_flight());
    }
    let ttl = jiff::SignedDuration::from_hours(i64::from(state.config.idempotency_hours));
    Ok(saved.filter(|s| jiff::Timestamp::now().duration_since(s.created_at) < ttl))
}

fn replay(saved: SavedResponse, fingerprint: &str) -> Result<Response, ApiError> {
    if saved.fingerprint != fingerprint {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::OK);
    let version = single_record_version(&saved.body);
    let mut response = Response::new(Body::from(saved.body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/vnd.api+json"));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    // A one-record answer carried its ETag; the replay carries it again.
    if let Some(etag) = version.and_then(|v| HeaderValue::from_str(&format!("\"v{v}\"")).ok()) {
        headers.insert(axum::http::header::ETAG, etag);
    }
    Ok(response)
}

/// The version of the record in a one-record answer (`{"people": {...}}`).
fn single_record_version(body: &[u8]) -> Option<i64> {
    let answer: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
    let mut values = answer.values();
    match (values.next(), values.next()) {
        (Some(record), None) => record.get("version")?.as_i64(),
        _ => None,
    }
}

async fn save(state: &AppState, req: &Replayable, key: &str, response: Response) -> Result<Response, ApiError> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_SAVED_BODY)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("buffering an answer: {e}")))?;
    // Server errors are not answers worth replaying: the client should retry.
    if parts.status.as_u16() < 500 {
        let saved = SavedResponse {
            fingerprint: req.fingerprint.clone(),
            status: parts.status.as_u16(),
            body: bytes.to_vec(),
            created_at: jiff::Timestamp::now(),
        };
        state.store.save_response(&req.app_id, key, &saved).await?;
    } else {
        state.store.release_key(&req.app_id, key).await?;
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Marks a key as being answered; a concurrent twin gets 409 until it is done.
struct InFlight {
    state: AppState,
    slot: (String, String),
}

impl InFlight {
    fn claim(state: &AppState, app_id: &str, key: &str) -> Result<Self, ApiError> {
        let slot = (app_id.to_string(), key.to_string());
        let mut set = state.keys_in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(slot.clone()) {
            return Err(in_flight());
        }
        Ok(Self { state: state.clone(), slot })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut set = self.state.keys_in_flight.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.slot);
    }
}
