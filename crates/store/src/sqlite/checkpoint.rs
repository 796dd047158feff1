//! WAL checkpoints off the write path.
//!
//! SQLite checkpoints on the committing connection by default: every 1,000
//! pages of WAL, one commit waits while the database file is written and
//! synced. With one writer that stalls every write queued behind it (the
//! webhook latency benchmark showed p99 spikes of this size). The writer runs
//! with automatic checkpoints off, and this task checkpoints from a
//! connection of its own in PASSIVE mode, which never blocks the writer.

use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;
use tokio::sync::watch;

/// How often the WAL is copied back into the database file.
const INTERVAL: Duration = Duration::from_millis(500);

/// Starts the checkpointer; it stops when the store's writer stops (the
/// `commits` sender is dropped).
pub(crate) fn start(options: SqliteConnectOptions, commits: watch::Receiver<u64>) {
    tokio::spawn(async move {
        let mut conn = match options.connect().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "no checkpoint connection; the WAL will grow until restart");
                return;
            }
        };
        while commits.has_changed().is_ok() {
            tokio::time::sleep(INTERVAL).await;
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
                tracing::warn!(error = %e, "WAL checkpoint failed; trying again");
            }
        }
    });
}
