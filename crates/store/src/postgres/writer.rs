//! Group commit on PostgreSQL: one task per hub process runs every write.
//!
//! The writes of one organization must commit one after another (its row in
//! `orgs` is locked from a transaction's first statement to its commit, see
//! the [module docs](super)), and a commit waits for a disk sync. Were each
//! request its own transaction, an organization could not take more writes
//! per second than the disk takes syncs. So, as on SQLite, the writer takes
//! every job waiting in its queue, runs them in one transaction through one
//! write-behind buffer, and commits once.
//!
//! The write rules check everything before their first write, so a refused
//! op needs no savepoint. A database error fails the group's transaction;
//! each of its jobs is then run again alone, so one job's error never fails
//! another's write.

use sqlx::postgres::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot, watch};

use super::notify;
use super::tx::PgWriteConn;
use crate::error::Context;
use crate::write::buffer::BufferedTx;
use crate::write::{self, PreparedOp, WriteOp};
use crate::{StoreError, WriteError, WriteOutcome};

/// Most ops written in one transaction; bounds the latency a group adds.
const GROUP_OPS: usize = 2000;

type JobResult = Result<Vec<Result<WriteOutcome, WriteError>>, StoreError>;

struct Job {
    ops: Vec<PreparedOp>,
    reply: oneshot::Sender<JobResult>,
}

/// A handle to the writer task.
#[derive(Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task; `commits` is bumped after each commit that
    /// changed something.
    pub(crate) fn start(pool: PgPool, commits: watch::Sender<u64>) -> Self {
        let (queue, jobs) = mpsc::channel(4096);
        tokio::spawn(run(pool, jobs, commits));
        Self { queue }
    }

    /// Runs the ops in a write transaction; answers once it is committed.
    pub(crate) async fn write(&self, ops: Vec<WriteOp>) -> JobResult {
        let ops = write::prepare_all(ops);
        let (reply, answer) = oneshot::channel();
        if self.queue.send(Job { ops, reply }).await.is_err() {
            return Err(StoreError::Unavailable("the writer has stopped".into()));
        }
        answer.await.unwrap_or_else(|_| Err(StoreError::Unavailable("the writer has stopped".into())))
    }
}

async fn run(pool: PgPool, mut jobs: mpsc::Receiver<Job>, commits: watch::Sender<u64>) {
    while let Some(first) = jobs.recv().await {
        let mut size = first.ops.len();
        let mut group = vec![first];
        while size < GROUP_OPS {
            match jobs.try_recv() {
                Ok(job) => {
                    size += job.ops.len();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        run_group(&pool, group, &commits).await;
    }
}

/// Writes a group in one transaction, or, when that fails, each job alone.
async fn run_group(pool: &PgPool, group: Vec<Job>, commits: &watch::Sender<u64>) {
    if group.len() == 1 {
        let job = group.into_iter().next().expect("one job");
        let result = write_group(pool, vec![job.ops], commits).await.map(|mut all| all.remove(0));
        let _ = job.reply.send(result);
        return;
    }

    // Kept for the retry: cheap next to the writes, as grouped jobs are small.
    let ops: Vec<Vec<PreparedOp>> = group.iter().map(|job| job.ops.clone()).collect();
    match write_group(pool, ops, commits).await {
        Ok(results) => {
            for (job, result) in group.into_iter().zip(results) {
                let _ = job.reply.send(Ok(result));
            }
        }
        Err(error) => {
            tracing::warn!(%error, jobs = group.len(), "a grouped write failed; running its jobs one by one");
            for job in group {
                let result = write_group(pool, vec![job.ops], commits).await.map(|mut all| all.remove(0));
                let _ = job.reply.send(result);
            }
        }
    }
}

/// Runs jobs in one transaction: their organizations locked first (in id
/// order, so two processes never deadlock), then every op through one buffer.
async fn write_group(
    pool: &PgPool,
    jobs: Vec<Vec<PreparedOp>>,
    commits: &watch::Sender<u64>,
) -> Result<Vec<Vec<Result<WriteOutcome, WriteError>>>, StoreError> {
    let orgs = org_ids(&jobs);
    let mut tx = pool.begin().await.context("beginning a write")?;
    lock_orgs(&mut tx, &orgs).await?;

    let results = run_jobs(&mut tx, jobs).await?;

    let changed =
        results.iter().flatten().any(|r| matches!(r, Ok(WriteOutcome::Created(_) | WriteOutcome::Updated(_))));
    if changed {
        notify::send(&mut tx, &orgs).await?;
    }
    tx.commit().await.context("committing writes")?;
    if changed {
        commits.send_modify(|n| *n = n.wrapping_add(1));
    }
    Ok(results)
}

async fn run_jobs(
    conn: &mut PgConnection,
    jobs: Vec<Vec<PreparedOp>>,
) -> Result<Vec<Vec<Result<WriteOutcome, WriteError>>>, StoreError> {
    let mut conn = PgWriteConn::new(conn);
    let mut buffer = BufferedTx::new(&mut conn);
    let mut results = Vec::with_capacity(jobs.len());
    for mut ops in jobs {
        buffer.prefetch_links(&mut ops).await?;
        let mut job_results = Vec::with_capacity(ops.len());
        for op in ops {
            job_results.push(write::apply(&mut buffer, op, sharehub_model::view::write_time()).await?);
        }
        results.push(job_results);
    }
    buffer.flush().await?;
    Ok(results)
}

/// The organizations written by the jobs, sorted, once each.
fn org_ids(jobs: &[Vec<PreparedOp>]) -> Vec<String> {
    let mut orgs: Vec<String> = jobs.iter().flatten().map(|op| op.org_id().to_string()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    orgs
}

/// Locks the organizations' counter rows until commit.
async fn lock_orgs(conn: &mut PgConnection, orgs: &[String]) -> Result<(), StoreError> {
    sqlx::query("SELECT id FROM orgs WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(orgs)
        .fetch_all(conn)
        .await
        .context("locking organizations")?;
    Ok(())
}

/// Runs one op on `conn` as the writer would, inside a transaction the caller
/// began and whose organization it locked: for tests that hold a write open.
#[cfg(feature = "test-support")]
pub async fn apply_on(conn: &mut PgConnection, op: WriteOp) -> Result<Result<WriteOutcome, WriteError>, StoreError> {
    let mut results = run_jobs(conn, vec![vec![write::prepare(op)]]).await?;
    Ok(results.remove(0).remove(0))
}
