//! `GET /api/v2/{group}/changes?after=&limit=`: the organization's change log
//! as the caller may see it, so an app that missed webhooks catches up
//! without trusting `updated_at`.
//!
//! The cursor is the log's seq. Changes to entities the app may not read are
//! skipped but still move `next_after`, so a client never loops on them.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use sharehub_model::view::format_timestamp;
use sharehub_store::render::render_records;

use super::context::Ctx;
use super::records::json_response;
use crate::error::ApiError;
use crate::extract::CallerApp;
use crate::state::AppState;

const MAX_LIMIT: u32 = 1000;

#[derive(Deserialize)]
pub struct FeedQuery {
    after: Option<String>,
    limit: Option<String>,
}

pub async fn feed(
    State(state): State<AppState>,
    CallerApp(app): CallerApp,
    Path(group_id): Path<String>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = Ctx::new(&state, app, &group_id, &headers).await?;
    let after = parse_number(q.after.as_deref(), "after", 0, 0..=i64::MAX)?;
    let limit = parse_number(q.limit.as_deref(), "limit", 100, 1..=i64::from(MAX_LIMIT))? as u32;

    let changes = state.store.changes(&ctx.group.org_id, after, limit).await?;
    let next_after = changes.last().map_or(after, |c| c.seq);
    let visible: Vec<_> = changes.into_iter().filter(|c| ctx.app.can_read(&c.entity)).collect();

    let ids: Vec<_> = visible.iter().map(|c| c.record_id).collect();
    let records = state.store.get_records(&ctx.group.org_id, &ids).await?;
    let rendered = render_records(state.store.as_ref(), &ctx.group.org_id, &ctx.viewer(), &records).await?;
    let by_id: HashMap<_, _> = records.iter().map(|r| r.id).zip(rendered).collect();

    let entries: Vec<Value> = visible
        .iter()
        .map(|c| {
            json!({
                "seq": c.seq,
                "entity": c.entity,
                "id": c.record_id.to_string(),
                "version": c.version,
                "kind": c.kind.as_str(),
                "at": format_timestamp(c.at),
                "own": c.origin_app.as_deref() == Some(ctx.app.id.as_str()),
                "record": by_id.get(&c.record_id).cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let last_seq = state.store.last_seq(&ctx.group.org_id).await?;
    let body = json!({ "changes": entries, "next_after": next_after, "has_more": next_after < last_seq });
    Ok(json_response(StatusCode::OK, body, None))
}

fn parse_number(
    raw: Option<&str>,
    name: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else { return Ok(default) };
    raw.trim().parse::<i64>().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        let (min, max) = (range.start(), range.end());
        ApiError::bad_request("bad-query", format!("{name} must be a whole number from {min} to {max}, got {raw:?}"))
    })
}
