//! The one connection that writes, and group commit.
//!
//! SQLite lets one transaction write at a time. Rather than have many pooled
//! connections fight for that lock (and sleep in busy handlers), every write
//! goes to one task that owns the write connection. It takes all the jobs
//! waiting in its queue, runs each inside its own savepoint of one shared
//! transaction, and commits once: one disk sync acknowledges many writes.
//! A job that fails rolls back to its savepoint and fails alone; a commit that
//! fails fails every job of the group, so nothing is acknowledged unless it
//! is on disk.

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
}

struct TypedJob<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    wakes: bool,
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
        self.submit(work, false).await
    }

    /// [`Writer::exec`] for record writes: their commit bumps `commits`,
    /// which wakes the delivery workers.
    pub(crate) async fn exec_changes<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        self.submit(work, true).await
    }

    async fn submit<T, F>(&self, work: F, wakes: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob { work, reply, wakes });
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
        run_group(&mut conn, group).await;
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
    if let Err(e) = sqlx::Connection::close(conn).await {
        tracing::warn!(error = %e, "closing the write connection");
    }
    for done in closes {
        let _ = done.send(());
    }
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
