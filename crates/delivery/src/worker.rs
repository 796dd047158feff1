//! The delivery workers: one task per app with a notification URL.
//!
//! Each app has a cursor per organization over the change log. Its task reads
//! the changes after its cursors, keeps those the app reads, subscribed to
//! and did not cause, renders the records in the app's view, and POSTs them
//! as one batch. The batch (its webhook-id and body) is saved before the first
//! try, so retries, even after a restart, send the same message; the cursors
//! move only after a 2xx. One app's failing endpoint backs off on its own
//! task and never slows another's.
//!
//! Several hub processes may share one database (PostgreSQL). Each runs a
//! task per app, but a task sends only while its process holds the app's
//! delivery lease ([`Store::claim_app`]): it claims before every step, renews
//! the lease while a step runs, and gives it up on shutdown. Another process
//! holding the app makes the task wait; a dead holder's lease expires and a
//! waiting task takes over, resending the saved batch (same webhook-id and
//! body), so delivery is at least once and per-record order holds. Several
//! processes on one SQLite file work the same way from here, except that
//! the store grants leases to one of the processes only (the holder of the
//! file's delivery lock), whose tasks thus deliver every app; the others'
//! claims fail until it stops or dies.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use sharehub_store::{App, DeliveryAttempt, PendingBatch, Store, StoreError};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::http::{self, Delivery, Outcome};
use crate::schedule::RetrySchedule;
use crate::signature::WebhookSecret;

mod batches;
mod lease;

pub use lease::holder_id;

/// How the workers behave.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub schedule: RetrySchedule,
    pub timeout: Duration,
    /// Most records in one POST.
    pub batch_records: usize,
    /// How often idle workers look for work they were not woken for.
    pub poll_interval: Duration,
    /// How long a claim on an app lasts unless renewed. A step renews it
    /// every third of this while it runs, so it must exceed the time one
    /// renewal may take; after a crash, other processes wait this long.
    pub lease: Duration,
}

/// Starts and supervises the per-app tasks.
pub struct Deliverer {
    store: Arc<dyn Store>,
    options: Arc<DeliveryOptions>,
    client: reqwest::Client,
    /// Batches built so far; rotates which organization is read first.
    rounds: AtomicUsize,
    /// This process's name in delivery leases ([`holder_id`]).
    holder: String,
    /// Records sent at a newer version than the change that put them in a
    /// batch ([`batches`]).
    ahead: batches::Ahead,
}

/// What one step of an app's task found.
enum Step {
    /// It did something; look again at once.
    Worked,
    /// Nothing to do until a write commits (or the poll interval passes).
    Idle,
    /// A retry is due later.
    Wait(Duration),
    /// The app is gone or has no URL any more.
    Stop,
}

impl Deliverer {
    /// Fails when the HTTP client cannot be built: falling back to a default
    /// client would follow redirects and wait forever on a silent receiver.
    pub fn new(store: Arc<dyn Store>, options: DeliveryOptions) -> reqwest::Result<Self> {
        let client = http::build_client(options.timeout)?;
        let holder = holder_id();
        tracing::info!(holder, "delivery workers will claim apps under this id");
        let rounds = AtomicUsize::new(0);
        Ok(Self { store, options: Arc::new(options), client, rounds, holder, ahead: batches::Ahead::default() })
    }

    /// This process's name in delivery leases.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Runs until `shutdown`: starts a task for every app with a URL.
    ///
    /// Looks again on every poll and whenever this process changes an app or
    /// group, so a freshly registered app gets its first webhook at once.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        // Subscribed before the first listing: a change made while listing
        // still wakes the next round.
        let mut platform = this.store.platform_changes();
        let mut tasks = JoinSet::new();
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        loop {
            // A task that ended (app gone, or a panic) frees its app, so the
            // next round starts it again if it still has a URL.
            while let Some(ended) = tasks.try_join_next_with_id() {
                let id = ended.map(|(id, _)| id).unwrap_or_else(|e| e.id());
                running.remove(&id);
            }
            // Every round, so this process counts in the apps' sharing.
            if let Err(e) = this.store.announce_holder(&this.holder, this.options.lease).await {
                tracing::warn!(error = %e, "could not announce this delivery process");
            }
            match this.store.list_apps().await {
                Ok(apps) => {
                    for app in apps.into_iter().filter(|a| a.notification_url.is_some()) {
                        if !running.values().any(|id| *id == app.id) {
                            let handle = tasks.spawn(this.clone().app_task(app.id.clone(), shutdown.clone()));
                            running.insert(handle.id(), app.id);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not list apps for delivery; trying again"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = changed(&mut platform) => {}
                _ = tokio::time::sleep(this.options.poll_interval) => {}
            }
        }
        while tasks.join_next().await.is_some() {}
        // The others may take this process's share of the apps at once.
        if let Err(e) = this.store.announce_holder(&this.holder, Duration::ZERO).await {
            tracing::warn!(error = %e, "could not retire this delivery process; it will expire");
        }
    }

    async fn app_task(self: Arc<Self>, app_id: String, shutdown: CancellationToken) -> String {
        let mut commits = self.store.commits();
        // An app change (endpoint re-enabled, new URL or entities) applies at
        // once, not after the poll or the next record write.
        let mut platform = self.store.platform_changes();
        let mut holding = false;
        loop {
            let mut step = self.leased_step(&app_id).await;
            if matches!(step, Ok(Some(Step::Idle))) && self.give_up_if_over_share(&app_id).await {
                step = Ok(None);
            }
            self.note_holding(&app_id, &mut holding, &step);
            let wait = match step {
                // A busy app would otherwise keep a stopping process (and
                // its lease) until the app runs out of work.
                Ok(Some(Step::Worked)) if shutdown.is_cancelled() => break,
                Ok(Some(Step::Worked)) => continue,
                Ok(Some(Step::Stop)) => break,
                // Another process delivers this app. A commit wakes the task
                // too: releasing a lease announces itself as one.
                Ok(None) | Ok(Some(Step::Idle)) => None,
                // Looking again within the poll interval also renews the lease.
                Ok(Some(Step::Wait(d))) => Some(d.min(self.options.poll_interval)),
                Err(e) => {
                    tracing::warn!(app_id, error = %e, "delivery step failed; trying again shortly");
                    Some(self.options.poll_interval)
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = commits.changed(), if wait.is_none() => {}
                _ = changed(&mut platform) => {}
                _ = tokio::time::sleep(wait.unwrap_or(self.options.poll_interval)) => {}
            }
        }
        // Handing the app over now, not when the lease expires, lets another
        // process go on at once after a graceful shutdown.
        if let Err(e) = self.store.release_app(&app_id, &self.holder).await {
            tracing::warn!(app_id, error = %e, "could not release the delivery lease; it will expire");
        }
        app_id
    }

    async fn step(&self, app_id: &str) -> Result<Step, StoreError> {
        let Some(app) = self.store.get_app(app_id).await? else { return Ok(Step::Stop) };
        let Some(url) = app.notification_url.clone() else { return Ok(Step::Stop) };
        if app.endpoint_disabled.is_some() {
            return Ok(Step::Idle);
        }
        let batch = match self.store.pending_batch(app_id).await? {
            Some(batch) => batch,
            None => match self.resend_batch(&app).await? {
                Some(batch) => batch,
                None => match self.next_batch(&app).await? {
                    Some(batch) => batch,
                    None => return Ok(Step::Idle),
                },
            },
        };
        if batch.records.is_empty() {
            return Ok(Step::Worked);
        }
        let due = batch.next_attempt_at.duration_since(jiff::Timestamp::now());
        if due.is_positive() {
            return Ok(Step::Wait(due.unsigned_abs()));
        }
        self.attempt(&app, &url, batch).await
    }

    async fn attempt(&self, app: &App, url: &str, mut batch: PendingBatch) -> Result<Step, StoreError> {
        let secret = match WebhookSecret::parse(&app.webhook_secret) {
            Ok(secret) => secret,
            Err(e) => return Err(StoreError::Corrupt(format!("app {} has an unusable webhook secret: {e}", app.id))),
        };
        let sent = http::send(
            &self.client,
            Delivery {
                url,
                api_id: &app.id,
                api_key: &app.api_key,
                secret: &secret,
                msg_id: &batch.webhook_id,
                body: batch.body.clone().into(),
            },
        )
        .await;
        let number = batch.attempts + 1;
        let log = log_entry(&batch, number, &sent);

        match sent.outcome {
            Outcome::Delivered { status } => {
                self.store.record_attempt(&batch, &log, true).await?;
                tracing::debug!(
                    app_id = app.id,
                    webhook_id = batch.webhook_id,
                    status,
                    records = batch.records.len(),
                    "webhook delivered"
                );
                Ok(Step::Worked)
            }
            Outcome::Gone => {
                // The 410 was a try: the batch keeps its count, so the log
                // numbers the try after re-enabling as the next attempt.
                self.store.record_attempt(&batch, &log, false).await?;
                batch.attempts = number;
                batch.last_error = log.error.clone();
                self.store.save_pending_batch(&batch).await?;
                self.store.set_endpoint_disabled(&app.id, Some("the endpoint answered 410 Gone")).await?;
                tracing::warn!(
                    app_id = app.id,
                    url,
                    "endpoint answered 410 Gone; deliveries to it are stopped until re-enabled"
                );
                Ok(Step::Idle)
            }
            Outcome::Failed { status, retry_after, error } => {
                self.store.record_attempt(&batch, &log, false).await?;
                batch.attempts = number;
                batch.last_error = Some(error.clone());
                let delay = self.options.schedule.next_delay(number, retry_after, &mut rand::thread_rng());
                let Some(delay) = delay else {
                    self.store.bury_batch(&batch).await?;
                    self.ahead.forget(&app.id, &batch.records);
                    tracing::warn!(
                        app_id = app.id,
                        webhook_id = batch.webhook_id,
                        error,
                        "delivery failed for the last time; kept as a dead letter"
                    );
                    return Ok(Step::Worked);
                };
                batch.next_attempt_at =
                    jiff::Timestamp::now() + jiff::SignedDuration::try_from(delay).unwrap_or_default();
                self.store.save_pending_batch(&batch).await?;
                tracing::info!(
                    app_id = app.id,
                    webhook_id = batch.webhook_id,
                    ?status,
                    error,
                    retry = number,
                    in_secs = delay.as_secs(),
                    "delivery failed; will retry"
                );
                Ok(Step::Wait(delay))
            }
        }
    }
}

/// Waits for the next change of `rx`. A closed channel never changes again,
/// so this then waits forever instead of waking its loop at once, over and over.
async fn changed(rx: &mut tokio::sync::watch::Receiver<u64>) {
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn log_entry(batch: &PendingBatch, number: u32, sent: &http::Attempt) -> DeliveryAttempt {
    let (status, outcome, error) = match &sent.outcome {
        Outcome::Delivered { status } => (Some(*status), "delivered", None),
        Outcome::Gone => (Some(410), "gone", Some("410 Gone".to_string())),
        Outcome::Failed { status, error, .. } => (*status, "failed", Some(error.clone())),
    };
    DeliveryAttempt {
        webhook_id: batch.webhook_id.clone(),
        attempt: number,
        at: jiff::Timestamp::now(),
        status,
        outcome: outcome.to_string(),
        error,
        duration_ms: sent.elapsed.as_millis() as u64,
        record_count: batch.records.len() as u32,
    }
}

/// Groups of an app by organization, for rendering `group_id`.
pub(crate) async fn groups_by_org(store: &dyn Store, app_id: &str) -> Result<HashMap<String, String>, StoreError> {
    Ok(store.groups_of_app(app_id).await?.into_iter().map(|g| (g.org_id, g.id)).collect())
}
