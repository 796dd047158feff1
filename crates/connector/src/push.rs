//! App to hub: the app's changed records, page by page from a saved cursor,
//! upserted with the hub's batch endpoint under an `Idempotency-Key`.
//!
//! Each poll starts where [`PushCursor::resume`] says: up to `overlap` before
//! its cursor while rows committed late with an earlier updated-at could
//! still appear; rows already shared are recognised by their fingerprint and
//! not sent again.

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};

use crate::adapter::{AppRecord, Cursor};
use crate::connector::Connector;
use crate::error::{Error, Result};
use crate::mapping::{hub_id, EntityMapping, Target};
use crate::push_cursor::PushCursor;
use crate::state::Link;

/// The side of a failing record, in the state's `record_errors`.
pub(crate) const PUSH: &str = "push";

/// The fingerprint of a link whose records are inactive on both sides.
pub(crate) const INACTIVE: &str = "inactive";

/// One upsert waiting in a batch, with what to remember when it succeeds.
struct PendingOp {
    op: Value,
    app_entity: String,
    app_id: String,
    hub_entity: String,
    /// Known when the record is linked already.
    hub_id: Option<String>,
    fingerprint: String,
}

impl Connector {
    /// Pushes every changed record of every entity the organization pushes.
    pub async fn push_changes(&self, group: &str) -> Result<()> {
        let org = self.org(group)?;
        for entity in &self.inner.mapping.entities {
            if org.settings.direction(&entity.name).pushes() {
                self.push_entity(group, entity).await?;
            }
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(entity = %entity.name))]
    async fn push_entity(&self, group: &str, entity: &EntityMapping) -> Result<()> {
        let org = self.org(group)?;
        let name = cursor_name(&entity.name);
        let overlap = SignedDuration::try_from(self.inner.options.overlap).unwrap_or_default();
        let began = Timestamp::now();
        let mut saved: Option<PushCursor> = self.load_cursor(group, &name).await?;
        let mut after = saved.as_ref().map(|c| c.resume(overlap));
        loop {
            let page = org.adapter.list_changed(&entity.name, after.as_ref(), self.inner.options.page_size).await?;
            let Some(last) = page.records.last() else { break };
            let next = Cursor { updated_at: last.updated_at, id: last.id.clone() };
            self.push_records(group, entity, &page.records).await?;
            // The cursor never moves back: an overlap re-read stays behind it.
            if saved.as_ref().is_none_or(|s| (&next.updated_at, &next.id) > (&s.at.updated_at, &s.at.id)) {
                let moved = PushCursor { at: next.clone(), settled: saved.as_ref().and_then(|s| s.settled) };
                self.save_cursor(group, &name, &moved).await?;
                saved = Some(moved);
            }
            after = Some(next);
            if !page.has_more {
                break;
            }
        }
        // Read to the end: the window before the cursor shrinks.
        if let Some(settled) = saved.as_ref().and_then(|s| s.settled_by(began, overlap)) {
            self.save_cursor(group, &name, &settled).await?;
        }
        Ok(())
    }

    /// Sends the records' targets that changed since they were last shared.
    pub(crate) async fn push_records(&self, group: &str, entity: &EntityMapping, records: &[AppRecord]) -> Result<()> {
        let _guard = self.org(group)?.lock.lock().await;
        let mut pending = Vec::new();
        for record in records {
            if let Some(why) = &record.unreadable {
                let error = Error::Mapping(format!("the app's record cannot be read: {why}"));
                self.fail_push(group, &entity.name, &record.id, &error).await?;
                continue;
            }
            for target in entity.targets.iter().filter(|t| t.applies_to(record)) {
                match self.pending_op(group, entity, target, record).await {
                    Ok(Some(op)) => pending.push(op),
                    Ok(None) => {}
                    // An outage fails the step, so the cursor stays before this page.
                    Err(e) if e.is_transient() => return Err(e),
                    Err(e) => self.fail_push(group, &entity.name, &record.id, &e).await?,
                }
            }
        }
        for chunk in pending.chunks(self.inner.options.page_size.max(1)) {
            self.send_batch(group, chunk).await?;
        }
        Ok(())
    }

    /// The upsert for one target of a record, unless the hub already holds
    /// what it maps (an echo of a hub change, or nothing new).
    async fn pending_op(
        &self,
        group: &str,
        entity: &EntityMapping,
        target: &Target,
        record: &AppRecord,
    ) -> Result<Option<PendingOp>> {
        let link = self.inner.state.link_by_app(group, &entity.name, &target.hub, &record.id).await?;
        if record.inactive && target.creates {
            return Ok(link.filter(|l| l.fingerprint != INACTIVE).map(|l| archive(group, &entity.name, record, l)));
        }
        let fingerprint = target.fingerprint(&record.fields)?;
        if link.as_ref().is_some_and(|l| l.fingerprint == fingerprint) {
            return Ok(None);
        }
        if let Some(link) = &link {
            if self.hub_wins(group, link, record).await? {
                return Ok(None);
            }
        }
        let body = target.to_hub(&entity.name, record, self.inner.hub.provider())?;
        let op = json!({ "method": "post", "url": format!("/api/v2/{group}/{}", target.hub), "params": { &target.hub: body } });
        Ok(Some(PendingOp {
            op,
            app_entity: entity.name.clone(),
            app_id: record.id.clone(),
            hub_entity: target.hub.clone(),
            hub_id: link.map(|l| l.hub_id),
            fingerprint,
        }))
    }

    /// Whether the hub's record moved on since it was last shared and wins
    /// the conflict: with hub preemption always, else when its change is the
    /// newer one. The winner is applied to the app instead of pushing.
    async fn hub_wins(&self, group: &str, link: &Link, record: &AppRecord) -> Result<bool> {
        let Some(current) = self.inner.hub.record(group, &link.hub_entity, &link.hub_id).await? else {
            return Ok(false);
        };
        if current["version"].as_i64().unwrap_or(0) <= link.hub_version {
            return Ok(false);
        }
        let hub_time = current["updated_at"].as_str().and_then(|t| t.parse::<Timestamp>().ok());
        let hub_newer = hub_time.is_some_and(|t| t >= record.updated_at);
        let preemption = self.org(group)?.settings.hub_preemption;
        // Both sides changed the record since it was last shared: the winner
        // replaces the whole mapped record (see README, "Conflicts").
        let (entity, id, hub_id) = (&link.app_entity, &record.id, &link.hub_id);
        if !(preemption || hub_newer) {
            tracing::info!(group, entity, id, hub_id, "conflict: the app's newer change wins over the hub's");
            return Ok(false);
        }
        tracing::info!(group, entity, id, hub_id, preemption, "conflict: the hub's change wins over the app's");
        self.apply_to_link(group, link, &current).await?;
        Ok(true)
    }

    async fn send_batch(&self, group: &str, chunk: &[PendingOp]) -> Result<()> {
        let ops: Vec<Value> = chunk.iter().map(|p| p.op.clone()).collect();
        // One key per batch, kept across the client's retries: a retry after a
        // lost answer replays it instead of writing twice.
        let key = uuid::Uuid::new_v4().to_string();
        let results = self.inner.hub.batch(ops, &key).await?;
        tracing::debug!(group, ops = chunk.len(), "batch pushed to the hub");
        // Refused credentials are no fault of the records: the step fails
        // once, the org pauses after repeated failures, and nothing is
        // recorded per record (a wrong group_id would mark every row).
        if let Some(denied) = results.iter().find(|r| r.status == 401) {
            return Err(Error::refused_group(group, &denied.body.to_string()));
        }
        for (pending, result) in chunk.iter().zip(results) {
            if !(200..300).contains(&result.status) {
                let error = Error::HubRefused { status: result.status, detail: result.body.to_string() };
                self.fail_push(group, &pending.app_entity, &pending.app_id, &error).await?;
                continue;
            }
            let record = &result.body[&pending.hub_entity];
            let link = Link {
                app_entity: pending.app_entity.clone(),
                app_id: pending.app_id.clone(),
                hub_entity: pending.hub_entity.clone(),
                hub_id: hub_id(&record["id"]).or_else(|| pending.hub_id.clone()).unwrap_or_default(),
                hub_version: record["version"].as_i64().unwrap_or(0),
                fingerprint: pending.fingerprint.clone(),
            };
            self.inner.state.save_link(group, &link).await?;
            self.inner.state.clear_failure(group, PUSH, &pending.app_entity, &pending.app_id).await?;
        }
        Ok(())
    }

    async fn fail_push(&self, group: &str, entity: &str, id: &str, error: &Error) -> Result<()> {
        tracing::warn!(group, entity, id, %error, "record not pushed to the hub; retried at the next poll");
        self.inner.state.record_failure(group, PUSH, entity, id, &error.to_string()).await
    }

    /// Pushes again the records that failed (a reference not yet shared, a
    /// refusal since fixed in the app), each at most `record_attempts` times.
    pub(crate) async fn retry_failed_pushes(&self, group: &str) -> Result<()> {
        let org = self.org(group)?;
        let failing = self.inner.state.record_errors(group).await?;
        let due = failing.iter().filter(|f| f.side == PUSH && f.attempts < self.inner.options.record_attempts);
        for failure in due {
            let Some(entity) = self.inner.mapping.entity(&failure.entity) else { continue };
            if let Some(record) = org.adapter.fetch(&entity.name, &failure.record_id).await? {
                self.push_records(group, entity, &[record]).await?;
            }
        }
        Ok(())
    }

    /// Without historical data, sharing starts now: the app's cursors start
    /// at this instant and the feed's at its end.
    pub(crate) async fn skip_history(&self, group: &str) -> Result<()> {
        for entity in &self.inner.mapping.entities {
            let name = cursor_name(&entity.name);
            if self.load_cursor::<Cursor>(group, &name).await?.is_none() {
                let start = Cursor { updated_at: Timestamp::now(), id: String::new() };
                self.save_cursor(group, &name, &start).await?;
            }
        }
        self.skip_feed(group).await
    }

    pub(crate) async fn load_cursor<T: serde::de::DeserializeOwned>(
        &self,
        group: &str,
        name: &str,
    ) -> Result<Option<T>> {
        let Some(raw) = self.inner.state.cursor(group, name).await? else { return Ok(None) };
        serde_json::from_str(&raw).map(Some).map_err(|e| Error::Config(format!("cursor {name} of {group}: {e}")))
    }

    pub(crate) async fn save_cursor<T: serde::Serialize>(&self, group: &str, name: &str, value: &T) -> Result<()> {
        let raw = serde_json::to_string(value).map_err(|e| Error::Config(e.to_string()))?;
        self.inner.state.save_cursor(group, name, &raw).await
    }
}

fn cursor_name(entity: &str) -> String {
    format!("push:{entity}")
}

/// Archives the hub record of an app record the app marked inactive.
fn archive(group: &str, app_entity: &str, record: &AppRecord, link: Link) -> PendingOp {
    let url = format!("/api/v2/{group}/{}/{}", link.hub_entity, link.hub_id);
    PendingOp {
        op: json!({ "method": "delete", "url": url }),
        app_entity: app_entity.to_string(),
        app_id: record.id.clone(),
        hub_entity: link.hub_entity,
        hub_id: Some(link.hub_id),
        fingerprint: INACTIVE.to_string(),
    }
}
