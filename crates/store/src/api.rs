//! The [`Store`] trait and how a backend is chosen.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sharehub_model::view::LinkMap;
use uuid::Uuid;

use crate::write::WriteOp;
use crate::*;

/// Everything the hub asks of its database.
///
/// Every method that takes an `org_id` touches that organization's data only:
/// tenant isolation starts here, not in the HTTP layer.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- platform -------------------------------------------------------
    async fn create_org(&self, name: &str) -> Result<Org, StoreError>;
    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError>;
    /// Registers an app with a webhook secret made by the caller (`whsec_…`).
    async fn create_app(&self, app: NewApp, webhook_secret: String) -> Result<(App, AppSecrets), StoreError>;
    async fn update_app(&self, app_id: &str, update: AppUpdate) -> Result<Option<App>, StoreError>;
    async fn get_app(&self, app_id: &str) -> Result<Option<App>, StoreError>;
    async fn list_apps(&self) -> Result<Vec<App>, StoreError>;
    /// Replaces the app's api key; returns the new one.
    async fn rotate_api_key(&self, app_id: &str) -> Result<Option<String>, StoreError>;
    /// Replaces the app's webhook secret; answers whether the app exists.
    async fn set_webhook_secret(&self, app_id: &str, webhook_secret: String) -> Result<bool, StoreError>;
    /// Installs an app in an organization (idempotent: the existing group if any).
    async fn install(&self, app_id: &str, org_id: &str, realm: Option<&str>) -> Result<Group, StoreError>;
    async fn get_group(&self, group_id: &str) -> Result<Option<Group>, StoreError>;
    async fn groups_of_app(&self, app_id: &str) -> Result<Vec<Group>, StoreError>;

    // --- records ----------------------------------------------------------
    /// Runs the ops in order in one transaction; each op succeeds or fails
    /// on its own. Errs only when the database fails, and then nothing of
    /// the call is stored.
    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError>;
    async fn get_record(&self, org_id: &str, entity: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError>;
    async fn get_records(&self, org_id: &str, ids: &[Uuid]) -> Result<Vec<StoredRecord>, StoreError>;
    async fn find_by_external_id(
        &self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
    ) -> Result<Option<Uuid>, StoreError>;
    async fn find_singleton(&self, org_id: &str, entity: &str) -> Result<Option<StoredRecord>, StoreError>;
    /// One page of live records and the number of all that match.
    async fn list_records(&self, query: &ListQuery) -> Result<(Vec<StoredRecord>, u64), StoreError>;
    /// The external-id links of the given records, with their apps' provider names.
    async fn links(&self, org_id: &str, ids: &[Uuid]) -> Result<LinkMap, StoreError>;
    /// Changes of the organization with seq > `after`, in seq order.
    async fn changes(&self, org_id: &str, after: i64, limit: u32) -> Result<Vec<Change>, StoreError>;
    async fn last_seq(&self, org_id: &str) -> Result<i64, StoreError>;

    // --- idempotency ------------------------------------------------------
    async fn saved_response(&self, app_id: &str, key: &str) -> Result<Option<SavedResponse>, StoreError>;
    async fn save_response(&self, app_id: &str, key: &str, response: &SavedResponse) -> Result<(), StoreError>;
    /// Marks `key` as being answered, for every process sharing the database;
    /// false when another request holds it (a mark older than `stale_after`
    /// is taken over: its request died) or its answer, younger than
    /// `keep_for`, is saved. A saved answer replaces the mark. The default
    /// (always true) is for a store only one process uses.
    async fn claim_key(
        &self,
        _app_id: &str,
        _key: &str,
        _stale_after: Duration,
        _keep_for: Duration,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Removes the mark of a request that saved no answer (it failed).
    async fn release_key(&self, _app_id: &str, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }

    // --- webhook delivery -------------------------------------------------
    /// Delivery cursors of an app: organization id -> last delivered seq.
    async fn cursors(&self, app_id: &str) -> Result<HashMap<String, i64>, StoreError>;
    /// Moves cursors forward without a batch (the changes were not for this app).
    async fn advance_cursors(&self, app_id: &str, moves: &[CursorMove]) -> Result<(), StoreError>;
    async fn pending_batch(&self, app_id: &str) -> Result<Option<PendingBatch>, StoreError>;
    async fn save_pending_batch(&self, batch: &PendingBatch) -> Result<(), StoreError>;
    /// Records an attempt; on success also removes the batch and moves the cursors.
    async fn record_attempt(
        &self,
        batch: &PendingBatch,
        attempt: &DeliveryAttempt,
        delivered: bool,
    ) -> Result<(), StoreError>;
    /// Sets the batch aside as a dead letter and moves the cursors past it.
    async fn bury_batch(&self, batch: &PendingBatch) -> Result<(), StoreError>;
    async fn delivery_log(&self, app_id: &str, limit: u32) -> Result<Vec<DeliveryAttempt>, StoreError>;
    async fn dead_letters(&self, app_id: &str) -> Result<Vec<DeadLetter>, StoreError>;
    async fn dead_letter(&self, app_id: &str, webhook_id: &str) -> Result<Option<DeadLetter>, StoreError>;
    /// Asks the app's delivery task to send a dead letter's records again;
    /// answers whether the dead letter exists.
    async fn request_resend(&self, app_id: &str, webhook_id: &str) -> Result<bool, StoreError>;
    /// Takes the oldest resend request of an app, marking the letter resent.
    async fn take_resend_request(&self, app_id: &str) -> Result<Option<DeadLetter>, StoreError>;
    /// Stops deliveries to an app, saying why (`None` resumes them).
    async fn set_endpoint_disabled(&self, app_id: &str, reason: Option<&str>) -> Result<(), StoreError>;

    // --- delivery leases --------------------------------------------------
    /// Takes or renews the delivery lease of an app for `holder` (an id
    /// unique to one process) for `lease` from now; answers whether `holder`
    /// now holds it. It succeeds when the lease is free, expired or already
    /// `holder`'s: of processes sharing a database, one at a time delivers an
    /// app's webhooks, and a dead process's apps are taken over once its
    /// leases expire. On SQLite it also fails while another process (or
    /// another store) on the same file holds the file's delivery lock.
    async fn claim_app(&self, app_id: &str, holder: &str, lease: Duration) -> Result<bool, StoreError>;
    /// Gives the lease up if `holder` holds it, so another process may take
    /// the app at once instead of after the lease expires.
    async fn release_app(&self, app_id: &str, holder: &str) -> Result<(), StoreError>;
    /// Says the delivering process `holder` is alive for `ttl` more (zero
    /// retires it), so that processes sharing a database share the apps: a
    /// claim of a free app fails while the claimer holds its share already.
    /// On SQLite one process delivers every app of the file: nothing to share.
    async fn announce_holder(&self, _holder: &str, _ttl: Duration) -> Result<(), StoreError> {
        Ok(())
    }
    /// Whether `holder` holds more apps than its share, and should give an
    /// idle one up to a process that holds fewer.
    async fn over_share(&self, _holder: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// A receiver that changes whenever a write commits, to wake delivery
    /// workers: on SQLite only this store's writes; another process's on the
    /// same file are found by the workers' poll.
    fn commits(&self) -> tokio::sync::watch::Receiver<u64>;
    /// A receiver that changes after a write to apps, their entities or
    /// groups commits in this process, so the delivery supervisor starts a
    /// new app's task at once. Changes made by other processes are seen on
    /// the next poll only.
    fn platform_changes(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Finishes the writes queued and closes every connection; calls
    /// afterwards answer `Unavailable`. On SQLite this also folds the
    /// write-ahead log back into the database file and removes it (unless
    /// another process still has the file open), and gives up the file's
    /// delivery lock.
    async fn close(&self);
}

/// Opens the store named by a database URL: `sqlite://path` (created when
/// missing), `sqlite::memory:`, or `postgres://user@host/db` (also
/// `postgresql://`). Any other scheme is a start-up error.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        let store = crate::sqlite::SqliteStore::open(url).await?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = crate::postgres::PgStore::open(url).await?;
        return Ok(Arc::new(store));
    }
    let scheme = url.split(':').next().unwrap_or(url);
    Err(StoreError::Invalid(format!(
        "unsupported database URL scheme {scheme:?}: use sqlite://path/to/file.db or postgres://user@host/database"
    )))
}
