//! Write-behind for one job of the writer: the write rules' inserts and
//! updates are kept in memory and written with a few multi-row statements
//! when the job ends.
//!
//! Each statement sqlx runs on SQLite is a round trip to the connection's
//! worker thread; a batch of 500 upserts would otherwise cost ~2,000 of them.
//! Reads of what the job already wrote are answered from the buffer, and the
//! two queries that scan the table (matching fields, the singleton) flush
//! first, so the rules see exactly what they would see statement by statement.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::error::Context;
use crate::write::{WriteOp, WriteTx};
use crate::{ChangeKind, StoreError, StoredRecord};

/// Rows per multi-row statement; well under SQLite's bound-parameter limit.
const ROWS_PER_STATEMENT: usize = 200;

type LinkKey = (String, String, String, String, String);
/// Organization, entity, app and realm: all of a link's key but the external id.
type LinkScope = (String, String, String, String);

struct PendingChange {
    org_id: String,
    seq: i64,
    entity: String,
    record_id: Uuid,
    version: i64,
    origin_app: String,
    kind: ChangeKind,
    at: i64,
}

/// A [`WriteTx`] over the write connection that buffers its writes.
pub(crate) struct BufferedTx<'c> {
    conn: &'c mut SqliteConnection,
    records: Vec<StoredRecord>,
    record_index: HashMap<(String, Uuid), usize>,
    links: HashMap<LinkKey, Uuid>,
    /// Links read ahead of the ops ([`BufferedTx::prefetch_links`]), and
    /// those known not to exist; written links take precedence.
    loaded: HashMap<LinkKey, Uuid>,
    absent: HashSet<LinkKey>,
    changes: Vec<PendingChange>,
    last_seq: HashMap<String, i64>,
}

impl<'c> BufferedTx<'c> {
    pub(crate) fn new(conn: &'c mut SqliteConnection) -> Self {
        Self {
            conn,
            records: Vec::new(),
            record_index: HashMap::new(),
            links: HashMap::new(),
            loaded: HashMap::new(),
            absent: HashSet::new(),
            changes: Vec::new(),
            last_seq: HashMap::new(),
        }
    }

    /// Reads in one query per caller every link the ops name with the caller's
    /// own ids (the record's `id` array and its references), instead of one
    /// query per op and per invoice line.
    pub(crate) async fn prefetch_links(&mut self, ops: &mut [WriteOp]) -> Result<(), StoreError> {
        // Keyed like the primary key of id_links, so each query is an index seek.
        let mut wanted: HashMap<LinkScope, HashSet<String>> = HashMap::new();
        for op in ops.iter_mut() {
            // The reference walker reads a Value: lend it the body, then give it back.
            let body = Value::Object(std::mem::take(&mut op.body));
            let scope = |entity: &str| {
                (op.org_id.clone(), entity.to_string(), op.caller.app_id.clone(), op.caller.realm.clone())
            };
            if let Some(Value::Array(entries)) = body.get("id") {
                wanted.entry(scope(op.entity.name)).or_default().extend(own_ids(entries, &op.caller.provider));
            }
            sharehub_model::catalog::for_each_reference(op.entity, &body, |reference, _, value| {
                if let Value::Array(entries) = value {
                    wanted.entry(scope(reference.target)).or_default().extend(own_ids(entries, &op.caller.provider));
                }
            });
            if let Value::Object(map) = body {
                op.body = map;
            }
        }
        for (scope, names) in wanted {
            let names: Vec<String> = names.into_iter().collect();
            for chunk in names.chunks(ROWS_PER_STATEMENT) {
                self.load_links(&scope, chunk).await?;
            }
        }
        Ok(())
    }

    async fn load_links(&mut self, scope: &LinkScope, names: &[String]) -> Result<(), StoreError> {
        let (org, entity, app, realm) = scope;
        let mut q = QueryBuilder::<Sqlite>::new("SELECT external_id, record_id FROM id_links WHERE org_id = ");
        q.push_bind(org.clone()).push(" AND entity = ").push_bind(entity.clone());
        q.push(" AND app_id = ").push_bind(app.clone()).push(" AND realm = ").push_bind(realm.clone());
        q.push(" AND external_id IN (");
        let mut list = q.separated(", ");
        for ext in names {
            list.push_bind(ext.clone());
        }
        q.push(")");
        let rows = q.build().fetch_all(&mut *self.conn).await.context("reading external ids ahead")?;
        let key = |ext: &str| (org.clone(), entity.clone(), app.clone(), realm.clone(), ext.to_string());
        for row in &rows {
            let (ext, id): (String, String) = (row.get(0), row.get(1));
            self.loaded.insert(key(&ext), super::tx::parse_uuid(&id)?);
        }
        for ext in names {
            let k = key(ext);
            if !self.loaded.contains_key(&k) {
                self.absent.insert(k);
            }
        }
        Ok(())
    }

    /// Writes everything buffered so far.
    pub(crate) async fn flush(&mut self) -> Result<(), StoreError> {
        self.flush_records().await?;
        self.flush_links().await?;
        self.flush_changes().await
    }

    async fn flush_records(&mut self) -> Result<(), StoreError> {
        let records = std::mem::take(&mut self.records);
        self.record_index.clear();
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new("INSERT INTO records (org_id, id, entity, data, version, content_hash, created_at, updated_at, archived) ");
            q.push_values(chunk, |mut row, r| {
                row.push_bind(r.org_id.clone())
                    .push_bind(r.id.to_string())
                    .push_bind(r.entity.clone())
                    .push_bind(r.data.to_string())
                    .push_bind(r.version)
                    .push_bind(r.content_hash.to_vec())
                    .push_bind(r.created_at.as_microsecond())
                    .push_bind(r.updated_at.as_microsecond())
                    .push_bind(r.archived);
            });
            q.push(
                " ON CONFLICT (org_id, id) DO UPDATE SET data = excluded.data, version = excluded.version, \
                 content_hash = excluded.content_hash, updated_at = excluded.updated_at, archived = excluded.archived",
            );
            q.build().execute(&mut *self.conn).await.context("writing records")?;
        }
        Ok(())
    }

    async fn flush_links(&mut self) -> Result<(), StoreError> {
        let links: Vec<(LinkKey, Uuid)> = self.links.drain().collect();
        for chunk in links.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO id_links (org_id, entity, app_id, realm, external_id, record_id) ",
            );
            q.push_values(chunk, |mut row, ((org, entity, app, realm, ext), record)| {
                row.push_bind(org.clone())
                    .push_bind(entity.clone())
                    .push_bind(app.clone())
                    .push_bind(realm.clone())
                    .push_bind(ext.clone())
                    .push_bind(record.to_string());
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut *self.conn).await.context("linking external ids")?;
        }
        Ok(())
    }

    async fn flush_changes(&mut self) -> Result<(), StoreError> {
        let changes = std::mem::take(&mut self.changes);
        for chunk in changes.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO changes (org_id, seq, entity, record_id, version, origin_app, kind, at) ",
            );
            q.push_values(chunk, |mut row, c| {
                row.push_bind(c.org_id.clone())
                    .push_bind(c.seq)
                    .push_bind(c.entity.clone())
                    .push_bind(c.record_id.to_string())
                    .push_bind(c.version)
                    .push_bind(c.origin_app.clone())
                    .push_bind(c.kind.as_str())
                    .push_bind(c.at);
            });
            q.build().execute(&mut *self.conn).await.context("logging changes")?;
        }
        Ok(())
    }

    fn buffer_record(&mut self, record: &StoredRecord) {
        let key = (record.org_id.clone(), record.id);
        match self.record_index.get(&key) {
            Some(i) => self.records[*i] = record.clone(),
            None => {
                self.record_index.insert(key, self.records.len());
                self.records.push(record.clone());
            }
        }
    }

    async fn next_seq(&mut self, org_id: &str) -> Result<i64, StoreError> {
        let last = match self.last_seq.get(org_id) {
            Some(seq) => *seq,
            // The one writer connection makes "the last seq + 1" safe.
            None => sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(seq), 0) FROM changes WHERE org_id = ?")
                .bind(org_id)
                .fetch_one(&mut *self.conn)
                .await
                .context("numbering a change")?,
        };
        self.last_seq.insert(org_id.to_string(), last + 1);
        Ok(last + 1)
    }
}

#[async_trait]
impl WriteTx for BufferedTx<'_> {
    async fn load(&mut self, org_id: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError> {
        if let Some(i) = self.record_index.get(&(org_id.to_string(), id)) {
            return Ok(Some(self.records[*i].clone()));
        }
        super::tx::load(&mut *self.conn, org_id, id).await
    }

    async fn find_link(
        &mut self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let key =
            (org_id.to_string(), entity.to_string(), app_id.to_string(), realm.to_string(), external_id.to_string());
        if let Some(id) = self.links.get(&key).or_else(|| self.loaded.get(&key)) {
            return Ok(Some(*id));
        }
        if self.absent.contains(&key) {
            return Ok(None);
        }
        super::tx::find_link(&mut *self.conn, org_id, entity, app_id, realm, external_id).await
    }

    async fn add_link(
        &mut self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
        record_id: Uuid,
    ) -> Result<(), StoreError> {
        let key =
            (org_id.to_string(), entity.to_string(), app_id.to_string(), realm.to_string(), external_id.to_string());
        self.absent.remove(&key);
        self.links.entry(key).or_insert(record_id);
        Ok(())
    }

    async fn find_matching(
        &mut self,
        org_id: &str,
        entity: &str,
        fields: &[(Vec<String>, Value)],
    ) -> Result<Option<Uuid>, StoreError> {
        self.flush().await?;
        super::tx::find_matching(&mut *self.conn, org_id, entity, fields).await
    }

    async fn find_singleton(&mut self, org_id: &str, entity: &str) -> Result<Option<Uuid>, StoreError> {
        self.flush().await?;
        super::tx::find_singleton(&mut *self.conn, org_id, entity).await
    }

    async fn insert(&mut self, record: &StoredRecord) -> Result<(), StoreError> {
        self.buffer_record(record);
        Ok(())
    }

    async fn update(&mut self, record: &StoredRecord) -> Result<(), StoreError> {
        self.buffer_record(record);
        Ok(())
    }

    async fn log_change(&mut self, r: &StoredRecord, origin_app: &str, kind: ChangeKind) -> Result<i64, StoreError> {
        let seq = self.next_seq(&r.org_id).await?;
        self.changes.push(PendingChange {
            org_id: r.org_id.clone(),
            seq,
            entity: r.entity.clone(),
            record_id: r.id,
            version: r.version,
            origin_app: origin_app.to_string(),
            kind,
            at: r.updated_at.as_microsecond(),
        });
        Ok(seq)
    }
}

/// The caller's own ids in an id array (entries of its provider), as text.
fn own_ids<'a>(entries: &'a [Value], provider: &'a str) -> impl Iterator<Item = String> + 'a {
    entries.iter().filter(move |e| e.get("provider").and_then(Value::as_str) == Some(provider)).filter_map(|e| match e
        .get(
        "id",
    )? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}
