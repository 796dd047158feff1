//! The one connection that writes, and group commit.
//!
//! SQLite lets one transaction write at a time. Rather than have many pooled
//! connections fight for that lock (and sleep in busy handlers), every write
//! goes to one task that owns the write connection. It takes all the jobs
//! waiting in its queue, runs each inside its own savepoint of one shared
//! transaction, and commits once: one disk sync acknowledges many writes.
//! A job that fails rolls back to its savepoint and fails alone; a commit that
//! fails fails every job of the group, so nothing is acknowledged unless it
//! is on disk. (Except a group of volatile jobs only, [`Writer::exec_volatile`]:
//! marks worth nothing after a crash, committed without waiting for the disk.)

use async_trait::async_trait;
use futures_core_shim::BoxFuture;
use sqlx::SqliteConnection;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::Context;
use crate::StoreError;

/// Most jobs committed together; bounds the latency a big group adds.
const GROUP_LIMIT: usize = 512;

pub(crate) mod futures_core_shim {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

/// The answer of a job, sent once the group's commit is known.
trait Finish: Send {
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

#[async_trait]
trait Job: Send {
    async fn run(self: Box<Self>, conn: &mut SqliteConnection) -> Box<dyn Finish>;
    fn fail(self: Box<Self>, error: String);
    /// Whether the job may log changes, so its commit must wake delivery.
    fn wakes(&self) -> bool;
    /// Whether its commit must be on disk before it is answered.
    fn durable(&self) -> bool;
}

struct TypedJob<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    wakes: bool,
    durable: bool,
}

struct TypedFinish<T> {
    result: Result<T, StoreError>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send + 'static> Finish for TypedFinish<T> {
    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let answer = match commit {
            Ok(()) => self.result,
            Err(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
        };
        let _ = self.reply.send(answer);
    }
}

#[async_trait]
impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
{
    async fn run(self: Box<Self>, conn: &mut SqliteConnection) -> Box<dyn Finish> {
        let result = run_in_savepoint(conn, self.work).await;
        Box::new(TypedFinish { result, reply: self.reply })
    }

    fn fail(self: Box<Self>, error: String) {
        let _ = self.reply.send(Err(StoreError::Unavailable(error)));
    }

    fn wakes(&self) -> bool {
        self.wakes
    }

    fn durable(&self) -> bool {
        self.durable
    }
}

async fn run_in_savepoint<T, F>(conn: &mut SqliteConnection, work: F) -> Result<T, StoreError>
where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>,
{
    sqlx::query("SAVEPOINT job").execute(&mut *conn).await.context("opening a savepoint")?;
    let result = work(&mut *conn).await;
    if result.is_err() {
        sqlx::query("ROLLBACK TO job").execute(&mut *conn).await.context("rolling back a savepoint")?;
    }
    sqlx::query("RELEASE job").execute(&mut *conn).await.context("releasing a savepoint")?;
    result
}

/// What the writer task is sent: a job, or the order to close.
enum Message {
    Job(Box<dyn Job>),
    /// Stop after the jobs queued before it; answered once the connection is closed.
    Close(oneshot::Sender<()>),
}

/// A handle to the writer task.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Message>,
}

impl Writer {
    /// Starts the writer task on `conn`; `commits` is bumped after each
    /// commit of a record write.
    pub(crate) fn start(conn: SqliteConnection, commits: watch::Sender<u64>) -> Self {
        let (queue, jobs) = mpsc::channel(4096);
        tokio::spawn(run(conn, jobs, commits));
        Self { queue }
    }

    /// Runs `work` in the write transaction and answers after it is
    /// committed. For writes that log no change (platform, delivery
    /// bookkeeping): they do not wake the delivery workers, whose own
    /// bookkeeping would otherwise wake them again, forever.
    pub(crate) async fn exec<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.submit(work, false, true).await
    }

    /// [`Writer::exec`] for state that is worthless after a crash (the mark
    /// of a request being answered): other connections, other processes
    /// included, see it once it commits, but a group made of such jobs only
    /// commits without syncing (`synchronous = OFF`), so a lone one does not
    /// wait for the disk. A power loss may forget it; a later durable commit
    /// syncs it with its own.
    pub(crate) async fn exec_volatile<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.submit(work, false, false).await
    }

    /// [`Writer::exec`] for record writes: their commit bumps `commits`,
    /// which wakes the delivery workers.
    pub(crate) async fn exec_changes<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.submit(work, true, true).await
    }

    async fn submit<T, F>(&self, work: F, wakes: bool, durable: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob { work, reply, wakes, durable });
        if self.queue.send(Message::Job(job)).await.is_err() {
            return Err(StoreError::Unavailable("the writer has stopped".into()));
        }
        answer.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the writer has stopped".into())))
    }

    /// Runs the jobs queued so far, then closes the connection: the last
    /// connection to close folds the write-ahead log into the database file
    /// and deletes it. Later calls answer that the writer has stopped.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

async fn run(mut conn: SqliteConnection, mut queue: mpsc::Receiver<Message>, commits: watch::Sender<u64>) {
    // Who asked to close, answered once the connection is closed.
    let mut closes: Vec<oneshot::Sender<()>> = Vec::new();
    // Whether commits sync (`synchronous = FULL`, as the store opened it).
    let mut syncing = true;
    while let Some(message) = queue.recv().await {
        let first = match message {
            Message::Job(job) => job,
            Message::Close(done) => {
                closes.push(done);
                break;
            }
        };
        let mut group = vec![first];
        while group.len() < GROUP_LIMIT {
            match queue.try_recv() {
                Ok(Message::Job(job)) => group.push(job),
                Ok(Message::Close(done)) => {
                    closes.push(done);
                    break;
                }
                Err(_) => break,
            }
        }
        let wakes = group.iter().any(|job| job.wakes());
        let durable = group.iter().any(|job| job.durable());
        match set_syncing(&mut conn, &mut syncing, durable).await {
            Ok(()) => run_group(&mut conn, group).await,
            // Nothing of the group ran: a durable job never commits unsynced.
            Err(e) => group.into_iter().for_each(|job| job.fail(format!("could not set how commits sync: {e}"))),
        }
        if wakes {
            commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        if !closes.is_empty() {
            break;
        }
    }

    // Jobs sent after the close are refused, not left waiting.
    queue.close();
    while let Ok(message) = queue.try_recv() {
        match message {
            Message::Job(job) => job.fail("the store is closed".into()),
            Message::Close(done) => closes.push(done),
        }
    }
    // Closing may fold the log into the database file, which must be synced.
    if let Err(e) = set_syncing(&mut conn, &mut syncing, true).await {
        tracing::warn!(error = %e, "could not make the last checkpoint sync");
    }
    if let Err(e) = sqlx::Connection::close(conn).await {
        tracing::warn!(error = %e, "closing the write connection");
    }
    for done in closes {
        let _ = done.send(());
    }
}

/// Makes commits sync (`synchronous = FULL`) or not (`OFF`), if they do not yet.
async fn set_syncing(conn: &mut SqliteConnection, syncing: &mut bool, sync: bool) -> Result<(), sqlx::Error> {
    if *syncing != sync {
        let pragma = if sync { "PRAGMA synchronous = FULL" } else { "PRAGMA synchronous = OFF" };
        if let Err(e) = sqlx::query(pragma).execute(&mut *conn).await {
            tracing::error!(error = %e, pragma, "could not set how commits sync");
            return Err(e);
        }
        *syncing = sync;
    }
    Ok(())
}

async fn run_group(conn: &mut SqliteConnection, group: Vec<Box<dyn Job>>) {
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        tracing::error!(error = %e, "could not begin a write transaction");
        group.into_iter().for_each(|job| job.fail(format!("could not begin a transaction: {e}")));
        return;
    }

    let mut finishers = Vec::with_capacity(group.len());
    for job in group {
        finishers.push(job.run(&mut *conn).await);
    }

    let commit = match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "commit failed; the group's writes are refused");
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e.to_string())
        }
    };
    for finisher in finishers {
        finisher.finish(commit.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Context;
    use crate::sqlite::SqliteStore;
    use crate::Store;

    fn read_synchronous(conn: &mut SqliteConnection) -> BoxFuture<'_, Result<i64, StoreError>> {
        Box::pin(async move {
            let mode = sqlx::query_scalar("PRAGMA synchronous").fetch_one(conn).await;
            mode.context("reading how commits sync")
        })
    }

    /// How the commit of a job of this kind syncs: 2 FULL, 0 OFF.
    async fn synchronous(store: &SqliteStore, durable: bool) -> i64 {
        match durable {
            true => store.writer.exec(read_synchronous).await.unwrap(),
            false => store.writer.exec_volatile(read_synchronous).await.unwrap(),
        }
    }

    /// A volatile job commits unsynced, and every durable one after it synced.
    #[tokio::test]
    async fn only_volatile_groups_commit_without_syncing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("w.db").display())).await.unwrap();
        const OFF: i64 = 0;
        const FULL: i64 = 2;
        assert_eq!(synchronous(&store, true).await, FULL);
        assert_eq!(synchronous(&store, false).await, OFF);
        assert_eq!(synchronous(&store, false).await, OFF);
        assert_eq!(synchronous(&store, true).await, FULL);
        assert_eq!(synchronous(&store, false).await, OFF);
        // A group with a durable job in it syncs, whatever else it holds.
        let (a, b) = tokio::join!(synchronous(&store, false), synchronous(&store, true));
        assert!(b == FULL && (a == FULL || a == OFF), "{a} {b}");
        store.close().await;
    }
}
