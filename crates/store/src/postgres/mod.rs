//! The store on PostgreSQL, shared by several hub processes.
//!
//! What SQLite got from its single writer is explicit here:
//!
//! * **Seq order and concurrent creates.** Each write transaction locks the
//!   rows of the organizations its ops write to (`SELECT … FOR UPDATE`, in id
//!   order so two calls never deadlock) before running any op, and keeps
//!   them locked until it commits. So the writes of one organization commit
//!   one after another, whichever process runs them: the seq taken from
//!   `orgs.last_seq` follows commit order, and the find-then-insert of
//!   [`write`](crate::write) (external ids, matching fields) cannot race.
//!   Different organizations write in parallel.
//! * **Row-level security.** Every transaction that touches tenant tables
//!   first names its organization (`set_config('sharehub.org_id', …, true)`),
//!   and the policies of `0001_init.sql` hide every other organization's
//!   rows. The hub must connect as a role that is neither superuser nor
//!   `BYPASSRLS` (the tables' owner is fine: the tables `FORCE` RLS).
//! * **One deliverer per app.** Every process runs delivery tasks, but only
//!   the holder of an app's lease (`delivery_leases`, [`lease`]) sends its
//!   batches; a dead process's leases expire and another process takes over.
//! * **Waking delivery workers.** A write that changed something sends
//!   `NOTIFY sharehub_commits` in its transaction; every process listens and
//!   bumps its [`Store::commits`] channel ([`notify`]).
//!
//! Writes go through one [`writer`] task per process, which commits the
//! writes waiting for it together (group commit), as on SQLite.

mod delivery;
mod lease;
mod notify;
mod platform;
mod records;
mod rows;
mod tx;
mod writer;

#[cfg(feature = "test-support")]
pub use writer::apply_on;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sharehub_model::view::LinkMap;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Transaction};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::Context;
use crate::write::WriteOp;
use crate::*;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store.
pub struct PgStore {
    pool: PgPool,
    writer: writer::Writer,
    commits: watch::Receiver<u64>,
    /// Bumped after this process commits a write to apps, their entities or
    /// groups ([`Store::platform_changes`]); other processes' changes are
    /// seen on the delivery poll.
    platform: watch::Sender<u64>,
}

impl PgStore {
    /// Connects to the database at `url`, applies the migrations it lacks,
    /// and starts listening for other processes' commits.
    ///
    /// When every migration is already applied, none is run, so the hub may
    /// connect as a role with only `SELECT, INSERT, UPDATE, DELETE` on the
    /// tables while another role ran [`PgStore::migrate`].
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = connect(url).await?;
        if migrations_pending(&pool).await? {
            MIGRATOR.run(&pool).await.map_err(|e| StoreError::Invalid(format!("migrating the database: {e}")))?;
        }

        let (commits_tx, commits) = watch::channel(0);
        notify::listen(pool.clone(), commits_tx.clone());
        let writer = writer::Writer::start(pool.clone(), commits_tx);
        Ok(Self { pool, writer, commits, platform: watch::Sender::new(0) })
    }

    /// Applies migrations and closes: `sharehub migrate`, run as the role
    /// that owns the tables.
    pub async fn migrate(url: &str) -> Result<(), StoreError> {
        let pool = connect(url).await?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Invalid(format!("migrating the database: {e}")))?;
        pool.close().await;
        Ok(())
    }

    /// Passes `result` through, bumping [`Store::platform_changes`] when the
    /// platform write it reports committed.
    fn platform_changed<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_ok() {
            self.platform.send_modify(|n| *n = n.wrapping_add(1));
        }
        result
    }

    /// Begins a transaction that sees the tenant rows of `org_id` only.
    async fn begin_org(&self, org_id: &str) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        set_scope(&mut tx, "sharehub.org_id", org_id).await?;
        Ok(tx)
    }

    /// Begins a transaction that sees the delivery cursors of `app_id`.
    async fn begin_app(&self, app_id: &str) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await.context("beginning a transaction")?;
        set_scope(&mut tx, "sharehub.app_id", app_id).await?;
        Ok(tx)
    }
}

async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?
        .application_name("sharehub");
    PgPoolOptions::new()
        .max_connections(16)
        // A database that is down should answer 503 in seconds, not hold each
        // request for the whole request timeout while sqlx retries.
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await
        .context("connecting to PostgreSQL")
}

/// Whether some migration of this build is not applied yet. Checked before
/// running them because running needs rights the hub's role may lack.
async fn migrations_pending(pool: &PgPool) -> Result<bool, StoreError> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .context("checking migrations")?;
    if table.is_none() {
        return Ok(true);
    }
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(pool)
        .await
        .context("checking migrations")?;
    Ok(MIGRATOR.iter().any(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version)))
}

/// Names the organization (or app) the row-level policies let this
/// transaction see; undone when the transaction ends.
async fn set_scope(conn: &mut PgConnection, key: &'static str, value: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config($1, $2, true)")
        .bind(key)
        .bind(value)
        .execute(conn)
        .await
        .context("scoping a transaction")?;
    Ok(())
}

/// Ends a transaction that only read.
async fn finish(tx: Transaction<'static, Postgres>) -> Result<(), StoreError> {
    tx.commit().await.context("ending a read")
}

#[async_trait]
impl Store for PgStore {
    async fn create_org(&self, name: &str) -> Result<Org, StoreError> {
        self.create_org_impl(name).await
    }
    async fn list_orgs(&self) -> Result<Vec<Org>, StoreError> {
        self.list_orgs_impl().await
    }
    async fn create_app(&self, app: NewApp, webhook_secret: String) -> Result<(App, AppSecrets), StoreError> {
        self.platform_changed(self.create_app_impl(app, webhook_secret).await)
    }
    async fn update_app(&self, app_id: &str, update: AppUpdate) -> Result<Option<App>, StoreError> {
        self.platform_changed(self.update_app_impl(app_id, update).await)
    }
    async fn get_app(&self, app_id: &str) -> Result<Option<App>, StoreError> {
        self.get_app_impl(app_id).await
    }
    async fn list_apps(&self) -> Result<Vec<App>, StoreError> {
        self.list_apps_impl().await
    }
    async fn rotate_api_key(&self, app_id: &str) -> Result<Option<String>, StoreError> {
        let key = sharehub_model::ids::new_api_key();
        let found = self.platform_changed(self.set_app_secret(app_id, "api_key", &key).await)?;
        Ok(found.then_some(key))
    }
    async fn set_webhook_secret(&self, app_id: &str, webhook_secret: String) -> Result<bool, StoreError> {
        self.platform_changed(self.set_app_secret(app_id, "webhook_secret", &webhook_secret).await)
    }
    async fn install(&self, app_id: &str, org_id: &str, realm: Option<&str>) -> Result<Group, StoreError> {
        self.platform_changed(self.install_impl(app_id, org_id, realm).await)
    }
    async fn get_group(&self, group_id: &str) -> Result<Option<Group>, StoreError> {
        self.get_group_impl(group_id).await
    }
    async fn groups_of_app(&self, app_id: &str) -> Result<Vec<Group>, StoreError> {
        self.groups_of_app_impl(app_id).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
        self.writer.write(ops).await
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
        self.platform_changed(self.set_endpoint_disabled_impl(app_id, reason).await)
    }

    async fn claim_app(&self, app_id: &str, holder: &str, lease: Duration) -> Result<bool, StoreError> {
        self.claim_app_impl(app_id, holder, lease).await
    }
    async fn release_app(&self, app_id: &str, holder: &str) -> Result<(), StoreError> {
        self.release_app_impl(app_id, holder).await
    }
    async fn announce_holder(&self, holder: &str, ttl: Duration) -> Result<(), StoreError> {
        self.announce_holder_impl(holder, ttl).await
    }
    async fn over_share(&self, holder: &str) -> Result<bool, StoreError> {
        self.over_share_impl(holder).await
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }
    fn platform_changes(&self) -> watch::Receiver<u64> {
        self.platform.subscribe()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.context("reaching the database")?;
        conn.ping().await.context("reaching the database")
    }
    async fn close(&self) {
        self.pool.close().await;
    }
}
