//! `POST /batch`: many operations in one call, answered in order.
//!
//! Consecutive writes run in one store transaction, so a batch of 50 upserts
//! costs one commit, and a record created early in a batch can be referenced
//! by a later op of the same batch. Each op still succeeds or fails alone.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use sharehub_store::render::{render_owned, render_records};
use sharehub_store::write::{Target, WriteOp};
use sharehub_store::App;

use super::context::Ctx;
use super::idempotency::{self, Replayable};
use super::records::{self, find_singleton, list_page, load, outcome_status, write_op};
use crate::error::ApiError;
use crate::extract::{parse_json_as, CallerApp, JsonBytes};
use crate::state::AppState;

#[derive(Deserialize)]
struct BatchRequest {
    #[serde(default)]
    #[allow(dead_code)] // ops always run in order; the flag is accepted for old clients
    sequential: bool,
    ops: Vec<RawBatchOp>,
}

/// An op as read from the body, its params still JSON text: one pass over
/// the body checks it and finds the ops, then their params are parsed over
/// all cores ([`RawBatchOp::parse`]).
#[derive(Deserialize)]
struct RawBatchOp {
    method: String,
    url: String,
    #[serde(default)]
    params: Option<Box<RawValue>>,
}

impl RawBatchOp {
    /// The op with its params parsed. Params the first pass let through but
    /// that do not parse (a lone UTF-16 surrogate, nesting past the parser's
    /// limit) fail their op alone.
    fn parse(self) -> BatchOp {
        let params = match self.params {
            Some(raw) => serde_json::from_str(raw.get()).map_err(|e| {
                ApiError::bad_request(
                    "malformed-json",
                    format!("The params of {} {} do not read: {e}", self.method, self.url),
                )
            }),
            None => Ok(Value::Null),
        };
        BatchOp { method: self.method, url: self.url, params }
    }
}

struct BatchOp {
    method: String,
    url: String,
    params: Result<Value, ApiError>,
}

/// One op's answer, before rendering.
enum Answer {
    Done(StatusCode, Value),
    Written { ctx: usize, status: StatusCode, record: Box<sharehub_store::StoredRecord> },
}

/// A write waiting for the next flush.
struct Queued {
    index: usize,
    ctx: usize,
    op: WriteOp,
}

pub async fn batch(
    State(state): State<AppState>,
    CallerApp(app): CallerApp,
    headers: HeaderMap,
    JsonBytes(raw): JsonBytes,
) -> Result<Response, ApiError> {
    let replay = Replayable::from_request(&app.id, "POST", "batch", &headers, &raw)?;
    idempotency::run(&state.clone(), replay, async move {
        let request: BatchRequest = parse_json_as(&raw, r#"{"ops": [{"method", "url", "params"}]}"#)?;
        if request.ops.len() > state.config.batch_max_ops {
            return Err(ApiError::PayloadTooLarge(format!("A batch holds at most {} ops", state.config.batch_max_ops)));
        }
        let ops = sharehub_model::parallel::map_split(request.ops, RawBatchOp::parse);
        let results = Runner::new(&state, app, &headers).run(ops).await?;
        results_response(results)
    })
    .await
}

struct Runner<'a> {
    state: &'a AppState,
    app: App,
    headers: &'a HeaderMap,
    contexts: Vec<Ctx>,
    by_group: HashMap<String, usize>,
    answers: Vec<Option<Answer>>,
    queue: Vec<Queued>,
}

impl<'a> Runner<'a> {
    fn new(state: &'a AppState, app: App, headers: &'a HeaderMap) -> Self {
        Self {
            state,
            app,
            headers,
            contexts: Vec::new(),
            by_group: HashMap::new(),
            answers: Vec::new(),
            queue: Vec::new(),
        }
    }

    async fn run(mut self, ops: Vec<BatchOp>) -> Result<Vec<Value>, ApiError> {
        self.answers = (0..ops.len()).map(|_| None).collect();
        for (index, op) in ops.into_iter().enumerate() {
            if let Err(e) = self.step(index, op).await {
                if matches!(e, ApiError::Unavailable(_) | ApiError::Internal(_)) {
                    return Err(e);
                }
                self.answers[index] = Some(error_answer(e));
            }
        }
        self.flush().await?;
        self.render().await
    }

    async fn step(&mut self, index: usize, op: BatchOp) -> Result<(), ApiError> {
        let target = parse_url(&op.url)?;
        let ctx = self.context(&target.group_id).await?;
        let method = op.method.to_ascii_lowercase();
        if method == "get" {
            self.flush().await?;
            let answer = self.read(ctx, &target).await?;
            self.answers[index] = Some(answer);
            return Ok(());
        }
        let write = self.write(ctx, &method, &target, op.params?).await?;
        self.queue.push(Queued { index, ctx, op: write });
        Ok(())
    }

    async fn context(&mut self, group_id: &str) -> Result<usize, ApiError> {
        if let Some(i) = self.by_group.get(group_id) {
            return Ok(*i);
        }
        let ctx = Ctx::new(self.state, self.app.clone(), group_id, self.headers).await?;
        self.contexts.push(ctx);
        self.by_group.insert(group_id.to_string(), self.contexts.len() - 1);
        Ok(self.contexts.len() - 1)
    }

    async fn read(&self, ctx: usize, target: &OpTarget) -> Result<Answer, ApiError> {
        let ctx = &self.contexts[ctx];
        let def = ctx.readable(&target.entity)?;
        let one = match &target.id {
            Some(id) => Some(load(self.state, ctx, def, id).await?),
            // The singleton's collection path names its one record, as a plain GET does.
            None if def.singleton => Some(find_singleton(self.state, ctx, def).await?),
            None => None,
        };
        if let Some(record) = one {
            let rendered =
                render_records(self.state.store.as_ref(), &ctx.group.org_id, &ctx.viewer(), &[record]).await?;
            return Ok(Answer::Done(StatusCode::OK, json!({ def.name: rendered.into_iter().next() })));
        }
        let page = list_page(self.state, ctx, def, &target.query).await?;
        Ok(Answer::Done(StatusCode::OK, page))
    }

    async fn write(&self, ctx: usize, method: &str, target: &OpTarget, params: Value) -> Result<WriteOp, ApiError> {
        let ctx = &self.contexts[ctx];
        let def = ctx.writable(&target.entity)?;
        let (record_target, archive, params) = match (method, &target.id) {
            ("post", None) if def.singleton => (Target::Singleton, false, params),
            ("post", None) => (Target::New, false, params),
            ("put", None) if def.singleton => (Target::Singleton, false, params),
            ("put", Some(id)) => (Target::Id(load(self.state, ctx, def, id).await?.id), false, params),
            ("delete", Some(id)) => {
                (Target::Id(load(self.state, ctx, def, id).await?.id), true, json!({ def.name: {} }))
            }
            _ => {
                return Err(ApiError::bad_request(
                    "bad-request",
                    format!("{method} {} is not an operation of the API", target.path()),
                ))
            }
        };
        write_op(ctx, def, record_target, params, None, archive)
    }

    async fn flush(&mut self) -> Result<(), ApiError> {
        if self.queue.is_empty() {
            return Ok(());
        }
        let (slots, ops): (Vec<(usize, usize)>, Vec<WriteOp>) =
            std::mem::take(&mut self.queue).into_iter().map(|q| ((q.index, q.ctx), q.op)).unzip();
        let results = self.state.store.write(ops).await?;
        for ((index, ctx), result) in slots.into_iter().zip(results) {
            self.answers[index] = Some(match result {
                Ok(outcome) => {
                    Answer::Written { ctx, status: outcome_status(&outcome), record: Box::new(outcome.into_record()) }
                }
                Err(e) => error_answer(e.into()),
            });
        }
        Ok(())
    }

    /// Renders written records group by group, one links query per group.
    /// The records are moved into their answers, not copied: a batch of 500
    /// invoices is a good part of a megabyte of values.
    async fn render(self) -> Result<Vec<Value>, ApiError> {
        let mut out: Vec<Value> = Vec::with_capacity(self.answers.len());
        let mut pending: HashMap<usize, Written> = HashMap::new();
        for (index, answer) in self.answers.into_iter().enumerate() {
            match answer {
                Some(Answer::Done(status, body)) => out.push(op_answer(status, body)),
                Some(Answer::Written { ctx, status, record }) => {
                    out.push(Value::Null);
                    let written = pending.entry(ctx).or_default();
                    written.slots.push((index, status));
                    written.records.push(*record);
                }
                None => out.push(op_answer(StatusCode::INTERNAL_SERVER_ERROR, Value::Null)),
            }
        }
        for (ctx, written) in pending {
            let ctx = &self.contexts[ctx];
            let rendered =
                render_owned(self.state.store.as_ref(), &ctx.group.org_id, &ctx.viewer(), written.records).await?;
            for ((index, status), (entity, mut body)) in written.slots.into_iter().zip(rendered) {
                ctx.redact_unreadable(&entity, &mut body);
                out[index] = op_answer(status, Value::Object(Map::from_iter([(entity, body)])));
            }
        }
        Ok(out)
    }
}

/// The records written for one group, and where their answers go.
#[derive(Default)]
struct Written {
    slots: Vec<(usize, StatusCode)>,
    records: Vec<sharehub_store::StoredRecord>,
}

/// One op's entry in `results`.
fn op_answer(status: StatusCode, body: Value) -> Value {
    let fields = [("status".to_string(), Value::from(status.as_u16())), ("body".to_string(), body)];
    Value::Object(Map::from_iter(fields))
}

/// `{"results": [...]}`, each op's answer serialized alone, split over the
/// cores: the answer to a batch of invoices is megabytes of JSON.
fn results_response(results: Vec<Value>) -> Result<Response, ApiError> {
    let parts = sharehub_model::parallel::map_split(results, |answer| serde_json::to_vec(&answer));
    let parts = parts
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("serializing a batch answer: {e}")))?;
    let mut body = Vec::with_capacity(parts.iter().map(|part| part.len() + 1).sum::<usize>() + 16);
    body.extend_from_slice(br#"{"results":["#);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(part);
    }
    body.extend_from_slice(b"]}");
    Ok(records::json_bytes_response(StatusCode::OK, body))
}

fn error_answer(e: ApiError) -> Answer {
    let status = e.status();
    Answer::Done(status, e.body())
}

/// What an op's URL names.
struct OpTarget {
    group_id: String,
    entity: String,
    id: Option<String>,
    query: String,
}

impl OpTarget {
    fn path(&self) -> String {
        match &self.id {
            Some(id) => format!("/api/v2/{}/{}/{id}", self.group_id, self.entity),
            None => format!("/api/v2/{}/{}", self.group_id, self.entity),
        }
    }
}

/// Reads `/api/v2/{group}/{entity}[/{id}][?query]` (an absolute URL works too).
fn parse_url(raw: &str) -> Result<OpTarget, ApiError> {
    let bad = || ApiError::bad_request("bad-request", format!("{raw:?} is not /api/v2/{{group}}/{{entity}}[/{{id}}]"));
    let path_and_query = match raw.find("/api/v2/") {
        Some(start) => &raw[start + "/api/v2/".len()..],
        None => return Err(bad()),
    };
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let owned = |s: &str| s.strip_suffix(".json").unwrap_or(s).to_string();
    match parts.as_slice() {
        [group, entity] => {
            Ok(OpTarget { group_id: owned(group), entity: owned(entity), id: None, query: query.to_string() })
        }
        [group, entity, id] => Ok(OpTarget {
            group_id: owned(group),
            entity: owned(entity),
            id: Some(owned(id)),
            query: query.to_string(),
        }),
        _ => Err(bad()),
    }
}
