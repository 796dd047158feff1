//! Write-behind for a write transaction, on either backend: the write rules'
//! inserts and updates are kept in memory and written with a few multi-row
//! statements at [`BufferedTx::flush`].
//!
//! Every statement is a round trip (to SQLite's worker thread, or to the
//! PostgreSQL server); a batch of 500 upserts would otherwise cost ~2,000 of
//! them. Reads of what the transaction already wrote are answered from the
//! buffer, and the two queries that scan the table (matching fields, the
//! singleton) flush first, so the rules see exactly what they would see
//! statement by statement.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::{BodyId, PreparedOp, WriteTx};
use crate::{ChangeKind, StoreError, StoredRecord};

/// Organization, entity, app, realm and external id: the key of a link.
pub(crate) type LinkKey = (String, String, String, String, String);
/// Organization, entity, app and realm: all of a link's key but the external id.
pub(crate) type LinkScope = (String, String, String, String);

/// A record row waiting to be written, its data already JSON text: the
/// buffer keeps the text it will write, not a second copy of the value.
pub(crate) struct RecordRow {
    pub org_id: String,
    pub entity: String,
    pub id: Uuid,
    pub data: String,
    pub version: i64,
    pub content_hash: [u8; 32],
    pub created_at: i64,
    pub updated_at: i64,
    pub archived: bool,
}

impl RecordRow {
    fn new(record: &StoredRecord) -> Self {
        Self {
            org_id: record.org_id.clone(),
            entity: record.entity.clone(),
            id: record.id,
            data: record.data.to_string(),
            version: record.version,
            content_hash: record.content_hash,
            created_at: record.created_at.as_microsecond(),
            updated_at: record.updated_at.as_microsecond(),
            archived: record.archived,
        }
    }

    /// The record again, for a later op of the same transaction that reads it.
    fn record(&self) -> Result<StoredRecord, StoreError> {
        let time = |micros: i64| {
            jiff::Timestamp::from_microsecond(micros)
                .map_err(|e| StoreError::Corrupt(format!("bad time {micros} of a buffered record: {e}")))
        };
        Ok(StoredRecord {
            org_id: self.org_id.clone(),
            entity: self.entity.clone(),
            id: self.id,
            data: serde_json::from_str(&self.data)
                .map_err(|e| StoreError::Corrupt(format!("a buffered record does not read back: {e}")))?,
            version: self.version,
            content_hash: self.content_hash,
            created_at: time(self.created_at)?,
            updated_at: time(self.updated_at)?,
            archived: self.archived,
        })
    }
}

/// A change-log row waiting to be written.
pub(crate) struct PendingChange {
    pub org_id: String,
    pub seq: i64,
    pub entity: String,
    pub record_id: Uuid,
    pub version: i64,
    pub origin_app: String,
    pub kind: ChangeKind,
    pub at: i64,
}

/// What a backend's write connection does for [`BufferedTx`]. Every call
/// concerns one organization; the PostgreSQL one names it for row-level
/// security first.
#[async_trait]
pub(crate) trait WriteConn: Send {
    async fn load(&mut self, org_id: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError>;
    async fn find_link(&mut self, key: &LinkKey) -> Result<Option<Uuid>, StoreError>;
    /// The links of `scope` among `external_ids`, as (external id, record).
    async fn find_links(
        &mut self,
        scope: &LinkScope,
        external_ids: &[String],
    ) -> Result<Vec<(String, Uuid)>, StoreError>;
    async fn find_matching(
        &mut self,
        org_id: &str,
        entity: &str,
        fields: &[(Vec<String>, Value)],
    ) -> Result<Option<Uuid>, StoreError>;
    async fn find_singleton(&mut self, org_id: &str, entity: &str) -> Result<Option<Uuid>, StoreError>;
    /// The organization's last change seq. The caller holds the right to
    /// number its changes (the one writer, or the locked organization row).
    async fn last_seq(&mut self, org_id: &str) -> Result<i64, StoreError>;
    /// Inserts or replaces records, all of `org_id`.
    async fn write_records(&mut self, org_id: &str, records: &[RecordRow]) -> Result<(), StoreError>;
    /// Inserts links (existing ones are kept), all of `org_id`.
    async fn write_links(&mut self, org_id: &str, links: &[(LinkKey, Uuid)]) -> Result<(), StoreError>;
    /// Appends change-log rows, all of `org_id`, and records its last seq.
    async fn write_changes(&mut self, org_id: &str, changes: &[PendingChange]) -> Result<(), StoreError>;
}

/// A [`WriteTx`] over a backend write connection that buffers its writes.
pub(crate) struct BufferedTx<'c, C: WriteConn + ?Sized> {
    conn: &'c mut C,
    records: Vec<RecordRow>,
    record_index: HashMap<(String, Uuid), usize>,
    links: HashMap<LinkKey, Uuid>,
    /// Links read ahead of the ops ([`BufferedTx::prefetch_links`]), and
    /// those known not to exist; written links take precedence.
    loaded: HashMap<LinkKey, Uuid>,
    absent: HashSet<LinkKey>,
    changes: Vec<PendingChange>,
    last_seq: HashMap<String, i64>,
}

impl<'c, C: WriteConn + ?Sized> BufferedTx<'c, C> {
    pub(crate) fn new(conn: &'c mut C) -> Self {
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
    pub(crate) async fn prefetch_links(&mut self, ops: &mut [PreparedOp]) -> Result<(), StoreError> {
        // Keyed like the primary key of id_links, so each query is an index
        // seek: by caller (organization, app, realm; one in nearly every
        // call), then by entity.
        let mut wanted: Vec<(LinkScope, HashMap<&'static str, HashSet<String>>)> = Vec::new();
        for prepared in ops.iter_mut() {
            let op = &mut prepared.op;
            let by_entity = match wanted.iter().position(|((org, _, app, realm), _)| {
                *org == op.org_id && *app == op.caller.app_id && *realm == op.caller.realm
            }) {
                Some(i) => &mut wanted[i].1,
                None => {
                    let caller = (op.org_id.clone(), String::new(), op.caller.app_id.clone(), op.caller.realm.clone());
                    wanted.push((caller, HashMap::new()));
                    &mut wanted.last_mut().expect("just pushed").1
                }
            };
            if let Ok(BodyId::External(ext)) = &prepared.checked {
                by_entity.entry(op.entity.name).or_default().insert(ext.clone());
            }
            // The reference walker reads a Value: lend it the body, then give it back.
            let body = Value::Object(std::mem::take(&mut op.body));
            sharehub_model::catalog::for_each_reference(op.entity, &body, |reference, _, value| {
                if let Value::Array(entries) = value {
                    by_entity.entry(reference.target).or_default().extend(own_ids(entries, &op.caller.provider));
                }
            });
            if let Value::Object(map) = body {
                op.body = map;
            }
        }

        for ((org, _, app, realm), by_entity) in wanted {
            for (entity, names) in by_entity {
                let scope = (org.clone(), entity.to_string(), app.clone(), realm.clone());
                let names: Vec<String> = names.into_iter().filter(|n| !self.is_known(&scope, n)).collect();
                if !names.is_empty() {
                    self.load_links(&scope, &names).await?;
                }
            }
        }
        Ok(())
    }

    fn is_known(&self, scope: &LinkScope, external_id: &str) -> bool {
        let key = link_key(scope, external_id);
        self.loaded.contains_key(&key) || self.absent.contains(&key) || self.links.contains_key(&key)
    }

    async fn load_links(&mut self, scope: &LinkScope, names: &[String]) -> Result<(), StoreError> {
        for (ext, id) in self.conn.find_links(scope, names).await? {
            self.loaded.insert(link_key(scope, &ext), id);
        }
        for ext in names {
            let key = link_key(scope, ext);
            if !self.loaded.contains_key(&key) {
                self.absent.insert(key);
            }
        }
        Ok(())
    }

    /// Writes everything buffered so far, one organization after another.
    pub(crate) async fn flush(&mut self) -> Result<(), StoreError> {
        let records = std::mem::take(&mut self.records);
        self.record_index.clear();
        for (org, rows) in by_org(records, |r| &r.org_id) {
            self.conn.write_records(&org, &rows).await?;
        }

        let links: Vec<(LinkKey, Uuid)> = self.links.drain().collect();
        for (org, rows) in by_org(links, |(key, _)| &key.0) {
            self.conn.write_links(&org, &rows).await?;
        }

        let changes = std::mem::take(&mut self.changes);
        for (org, rows) in by_org(changes, |c| &c.org_id) {
            self.conn.write_changes(&org, &rows).await?;
        }
        Ok(())
    }

    fn buffer_record(&mut self, record: &StoredRecord) {
        let key = (record.org_id.clone(), record.id);
        match self.record_index.get(&key) {
            Some(i) => self.records[*i] = RecordRow::new(record),
            None => {
                self.record_index.insert(key, self.records.len());
                self.records.push(RecordRow::new(record));
            }
        }
    }

    async fn next_seq(&mut self, org_id: &str) -> Result<i64, StoreError> {
        let last = match self.last_seq.get(org_id) {
            Some(seq) => *seq,
            None => self.conn.last_seq(org_id).await?,
        };
        self.last_seq.insert(org_id.to_string(), last + 1);
        Ok(last + 1)
    }
}

/// Splits rows by organization, keeping their order within each.
fn by_org<T>(rows: Vec<T>, org: impl Fn(&T) -> &String) -> Vec<(String, Vec<T>)> {
    let mut groups: Vec<(String, Vec<T>)> = Vec::new();
    for row in rows {
        let org_id = org(&row);
        match groups.iter_mut().find(|(o, _)| o == org_id) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((org_id.clone(), vec![row])),
        }
    }
    groups
}

fn link_key(scope: &LinkScope, external_id: &str) -> LinkKey {
    let (org, entity, app, realm) = scope;
    (org.clone(), entity.clone(), app.clone(), realm.clone(), external_id.to_string())
}

#[async_trait]
impl<C: WriteConn + ?Sized> WriteTx for BufferedTx<'_, C> {
    async fn load(&mut self, org_id: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError> {
        if let Some(i) = self.record_index.get(&(org_id.to_string(), id)) {
            return self.records[*i].record().map(Some);
        }
        self.conn.load(org_id, id).await
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
        self.conn.find_link(&key).await
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
        self.conn.find_matching(org_id, entity, fields).await
    }

    async fn find_singleton(&mut self, org_id: &str, entity: &str) -> Result<Option<Uuid>, StoreError> {
        self.flush().await?;
        self.conn.find_singleton(org_id, entity).await
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
    let own = entries.iter().filter(move |e| e.get("provider").and_then(Value::as_str) == Some(provider));
    own.filter_map(|e| super::naming::id_text(e.get("id")))
}
