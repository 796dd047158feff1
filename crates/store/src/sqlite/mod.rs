//! The store on one embedded SQLite file.
//!
//! Reads go through a pool of read connections (WAL mode lets them run while
//! a write is in progress); writes go through the single [`writer`] task,
//! which commits waiting writes together.
//!
//! Several hub processes may open one file. SQLite's own locking serialises
//! their writes: each writer commits under `BEGIN IMMEDIATE`, and everything
//! a write reads to number and link its changes (the last seq, the external
//! ids, the stored versions) it reads inside that transaction, so no state
//! is cached across commits. Webhooks are delivered by one of the processes
//! only: the one holding the file's delivery lock ([`delivery_lock`]).

mod buffer;
mod checkpoint;
mod delivery;
mod delivery_lock;
pub use delivery_lock::in_use;
mod idempotency;
mod platform;
mod records;
mod rows;
mod tx;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sharehub_model::view::LinkMap;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::Context;
use crate::write::{self, PreparedOp, WriteOp};
use crate::*;
use writer::Writer;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
pub struct SqliteStore {
    reader: SqlitePool,
    writer: Writer,
    commits: watch::Receiver<u64>,
    /// Bumped after a write to apps, their entities or groups commits, so the
    /// delivery supervisor starts a new app's task without waiting for its poll.
    platform: watch::Sender<u64>,
    /// Delivery leases, kept in memory: see [`SqliteStore::claim_app_impl`].
    leases: delivery::Leases,
    /// Whether this process delivers for the file at all.
    delivery_lock: delivery_lock::DeliveryLock,
    checkpoints: checkpoint::Checkpointer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("bad SQLite URL {url:?}: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a write is acknowledged only once it is on disk. Group
            // commit keeps the cost of that sync shared between writes.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Page cache per connection, in KiB: the writer keeps the hot
            // index pages; readers share the OS page cache, so they keep less.
            .pragma("cache_size", "-8192")
            .pragma("temp_store", "memory");

        let mut conn = open_writer(&options).await?;
        // Checkpoints run beside the writer, not in its commits: see checkpoint.rs.
        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut conn).await.context("configuring checkpoints")?;

        // The read connections are not opened read-only: the last connection
        // to close removes the write-ahead log, and sqlx's pool lets its
        // connections finish closing on their threads after `close` returns,
        // so a reader may well be last (a read-only one leaves the log behind).
        // Nothing writes through them: every write goes to the writer task.
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone().pragma("cache_size", "-2048"))
            .await
            .context("opening read connections")?;
        let (commits_tx, commits) = watch::channel(0);
        let checkpoints = checkpoint::Checkpointer::start(options.clone(), commits.clone()).await;
        let platform = watch::Sender::new(0);
        let writer = Writer::start(conn, commits_tx);
        // After connecting: the file exists now, so its path resolves.
        let delivery_lock = delivery_lock::DeliveryLock::new(database_file(url, &options));
        Ok(Self { reader, writer, commits, platform, leases: Default::default(), delivery_lock, checkpoints })
    }

    /// Applies migrations and closes: `sharehub migrate`.
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        let store = Self::open(url).await?;
        store.close().await;
        Ok(())
    }
}

/// How long a store waits for another process that is setting up the same
/// new file (switching it to WAL, applying migrations).
const SETUP_RACE: Duration = Duration::from_secs(10);

/// Opens the write connection and applies migrations.
///
/// Another process opening the same file at the same moment may get in the
/// way, once: switching a new file to WAL takes a lock that SQLite's busy
/// timeout does not wait for, and two migrators may both find a migration
/// missing, the second then failing on the tables the first created. Either
/// is tried again (for [`SETUP_RACE`]), and then finds the file ready.
async fn open_writer(options: &SqliteConnectOptions) -> Result<sqlx::SqliteConnection, StoreError> {
    let deadline = tokio::time::Instant::now() + SETUP_RACE;
    loop {
        let raced = match options.connect().await {
            Err(e) if is_busy(&e) => StoreError::Database { context: "opening the database", source: e },
            Err(e) => return Err(StoreError::Database { context: "opening the database", source: e }),
            Ok(mut conn) => match MIGRATOR.run(&mut conn).await {
                Ok(()) => return Ok(conn),
                Err(e) => {
                    let error = StoreError::Invalid(format!("migrating the database: {e}"));
                    let _ = conn.close().await;
                    match e {
                        sqlx::migrate::MigrateError::Execute(_) | sqlx::migrate::MigrateError::ExecuteMigration(..) => {
                            error
                        }
                        _ => return Err(error),
                    }
                }
            },
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(raced);
        }
        tracing::debug!(error = %raced, "another process may be setting up the database; trying again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether SQLite answered that the database is busy or locked.
fn is_busy(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else { return false };
    // Extended codes keep the primary one in the low byte.
    let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0) & 0xff;
    code == 5 || code == 6
}

/// The database file `url` names; `None` for an in-memory database.
fn database_file<'a>(url: &str, options: &'a SqliteConnectOptions) -> Option<&'a Path> {
    let name = options.get_filename();
    // sqlx names `sqlite::memory:` databases `file:sqlx-in-memory-<n>`.
    let memory_name =
        name.as_os_str().to_string_lossy().starts_with("file:sqlx-in-memory-") || name == Path::new(":memory:");
    let memory_mode = url.split_once('?').is_some_and(|(_, query)| query.split('&').any(|p| p == "mode=memory"));
    (!memory_name && !memory_mode).then_some(name)
}

/// Runs the ops of one call. The write rules check everything before their
/// first write, so a refused op has written nothing and needs no savepoint;
/// a database error fails the whole job, which the writer rolls back.
async fn run_ops(
    conn: &mut sqlx::SqliteConnection,
    mut ops: Vec<PreparedOp>,
) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
    let mut tx = crate::write::buffer::BufferedTx::new(conn);
    tx.prefetch_links(&mut ops).await?;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        results.push(write::apply(&mut tx, op, sharehub_model::view::write_time()).await?);
    }
    tx.flush().await?;
    Ok(results)
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_org(&self, name: &str) -> Result<Org, StoreError> {
        self.create_org_impl(name).await
    }
    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.list_orgs_impl().await
    }
    async fn create_app(&self, app: NewApp, webhook_secret: String) -> Result<(App, AppSecrets), StoreError> {
        self.create_app_impl(app, webhook_secret).await
    }
    async fn update_app(&self, app_id: &str, update: AppUpdate) -> Result<Option<App>, StoreError> {
        self.update_app_impl(app_id, update).await
    }
    async fn get_app(&self, app_id: &str) -> Result<Option<App>, StoreError> {
        self.get_app_impl(app_id).await
    }
    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        self.list_apps_impl().await
    }
    async fn rotate_api_key(&self, app_id: &str) -> Result<Option<String>, StoreError> {
        let key = sharehub_model::ids::new_api_key();
        let found = self.set_app_secret(app_id, "api_key", key.clone()).await?;
        Ok(found.then_some(key))
    }
    async fn set_webhook_secret(&self, app_id: &str, webhook_secret: String) -> Result<bool, StoreError> {
        self.set_app_secret(app_id, "webhook_secret", webhook_secret).await
    }
    async fn install(&self, app_id: &str, org_id: &str, realm: Option<&str>) -> Result<Group, StoreError> {
        self.install_impl(app_id, org_id, realm).await
    }
    async fn get_group(&self, group_id: &str) -> Result<Option<Group>, StoreError> {
        self.get_group_impl(group_id).await
    }
    async fn groups_of_app(&self, app_id: &str) -> Result<Vec<Group>, StoreError> {
        self.groups_of_app_impl(app_id).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
        let ops = write::prepare_all(ops);
        self.writer.exec_changes(move |conn| Box::pin(run_ops(conn, ops))).await
    }
    async fn get_record(&self, org_id: &str, entity: &str, id: Uuid) -> Result<Option<StoredRecord>, StoreError> {
        self.get_record_impl(org_id, entity, id).await
    }
    async fn get_records(&self, org_id: &str, ids: &[Uuid]) -> Result<Vec<StoredRecord>, StoreError> {
        self.get_records_impl(org_id, ids).await
    }
    async fn find_by_external_id(
        &self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        self.find_by_external_id_impl(org_id, entity, app_id, realm, external_id).await
    }
    async fn find_singleton(&self, org_id: &str, entity: &str) -> Result<Option<StoredRecord>, StoreError> {
        self.find_singleton_impl(org_id, entity).await
    }
    async fn list_records(&self, query: &ListQuery) -> Result<(Vec<StoredRecord>, u64), StoreError> {
        self.list_records_impl(query).await
    }
    async fn links(&self, org_id: &str, ids: &[Uuid]) -> Result<LinkMap, StoreError> {
        self.links_impl(org_id, ids).await
    }
    async fn changes(&self, org_id: &str, after: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        self.changes_impl(org_id, after, limit).await
    }
    async fn last_seq(&self, org_id: &str) -> Result<i64, StoreError> {
        self.last_seq_impl(org_id).await
    }

    async fn saved_response(&self, app_id: &str, key: &str) -> Result<Option<SavedResponse>, StoreError> {
        self.saved_response_impl(app_id, key).await
    }
    async fn save_response(&self, app_id: &str, key: &str, response: &SavedResponse) -> Result<(), StoreError> {
        self.save_response_impl(app_id, key, response).await
    }
    async fn claim_key(
        &self,
        app_id: &str,
        key: &str,
        stale_after: Duration,
        keep_for: Duration,
    ) -> Result<bool, StoreError> {
        self.claim_key_impl(app_id, key, stale_after, keep_for).await
    }
    async fn release_key(&self, app_id: &str, key: &str) -> Result<(), StoreError> {
        self.release_key_impl(app_id, key).await
    }

    async fn cursors(&self, app_id: &str) -> Result<HashMap<String, i64>, StoreError> {
        self.cursors_impl(app_id).await
    }
    async fn advance_cursors(&self, app_id: &str, moves: &[CursorMove]) -> Result<(), StoreError> {
        self.advance_cursors_impl(app_id, moves).await
    }
    async fn pending_batch(&self, app_id: &str) -> Result<Option<PendingBatch>, StoreError> {
        self.pending_batch_impl(app_id).await
    }
    async fn save_pending_batch(&self, batch: &PendingBatch) -> Result<(), StoreError> {
        self.save_pending_batch_impl(batch).await
    }
    async fn record_attempt(
        &self,
        batch: &PendingBatch,
        attempt: &DeliveryAttempt,
        delivered: bool,
    ) -> Result<(), StoreError> {
        self.record_attempt_impl(batch, attempt, delivered).await
    }
    async fn bury_batch(&self, batch: &PendingBatch) -> Result<(), StoreError> {
        self.bury_batch_impl(batch).await
    }
    async fn delivery_log(&self, app_id: &str, limit: u32) -> Result<Vec<DeliveryAttempt>, StoreError> {
        self.delivery_log_impl(app_id, limit).await
    }
    async fn dead_letters(&self, app_id: &str) -> Result<Vec<DeadLetter>, StoreError> {
        self.dead_letters_impl(app_id).await
    }
    async fn dead_letter(&self, app_id: &str, webhook_id: &str) -> Result<Option<DeadLetter>, StoreError> {
        self.dead_letter_impl(app_id, webhook_id).await
    }
    async fn request_resend(&self, app_id: &str, webhook_id: &str) -> Result<bool, StoreError> {
        self.request_resend_impl(app_id, webhook_id).await
    }
    async fn take_resend_request(&self, app_id: &str) -> Result<Option<DeadLetter>, StoreError> {
        self.take_resend_request_impl(app_id).await
    }
    async fn set_endpoint_disabled(&self, app_id: &str, reason: Option<&str>) -> Result<(), StoreError> {
        self.set_endpoint_disabled_impl(app_id, reason).await?;
        self.platform_changed();
        Ok(())
    }

    async fn claim_app(&self, app_id: &str, holder: &str, lease: Duration) -> Result<bool, StoreError> {
        self.claim_app_impl(app_id, holder, lease)
    }
    async fn release_app(&self, app_id: &str, holder: &str) -> Result<(), StoreError> {
        self.release_app_impl(app_id, holder);
        Ok(())
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }
    fn platform_changes(&self) -> watch::Receiver<u64> {
        self.platform.subscribe()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.reader.acquire().await.context("reaching the database")?;
        conn.ping().await.context("reaching the database")
    }
    async fn close(&self) {
        // Readers first, the writer last: it finishes the jobs queued, and
        // whichever connection closes last folds the log into the database
        // file and deletes it (if another process still has the file open,
        // its last connection does).
        self.reader.close().await;
        // sqlx's close can return while a connection whose return to the pool
        // began before it (a query just answered) lands in the idle queue
        // afterwards, never closed: a reader closing after the writer, or
        // not at all before the process exits, leaves the log behind. Once
        // the first close returns nothing is in flight, so a second one finds
        // any such connection idle and closes it.
        self.reader.close().await;
        self.checkpoints.stop().await;
        self.writer.close().await;
        // Another process sharing the file may deliver from now on.
        self.delivery_lock.release();
    }
}
