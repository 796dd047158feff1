//! WAL checkpoints off the write path.
//!
//! SQLite checkpoints on the committing connection by default: every 1,000
//! pages of WAL, one commit waits while the database file is written and
//! synced. With one writer that stalls every write queued behind it (the
//! webhook latency benchmark showed p99 spikes of this size). The writer runs
//! with automatic checkpoints off, and this task checkpoints from a
//! connection of its own in PASSIVE mode, which never blocks the writer.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::ConnectOptions;
use tokio::sync::watch;

/// How often the WAL is copied back into the database file.
const INTERVAL: Duration = Duration::from_millis(500);

/// The checkpointer task.
pub(crate) struct Checkpointer {
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Checkpointer {
    /// Connects and starts the checkpointer; it stops when told to
    /// ([`Checkpointer::stop`]) or when the store's writer stops (the
    /// `commits` sender is dropped). Connecting here, not in the task, means
    /// a store closed at once (a CLI command) never has this connection
    /// still opening while the others close.
    pub(crate) async fn start(options: SqliteConnectOptions, commits: watch::Receiver<u64>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = match options.connect().await {
            Ok(conn) => Some(tokio::spawn(run(conn, commits, stopped))),
            Err(e) => {
                tracing::warn!(error = %e, "no checkpoint connection; the WAL will grow until restart");
                None
            }
        };
        Self { stop, task: std::sync::Mutex::new(task) }
    }

    /// Stops the task and closes its connection.
    pub(crate) async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

async fn run(mut conn: SqliteConnection, commits: watch::Receiver<u64>, mut stopped: watch::Receiver<bool>) {
    while commits.has_changed().is_ok() && !*stopped.borrow() {
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stopped.changed() => break,
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::warn!(error = %e, "WAL checkpoint failed; trying again");
        }
    }
    let _ = sqlx::Connection::close(conn).await;
}
