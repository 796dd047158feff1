//! Resending a dead letter by hand.
//!
//! The records are rendered again in their present state and sent as a new
//! message (a new webhook-id): sending the stored body could hand a receiver
//! an older version of a record after a newer one it has since received.

use std::time::Duration;

use serde::Serialize;
use sharehub_store::{App, DeadLetter, DeliveryAttempt, PendingBatch, Store};

use crate::body::render_body;
use crate::http::{self, Delivery, Outcome};
use crate::signature::{new_message_id, WebhookSecret};

/// What a resend did.
#[derive(Debug, Serialize)]
pub struct ResendReport {
    pub webhook_id: String,
    pub delivered: bool,
    pub status: Option<u16>,
    pub error: Option<String>,
}

pub async fn resend(store: &dyn Store, app: &App, letter: &DeadLetter, timeout: Duration) -> anyhow::Result<ResendReport> {
    let url = app.notification_url.as_deref().ok_or_else(|| anyhow::anyhow!("app {} has no notification URL", app.id))?;
    let secret = WebhookSecret::parse(&app.webhook_secret).map_err(|e| anyhow::anyhow!("app {} webhook secret: {e}", app.id))?;
    let body = render_body(store, app, &letter.records).await?;
    let webhook_id = new_message_id();
    let client = http::build_client(timeout)?;
    let sent = http::send(&client, Delivery { url, api_id: &app.id, api_key: &app.api_key, secret: &secret, msg_id: &webhook_id, body: body.clone().into() }).await;

    let (delivered, status, error) = match &sent.outcome {
        Outcome::Delivered { status } => (true, Some(*status), None),
        Outcome::Gone => (false, Some(410), Some("410 Gone".to_string())),
        Outcome::Failed { status, error, .. } => (false, *status, Some(error.clone())),
    };
    let now = jiff::Timestamp::now();
    let batch = PendingBatch { app_id: app.id.clone(), webhook_id: webhook_id.clone(), body, ranges: Vec::new(), records: letter.records.clone(), attempts: 0, next_attempt_at: now, created_at: now, last_error: None };
    let log = DeliveryAttempt { webhook_id: webhook_id.clone(), attempt: 1, at: now, status, outcome: if delivered { "delivered" } else { "failed" }.into(), error: error.clone(), duration_ms: sent.elapsed.as_millis() as u64, record_count: letter.records.len() as u32 };
    store.record_attempt(&batch, &log, false).await?;
    if delivered {
        store.mark_resent(&letter.webhook_id).await?;
    }
    Ok(ResendReport { webhook_id, delivered, status, error })
}
