//! Which process sharing a SQLite file delivers webhooks.
//!
//! Several `serve` processes may open one SQLite file, but only one of them
//! may deliver: the delivery state (pending batch, cursors) is read and
//! written by the delivering task without the per-app leases PostgreSQL keeps
//! in its database. That process is the one holding an exclusive OS lock on
//! the sibling file `<database file>-delivery.lock`. A store tries to take
//! the lock when it is first asked for a delivery lease and, while another
//! process holds it, again on every later claim (one `flock` call each); once
//! taken, the lock is kept until the store closes or the process ends, and
//! the operating system drops it then even after a SIGKILL, so a waiting
//! process takes over within its next claim.
//!
//! The lock file is created when missing and never removed: removing it while
//! a hub holds it would let another process lock a new file of the same name.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::StoreError;

/// The delivery lock of one store.
pub(crate) struct DeliveryLock {
    /// The lock file; `None` for an in-memory database, which no other
    /// process can open.
    path: Option<PathBuf>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The lock file, opened at the first claim and kept open.
    file: Option<File>,
    held: bool,
    /// Logged that another process delivers.
    told_elsewhere: bool,
    /// The store closed: no lock, no delivery.
    closed: bool,
}

/// The lock file of the database file `database`. Every process must name
/// the same file however it named the database: a relative path, a link.
fn lock_path(database: &Path) -> PathBuf {
    let db = std::fs::canonicalize(database).unwrap_or_else(|_| database.to_path_buf());
    let mut name = db.into_os_string();
    name.push("-delivery.lock");
    PathBuf::from(name)
}

/// Whether a hub process delivers for the SQLite file `database` now, i.e.
/// has it open and in use (for tools about to replace the file).
pub fn in_use(database: &Path) -> std::io::Result<bool> {
    let path = lock_path(database);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        // Dropping the file gives the lock straight back.
        Ok(()) => Ok(false),
        Err(TryLockError::WouldBlock) => Ok(true),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

impl DeliveryLock {
    /// The lock of the database file `database` (`None`: in memory).
    pub(crate) fn new(database: Option<&Path>) -> Self {
        Self { path: database.map(lock_path), state: Mutex::default() }
    }

    /// The lock file, if the database is a file.
    #[cfg(test)]
    pub(crate) fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether this store holds the lock, taking it if it is free: true for
    /// an in-memory database, false once the store is closed.
    pub(crate) fn hold(&self) -> Result<bool, StoreError> {
        let Some(path) = &self.path else { return Ok(true) };
        // A poisoned lock only means another claim panicked; the state is intact.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closed {
            return Ok(false);
        }
        if state.held {
            return Ok(true);
        }
        if state.file.is_none() {
            let file =
                OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(|e| {
                    StoreError::Unavailable(format!("opening the delivery lock file {}: {e}", path.display()))
                })?;
            state.file = Some(file);
        }
        let file = state.file.as_ref().expect("opened above");
        match file.try_lock() {
            Ok(()) => {
                state.held = true;
                match state.told_elsewhere {
                    true => tracing::info!(
                        lock = %path.display(),
                        "took over webhook delivery for this database: the process that delivered has stopped"
                    ),
                    false => tracing::info!(lock = %path.display(), "this process delivers webhooks for this database"),
                }
                Ok(true)
            }
            Err(TryLockError::WouldBlock) => {
                if !state.told_elsewhere {
                    state.told_elsewhere = true;
                    tracing::info!(
                        lock = %path.display(),
                        "another process delivers webhooks for this database; this one serves the API only"
                    );
                }
                Ok(false)
            }
            Err(TryLockError::Error(e)) => {
                Err(StoreError::Unavailable(format!("locking the delivery lock file {}: {e}", path.display())))
            }
        }
    }

    /// Gives the lock up for good (closing the file releases it).
    pub(crate) fn release(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closed = true;
        state.held = false;
        state.file = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::sqlite::SqliteStore;
    use crate::Store;

    const LEASE: Duration = Duration::from_secs(60);

    fn url(path: &std::path::Path) -> String {
        format!("sqlite://{}", path.display())
    }

    #[tokio::test]
    async fn a_file_is_in_use_while_a_store_delivers_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.db");
        assert!(!super::in_use(&db).unwrap(), "no file, no hub");
        let store = SqliteStore::open(&url(&db)).await.unwrap();
        assert!(!super::in_use(&db).unwrap(), "open, but not delivering yet");
        assert!(store.claim_app("app-1", "first", LEASE).await.unwrap());
        assert!(super::in_use(&db).unwrap());
        // Asking takes nothing from the holder.
        assert!(store.claim_app("app-1", "first", LEASE).await.unwrap());
        store.close().await;
        assert!(!super::in_use(&db).unwrap());
    }

    #[tokio::test]
    async fn a_second_store_on_the_same_file_gets_no_lease_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.db");
        let first = SqliteStore::open(&url(&db)).await.unwrap();
        let second = SqliteStore::open(&url(&db)).await.unwrap();

        assert!(first.claim_app("app-1", "first", LEASE).await.unwrap());
        let lock = dir.path().join("hub.db-delivery.lock");
        assert_eq!(first.delivery_lock.path(), Some(std::fs::canonicalize(&lock).unwrap().as_path()));
        // Not this app, not any other: the whole file is delivered by one store.
        assert!(!second.claim_app("app-1", "second", LEASE).await.unwrap());
        assert!(!second.claim_app("app-2", "second", LEASE).await.unwrap());
        // The first keeps delivering, and its leases work as before.
        assert!(first.claim_app("app-1", "first", LEASE).await.unwrap());
        assert!(first.claim_app("app-2", "first", LEASE).await.unwrap());
        assert!(!first.claim_app("app-1", "another loop", LEASE).await.unwrap());

        first.close().await;
        assert!(
            second.claim_app("app-1", "second", LEASE).await.unwrap(),
            "the second takes over once the first closed"
        );
        assert!(second.claim_app("app-2", "second", LEASE).await.unwrap());
        assert!(!first.claim_app("app-1", "first", LEASE).await.unwrap(), "a closed store delivers nothing");
        second.close().await;
    }

    #[tokio::test]
    async fn dropping_the_delivering_store_frees_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.db");
        let first = SqliteStore::open(&url(&db)).await.unwrap();
        let second = SqliteStore::open(&url(&db)).await.unwrap();
        // The first to claim delivers, not the first to open.
        assert!(second.claim_app("app", "second", LEASE).await.unwrap());
        assert!(!first.claim_app("app", "first", LEASE).await.unwrap());
        drop(second);
        assert!(first.claim_app("app", "first", LEASE).await.unwrap());
        first.close().await;
    }

    #[tokio::test]
    async fn another_name_of_the_same_file_meets_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.db");
        let first = SqliteStore::open(&url(&db)).await.unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        let second = SqliteStore::open(&url(&link)).await.unwrap();
        assert!(first.claim_app("app", "first", LEASE).await.unwrap());
        assert!(!second.claim_app("app", "second", LEASE).await.unwrap());
        second.close().await;
        first.close().await;
    }

    #[tokio::test]
    async fn an_in_memory_database_needs_no_lock() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        assert_eq!(store.delivery_lock.path(), None);
        assert!(store.claim_app("app", "me", LEASE).await.unwrap());
        store.close().await;
    }
}
