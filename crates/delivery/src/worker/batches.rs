//! Building an app's next batch: the changes after its cursors that it
//! gets, its records rendered in their present state; and a dead letter an
//! administrator asked to resend.
//!
//! A batch renders each record as it is when the batch is built, which may
//! be newer than the change that put it in the batch (a create and an
//! update a moment apart, the batch holding only the create). The later
//! change would then send the same version again in the next batch, under
//! another webhook-id. [`Ahead`] remembers such records, in this process,
//! and the later changes they already cover are passed over. Forgetting
//! (a restart, another process taking the app over) only means the version
//! may be sent twice, as at-least-once delivery allows.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use sharehub_store::{App, BatchRecord, CursorMove, PendingBatch, StoreError};
use uuid::Uuid;

use super::Deliverer;
use crate::body::render_body;
use crate::signature::new_message_id;

/// Entries kept at most; past it the memory starts again (at the cost of a
/// few versions sent twice) rather than growing.
const AHEAD_LIMIT: usize = 100_000;

/// Records sent at a newer version than their change: (app, organization,
/// record) -> the version sent.
#[derive(Default)]
pub(super) struct Ahead(Mutex<HashMap<(String, String, Uuid), i64>>);

impl Ahead {
    /// Whether `app` was already sent `record` at `version` or newer; the
    /// entry goes once the log has caught up with it.
    fn covers(&self, app: &str, org: &str, record: Uuid, version: i64) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (app.to_string(), org.to_string(), record);
        let Some(&sent) = map.get(&key) else { return false };
        if sent > version {
            return true;
        }
        // Caught up (or passed): nothing to remember any more.
        map.remove(&key);
        sent == version
    }

    fn note(&self, app: &str, sent: impl IntoIterator<Item = (String, Uuid, i64)>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > AHEAD_LIMIT {
            map.clear();
        }
        for (org, record, version) in sent {
            map.insert((app.to_string(), org, record), version);
        }
    }

    /// A batch that never arrived (a dead letter) covers nothing.
    pub(super) fn forget(&self, app: &str, records: &[BatchRecord]) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for r in records {
            map.remove(&(app.to_string(), r.org_id.clone(), r.id));
        }
    }
}

/// The records of a batch to be, with the newest version of each that a
/// change in the batch names.
struct Collected {
    records: Vec<BatchRecord>,
    versions: HashMap<Uuid, i64>,
    moves: Vec<CursorMove>,
}

impl Deliverer {
    /// Builds and saves the next batch, or moves cursors past changes the app
    /// does not get (answering an empty batch so the caller looks again).
    pub(super) async fn next_batch(&self, app: &App) -> Result<Option<PendingBatch>, StoreError> {
        let Collected { records, versions, moves } = self.collect(app).await?;
        if moves.is_empty() {
            return Ok(None);
        }
        if records.is_empty() {
            self.store.advance_cursors(&app.id, &moves).await?;
            return Ok(Some(new_batch(app, String::new(), Vec::new(), moves, records)));
        }
        let rendered = render_body(self.store.as_ref(), app, &records).await?;
        let ahead = records.iter().filter_map(|r| {
            let sent = *rendered.versions.get(&r.id)?;
            (sent > *versions.get(&r.id)?).then(|| (r.org_id.clone(), r.id, sent))
        });
        self.ahead.note(&app.id, ahead.collect::<Vec<_>>());
        let batch = new_batch(app, new_message_id(), rendered.body, moves, records);
        self.store.save_pending_batch(&batch).await?;
        Ok(Some(batch))
    }

    /// A dead letter an administrator asked to resend, as a new batch.
    ///
    /// It goes through this task like any batch, so it never overtakes or is
    /// overtaken by another batch of the app: per record, versions still only
    /// go up. Its records are rendered in their present state (the stored body
    /// may be older than what the receiver has since received), under a new
    /// webhook-id, and it moves no cursor. Records of entities the app may no
    /// longer read are left out.
    pub(super) async fn resend_batch(&self, app: &App) -> Result<Option<PendingBatch>, StoreError> {
        let Some(mut letter) = self.store.take_resend_request(&app.id).await? else { return Ok(None) };
        letter.records.retain(|r| app.wants(&r.entity));
        if letter.records.is_empty() {
            tracing::warn!(
                app_id = app.id,
                resent = letter.webhook_id,
                "a dead letter holds nothing the app still gets"
            );
            return Ok(None);
        }
        let rendered = render_body(self.store.as_ref(), app, &letter.records).await?;
        let batch = new_batch(app, new_message_id(), rendered.body, Vec::new(), letter.records);
        self.store.save_pending_batch(&batch).await?;
        tracing::info!(
            app_id = app.id,
            resent = letter.webhook_id,
            webhook_id = batch.webhook_id,
            "resending a dead letter"
        );
        Ok(Some(batch))
    }

    /// The records the app should get next, and where that leaves its cursors.
    async fn collect(&self, app: &App) -> Result<Collected, StoreError> {
        let limit = self.options.batch_records;
        let mut cursors: Vec<(String, i64)> = self.store.cursors(&app.id).await?.into_iter().collect();
        cursors.sort();
        // Start each batch at another organization, so one busy organization
        // cannot fill every batch while the others wait.
        if !cursors.is_empty() {
            let start = self.rounds.fetch_add(1, Ordering::Relaxed) % cursors.len();
            cursors.rotate_left(start);
        }
        let mut out = Collected { records: Vec::new(), versions: HashMap::new(), moves: Vec::new() };
        let mut seen = HashSet::new();
        for (org_id, after) in cursors {
            if out.records.len() >= limit {
                break;
            }
            let changes = self.store.changes(&org_id, after, (limit * 4).max(100) as u32).await?;
            let mut to = after;
            for change in changes {
                if out.records.len() >= limit {
                    break;
                }
                to = change.seq;
                let own = change.origin_app.as_deref() == Some(app.id.as_str());
                if own || !app.wants(&change.entity) {
                    continue;
                }
                if self.ahead.covers(&app.id, &org_id, change.record_id, change.version) {
                    continue;
                }
                let version = out.versions.entry(change.record_id).or_insert(change.version);
                *version = (*version).max(change.version);
                if seen.insert((org_id.clone(), change.record_id)) {
                    let record = BatchRecord { org_id: org_id.clone(), entity: change.entity, id: change.record_id };
                    out.records.push(record);
                }
            }
            if to > after {
                out.moves.push(CursorMove { org_id, to_seq: to });
            }
        }
        Ok(out)
    }
}

fn new_batch(
    app: &App,
    webhook_id: String,
    body: Vec<u8>,
    ranges: Vec<CursorMove>,
    records: Vec<BatchRecord>,
) -> PendingBatch {
    let now = jiff::Timestamp::now();
    PendingBatch {
        app_id: app.id.clone(),
        webhook_id,
        body,
        ranges,
        records,
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
        last_error: None,
    }
}
