//! Reading and writing records: `/api/v2/{group}/{entity}[/{id}]`.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use sharehub_model::catalog::EntityDef;
use sharehub_model::filter;
use sharehub_store::render::render_records;
use sharehub_store::write::{Target, WriteOp};
use sharehub_store::{ListQuery, StoredRecord, WriteOutcome};
use uuid::Uuid;

use super::context::Ctx;
use super::idempotency::{self, Replayable};
use crate::error::ApiError;
use crate::extract::{CallerApp, JsonBody};
use crate::state::AppState;

const DEFAULT_TOP: u32 = 100;
const MAX_TOP: u32 = 1000;

/// `GET /api/v2/{group}/{entity}`: a page of records.
pub async fn list(
    State(state): State<AppState>,
    CallerApp(app): CallerApp,
    Path((group_id, entity)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = Ctx::new(&state, app, &group_id, &headers).await?;
    let def = ctx.readable(&entity)?;
    if def.singleton {
        return get_singleton(&state, &ctx, def).await;
    }
    let body = list_page(&state, &ctx, def, query.as_deref().unwrap_or("")).await?;
    Ok(json_response(StatusCode::OK, body, None))
}

/// A page of records as the contract shapes it.
pub async fn list_page(
    state: &AppState,
    ctx: &Ctx,
    def: &'static EntityDef,
    raw_query: &str,
) -> Result<Value, ApiError> {
    let params = parse_query(raw_query)?;
    let query = list_query(ctx, def, &params)?;
    let (records, total) = state.store.list_records(&query).await?;
    let rendered = render_records(state.store.as_ref(), &ctx.group.org_id, &ctx.viewer(), &records).await?;

    let mut pagination = json!({ "top": query.top, "skip": query.skip, "total": total });
    if query.skip + (records.len() as u64) < total && !records.is_empty() {
        pagination["next"] = Value::String(next_url(ctx, def, &params, query.skip + records.len() as u64));
    }
    Ok(json!({ def.name: rendered, "pagination": pagination }))
}

fn parse_query(raw: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mut params = BTreeMap::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        // `$top=1&$top=2` has no one meaning: refused rather than guessed.
        if let Some(first) = params.insert(key.to_string(), value.into_owned()) {
            if key.starts_with('$') {
                return Err(ApiError::bad_request(
                    "bad-query",
                    format!("{key} is given twice ({first:?} and {:?}); give it once", params[key.as_ref()]),
                ));
            }
        }
    }
    Ok(params)
}

fn list_query(ctx: &Ctx, def: &EntityDef, params: &BTreeMap<String, String>) -> Result<ListQuery, ApiError> {
    let top = match params.get("$top") {
        None => DEFAULT_TOP,
        Some(v) => v.trim().parse::<u32>().ok().filter(|t| *t <= MAX_TOP).ok_or_else(|| {
            ApiError::bad_request("bad-query", format!("$top must be a whole number from 0 to {MAX_TOP}, got {v:?}"))
        })?,
    };
    let skip =
        match params.get("$skip") {
            None => 0,
            Some(v) => v.trim().parse::<u64>().ok().filter(|s| *s <= i64::MAX as u64).ok_or_else(|| {
                ApiError::bad_request("bad-query", format!("$skip must be a whole number, got {v:?}"))
            })?,
        };
    let filter = match params.get("$filter").filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(f) => {
            let expr =
                filter::parse_filter(f).map_err(|e| ApiError::bad_request("bad-filter", format!("$filter {e}")))?;
            refuse_reader_fields(&expr)?;
            Some(expr)
        }
    };
    let order_by = match params.get("$orderby").filter(|f| !f.trim().is_empty()) {
        None => Vec::new(),
        Some(o) => {
            filter::parse_orderby(o).map_err(|e| ApiError::bad_request("bad-orderby", format!("$orderby {e}")))?
        }
    };
    Ok(ListQuery { org_id: ctx.group.org_id.clone(), entity: def.name.to_string(), filter, order_by, top, skip })
}

/// Fields every record of a list shows alike, made for the reader rather
/// than stored: a filter on them would match all or nothing, so it is refused.
fn refuse_reader_fields(expr: &filter::Expr) -> Result<(), ApiError> {
    match expr {
        filter::Expr::And(a, b) | filter::Expr::Or(a, b) => refuse_reader_fields(a).and(refuse_reader_fields(b)),
        filter::Expr::Not(inner) => refuse_reader_fields(inner),
        filter::Expr::Compare { field, .. } => match field.0.as_slice() {
            [name] if ["group_id", "channel_id", "resource_type"].contains(&name.as_str()) => {
                Err(ApiError::bad_request(
                    "bad-filter",
                    format!("$filter: {name} is the same on every record of a list and cannot be filtered on"),
                ))
            }
            _ => Ok(()),
        },
    }
}

fn next_url(ctx: &Ctx, def: &EntityDef, params: &BTreeMap<String, String>, skip: u64) -> String {
    let mut next = params.clone();
    next.insert("$skip".into(), skip.to_string());
    next.entry("$top".into()).or_insert_with(|| DEFAULT_TOP.to_string());
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(next.iter()).finish();
    format!("{}/api/v2/{}/{}?{}", ctx.base_url, ctx.group.id, def.name, query)
}

async fn get_singleton(state: &AppState, ctx: &Ctx, def: &'static EntityDef) -> Result<Response, ApiError> {
    let record = find_singleton(state, ctx, def).await?;
    one_record_response(state, ctx, def, StatusCode::OK, &record).await
}

/// The organization's one record of a singleton entity, or a 404.
pub async fn find_singleton(state: &AppState, ctx: &Ctx, def: &'static EntityDef) -> Result<StoredRecord, ApiError> {
    let record = state.store.find_singleton(&ctx.group.org_id, def.name).await?;
    record.ok_or_else(|| ApiError::NotFound(format!("No {} in {} yet", def.name, ctx.group.id)))
}

/// `GET /api/v2/{group}/{entity}/{id}`.
pub async fn get(
    State(state): State<AppState>,
    CallerApp(app): CallerApp,
    Path((group_id, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = Ctx::new(&state, app, &group_id, &headers).await?;
    let def = ctx.readable(&entity)?;
    let record = load(&state, &ctx, def, &id).await?;
    one_record_response(&state, &ctx, def, StatusCode::OK, &record).await
}

/// The record with hub id `id` of the caller's organization, or 404.
pub async fn load(state: &AppState, ctx: &Ctx, def: &EntityDef, id: &str) -> Result<StoredRecord, ApiError> {
    let not_found = || ApiError::NotFound(format!("No {} {id} in {}", def.name, ctx.group.id));
    let uuid = parse_record_id(id).ok_or_else(not_found)?;
    state.store.get_record(&ctx.group.org_id, def.name, uuid).await?.ok_or_else(not_found)
}

pub fn parse_record_id(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id).ok()
}

/// Renders one record keyed by its entity, with `ETag`.
pub async fn one_record_response(
    state: &AppState,
    ctx: &Ctx,
    def: &EntityDef,
    status: StatusCode,
    record: &StoredRecord,
) -> Result<Response, ApiError> {
    let rendered =
        render_records(state.store.as_ref(), &ctx.group.org_id, &ctx.viewer(), std::slice::from_ref(record)).await?;
    let mut rendered = rendered.into_iter().next().unwrap_or(Value::Null);
    ctx.redact_unreadable(def.name, &mut rendered);
    let body = json!({ def.name: rendered });
    Ok(json_response(status, body, Some(record.version)))
}

pub fn json_response(status: StatusCode, body: Value, version: Option<i64>) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.api+json"));
    if let Some(version) = version {
        if let Ok(etag) = HeaderValue::from_str(&format!("\"v{version}\"")) {
            headers.insert(header::ETAG, etag);
        }
    }
    response
}

/// A JSON answer already serialized.
pub fn json_bytes_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.api+json"));
    response
}

/// `POST /api/v2/{group}/{entity}`: create, upsert by external id, or smart merge.
pub async fn create(
    State(state): State<AppState>,
    CallerApp(app): CallerApp,
    Path((group_id, entity)): Path<(String, String)>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let ctx = Ctx::new(&state, app, &group_id, &headers).await?;
    let replay = Replayable::from_request(&ctx.app.id, "POST", &format!("{group_id}/{entity}"), &headers, &body.raw)?;
    idempotency::run(&state.clone(), replay, async move {
        let def = ctx.writable(&entity)?;
        let target = if def.singleton { Target::Singleton } else { Target::New };
        let op = write_op(&ctx, def, target, body.value, None, false)?;
        write_one(&state, &ctx, def, op).await
    })
    .await
}

/// `PUT /api/v2/{group}/{entity}/{id}` (and `PUT /company`): merge fields into a record.
pub async fn update(
    State(state): State<AppState>,
    CallerApp(app): CallerApp,
    Path((group_id, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let ctx = Ctx::new(&state, app, &group_id, &headers).await?;
    let replay =
        Replayable::from_request(&ctx.app.id, "PUT", &format!("{group_id}/{entity}/{id}"), &headers, &body.raw)?;
    idempotency::run(&state.clone(), replay, async move {
        let def = ctx.writable(&entity)?;
        let target = Target::Id(load(&state, &ctx, def, &id).await?.id);
        let op = write_op(&ctx, def, target, body.value, if_match(&headers)?, false)?;
        write_one(&state, &ctx, def, op).await
    })
    .await
}

/// `PUT /api/v2/{group}/company`: the organization's one company record.
pub async fn update_singleton(
    State(state): State<AppState>,
    CallerApp(app): CallerApp,
    Path((group_id, entity)): Path<(String, String)>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let ctx = Ctx::new(&state, app, &group_id, &headers).await?;
    let replay = Replayable::from_request(&ctx.app.id, "PUT", &format!("{group_id}/{entity}"), &headers, &body.raw)?;
    idempotency::run(&state.clone(), replay, async move {
        let def = ctx.writable(&entity)?;
        if !def.singleton {
            return Err(ApiError::bad_request("bad-request", format!("PUT needs a record id: /{}/{{id}}", def.name)));
        }
        let op = write_op(&ctx, def, Target::Singleton, body.value, if_match(&headers)?, false)?;
        write_one(&state, &ctx, def, op).await
    })
    .await
}

/// `DELETE /api/v2/{group}/{entity}/{id}`: archives the record and tells subscribers.
pub async fn delete(
    State(state): State<AppState>,
    CallerApp(app): CallerApp,
    Path((group_id, entity, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ctx = Ctx::new(&state, app, &group_id, &headers).await?;
    let replay = Replayable::from_request(&ctx.app.id, "DELETE", &format!("{group_id}/{entity}/{id}"), &headers, b"")?;
    idempotency::run(&state.clone(), replay, async move {
        let def = ctx.writable(&entity)?;
        let target = Target::Id(load(&state, &ctx, def, &id).await?.id);
        let op = write_op(&ctx, def, target, json!({ def.name: {} }), if_match(&headers)?, true)?;
        write_one(&state, &ctx, def, op).await
    })
    .await
}

/// Reads `If-Match: "v3"` (also `W/"v3"`, `3`); `*` means any version.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    let digits = bare.strip_prefix('v').unwrap_or(bare);
    // Versions start at 1.
    digits.parse::<i64>().ok().filter(|v| *v >= 1).map(Some).ok_or_else(|| {
        ApiError::bad_request("bad-if-match", format!("If-Match must be an ETag like \"v3\", got {text:?}"))
    })
}

/// Builds the store's write from a request body `{"<entity>": {...}, "opts": {...}}`.
pub fn write_op(
    ctx: &Ctx,
    def: &'static EntityDef,
    target: Target,
    body: Value,
    if_match: Option<i64>,
    archive: bool,
) -> Result<WriteOp, ApiError> {
    let Value::Object(mut envelope) = body else {
        return Err(ApiError::bad_request(
            "bad-request",
            format!("Expected a JSON object {{\"{}\": {{...}}}}", def.name),
        ));
    };
    let record = match envelope.remove(def.name) {
        Some(Value::Object(record)) => record,
        Some(_) => {
            return Err(ApiError::Invalid(vec![sharehub_model::FieldError::new(def.name, "expected an object")]))
        }
        None => {
            return Err(ApiError::bad_request(
                "bad-request",
                format!("Expected the record under the key {:?}", def.name),
            ))
        }
    };
    let mut record = record;
    merge_outer_opts(&mut record, envelope.remove("opts"));
    Ok(WriteOp {
        org_id: ctx.group.org_id.clone(),
        caller: ctx.caller(),
        entity: def,
        target,
        body: record,
        matching_fields: Vec::new(),
        if_match,
        archive,
    })
}

/// `opts` may sit beside the record as well as inside it.
fn merge_outer_opts(record: &mut Map<String, Value>, outer: Option<Value>) {
    let Some(Value::Object(outer)) = outer else { return };
    let opts = record.entry("opts").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(inner) = opts {
        for (key, value) in outer {
            inner.entry(key).or_insert(value);
        }
    }
}

async fn write_one(state: &AppState, ctx: &Ctx, def: &'static EntityDef, op: WriteOp) -> Result<Response, ApiError> {
    let mut results = state.store.write(vec![op]).await?;
    let outcome =
        results.pop().ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the store answered no result")))??;
    let status = outcome_status(&outcome);
    one_record_response(state, ctx, def, status, outcome.record()).await
}

pub fn outcome_status(outcome: &WriteOutcome) -> StatusCode {
    match outcome {
        WriteOutcome::Created(_) => StatusCode::CREATED,
        WriteOutcome::Updated(_) | WriteOutcome::Unchanged(_) => StatusCode::OK,
    }
}
