//! The connector's HTTP side: the webhook receiver the hub delivers to, and
//! a status endpoint.
//!
//! A delivery is accepted only with a valid Standard Webhooks signature (the
//! app's `whsec_` secret) and the app's HTTP Basic credentials, routed record
//! by record by `group_id`, and handled once per `webhook-id`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::connector::Connector;
use crate::error::{Error, Result};

/// How far a webhook's timestamp may be from now (replay protection).
const TOLERANCE_SECS: i64 = 300;

/// The largest delivery accepted: one POST may carry many records with
/// their lines, well past axum's 2 MB default.
const MAX_DELIVERY_BYTES: usize = 64 * 1024 * 1024;

/// The router: `POST /webhooks`, `GET /status`, `GET /status/{group}`.
pub fn router(connector: Connector) -> Router {
    Router::new()
        .route("/webhooks", post(receive).layer(axum::extract::DefaultBodyLimit::max(MAX_DELIVERY_BYTES)))
        .route("/status", get(status_all))
        .route("/status/{group}", get(status_one))
        .with_state(connector)
}

async fn receive(State(connector): State<Connector>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(e) = connector.verify(&headers, &body) {
        tracing::warn!(error = %e, "webhook refused");
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    let webhook_id = header(&headers, "webhook-id").unwrap_or_default().to_string();
    match connector.handle_delivery(&webhook_id, &body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::warn!(webhook_id, error = %e, "webhook not handled; the hub will send it again");
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

async fn status_all(State(connector): State<Connector>) -> Response {
    let mut statuses = Vec::new();
    for group in connector.groups() {
        match connector.org_summary(&group).await {
            Ok(summary) => statuses.push(summary),
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }
    Json(json!({ "running": true, "organizations": statuses })).into_response()
}

async fn status_one(State(connector): State<Connector>, Path(group): Path<String>) -> Response {
    if !connector.groups().contains(&group) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let state = connector.state();
    match (state.status(&group).await, state.record_errors(&group).await) {
        (Ok(status), Ok(errors)) => Json(json!({ "status": status, "record_errors": errors })).into_response(),
        (Err(e), _) | (_, Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

impl Connector {
    /// An organization's status with whether it shares and has imported.
    pub async fn org_summary(&self, group: &str) -> Result<Value> {
        let status = self.inner.state.status(group).await?;
        let mut summary = serde_json::to_value(status).map_err(|e| Error::Config(e.to_string()))?;
        summary["sharing"] = json!(self.org(group)?.settings.sharing);
        summary["import_done"] = json!(self.import_done(group).await?);
        Ok(summary)
    }

    /// Checks HTTP Basic and the Standard Webhooks signature of a delivery.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<()> {
        let (api_id, api_key) = &self.inner.basic;
        let expected = base64::engine::general_purpose::STANDARD.encode(format!("{api_id}:{api_key}"));
        if header(headers, "authorization") != Some(format!("Basic {expected}").as_str()) {
            return Err(Error::Webhook("wrong or missing Basic credentials".into()));
        }
        let id = header(headers, "webhook-id").ok_or_else(|| Error::Webhook("no webhook-id".into()))?;
        let timestamp = header(headers, "webhook-timestamp").ok_or_else(|| Error::Webhook("no timestamp".into()))?;
        let signatures = header(headers, "webhook-signature").ok_or_else(|| Error::Webhook("no signature".into()))?;
        let sent: i64 = timestamp.parse().map_err(|_| Error::Webhook("unreadable timestamp".into()))?;
        if (jiff::Timestamp::now().as_second() - sent).abs() > TOLERANCE_SECS {
            return Err(Error::Webhook("timestamp too far from now".into()));
        }
        let expected = sign(&self.inner.webhook_secret, id, timestamp, body)?;
        let matches = signatures.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|s| {
            let given = base64::engine::general_purpose::STANDARD.decode(s).unwrap_or_default();
            constant_time_eq(&given, &expected)
        });
        matches.then_some(()).ok_or_else(|| Error::Webhook("signature does not match".into()))
    }

    /// Applies every record of a delivery to its organization, once per
    /// webhook id. A failure forgets the id so the hub's retry is handled.
    pub async fn handle_delivery(&self, webhook_id: &str, body: &[u8]) -> Result<()> {
        if !webhook_id.is_empty() && !self.inner.state.first_sight_of_webhook(webhook_id).await? {
            tracing::debug!(webhook_id, "webhook already handled");
            return Ok(());
        }
        let outcome = self.apply_delivery(body).await;
        if outcome.is_err() && !webhook_id.is_empty() {
            self.inner.state.forget_webhook(webhook_id).await?;
        }
        outcome
    }

    async fn apply_delivery(&self, body: &[u8]) -> Result<()> {
        let body: Value = serde_json::from_slice(body).map_err(|e| Error::Webhook(format!("not JSON: {e}")))?;
        let Value::Object(entities) = body else { return Err(Error::Webhook("not an object".into())) };
        // One delivery may carry several organizations: each gets its records
        // in the delivery's order.
        let mut by_group: Vec<(&str, Vec<(&str, &Value)>)> = Vec::new();
        for (entity, records) in &entities {
            for record in records.as_array().map(Vec::as_slice).unwrap_or_default() {
                let group = record["group_id"].as_str().unwrap_or_default();
                match by_group.iter_mut().find(|(g, _)| *g == group) {
                    Some((_, records)) => records.push((entity.as_str(), record)),
                    None => by_group.push((group, vec![(entity.as_str(), record)])),
                }
            }
        }
        for (group, records) in by_group {
            let Some(org) = self.inner.orgs.get(group) else {
                tracing::debug!(group, "webhook records of an organization this connector does not serve");
                continue;
            };
            // Dropped, not lost: the feed is read from where it stands
            // once the import is done or sharing resumes.
            let waiting = !self.import_done(group).await? || self.inner.state.status(group).await?.paused;
            if !org.settings.sharing || waiting {
                continue;
            }
            self.apply_hub_records(group, &records).await?;
        }
        Ok(())
    }
}

/// The Standard Webhooks signature: HMAC-SHA256 over `id.timestamp.body`
/// with the key base64-encoded after `whsec_`.
pub fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Result<Vec<u8>> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| Error::Config("the webhook secret is not whsec_ + base64".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| Error::Config(e.to_string()))?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(mac.finalize().into_bytes().to_vec())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::sign;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signs_as_the_standard_webhooks_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", br#"{"test": 2432232314}"#).unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(signature),
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
