//! Delivery leases from a worker's side: claiming an app before each step,
//! renewing the claim while the step runs, giving an app up when this process
//! holds more than its share, and naming this process.

use sharehub_store::StoreError;

use super::{Deliverer, Step};

impl Deliverer {
    /// Releases the idle app's lease when this process holds more than its
    /// share (another process started since it took them); true if it did.
    pub(super) async fn give_up_if_over_share(&self, app_id: &str) -> bool {
        match self.store.over_share(&self.holder).await {
            Ok(true) => match self.store.release_app(app_id, &self.holder).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(app_id, error = %e, "could not hand an app over to another process");
                    false
                }
            },
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(app_id, error = %e, "could not count this process's delivery leases");
                false
            }
        }
    }

    /// One step under the app's lease; `None` when another process holds it.
    ///
    /// The step is dropped (a database transaction in progress rolls back,
    /// a POST in flight is abandoned) as soon as a renewal fails, which is
    /// before the lease can expire: the process that takes over then cannot
    /// see this one still sending.
    pub(super) async fn leased_step(&self, app_id: &str) -> Result<Option<Step>, StoreError> {
        if !self.store.claim_app(app_id, &self.holder, self.options.lease).await? {
            return Ok(None);
        }
        tokio::select! {
            step = self.step(app_id) => step.map(Some),
            lost = self.keep_lease(app_id) => lost.map(|()| None),
        }
    }

    /// Renews the lease every third of its length; returns when a renewal
    /// fails, takes longer than a third, or finds the lease taken.
    async fn keep_lease(&self, app_id: &str) -> Result<(), StoreError> {
        let every = self.options.lease / 3;
        loop {
            tokio::time::sleep(every).await;
            let renewal = self.store.claim_app(app_id, &self.holder, self.options.lease);
            match tokio::time::timeout(every, renewal).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    tracing::warn!(app_id, "another process took this app's delivery lease; stopping");
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(StoreError::Unavailable("renewing a delivery lease timed out".into())),
            }
        }
    }

    /// Logs when this process starts or stops delivering an app.
    pub(super) fn note_holding(&self, app_id: &str, holding: &mut bool, step: &Result<Option<Step>, StoreError>) {
        let now = match step {
            Ok(Some(_)) => true,
            Ok(None) => false,
            // A failed step says nothing about the lease.
            Err(_) => return,
        };
        if now != *holding {
            *holding = now;
            match now {
                true => tracing::info!(app_id, holder = self.holder, "delivering this app"),
                false => tracing::info!(app_id, "another process delivers this app"),
            }
        }
    }
}

/// A name for this process in delivery leases, unique among processes
/// sharing a database: `hostname-pid-uuid` (the uuid because pids repeat
/// across containers and restarts; host and pid say who held an app).
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_string());
    format!("{host}-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple())
}
