//! [`Store::write`](crate::Store::write) on PostgreSQL: the organizations'
//! rows locked first, then every op in its own savepoint of one transaction.

use sqlx::postgres::PgConnection;

use super::{notify, set_scope, PgStore};
use crate::error::Context;
use crate::write::{self, WriteOp};
use crate::{StoreError, WriteError, WriteOutcome};

impl PgStore {
    /// Runs the ops in one transaction. The organizations' rows stay locked
    /// from its first statement to its commit: commits of one organization
    /// follow each other, so its seqs follow commit order, and no other
    /// transaction can create the record an op is looking for meanwhile.
    pub(super) async fn write_impl(
        &self,
        ops: Vec<WriteOp>,
    ) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
        let orgs = org_ids(&ops);
        let mut tx = self.pool.begin().await.context("beginning a write")?;
        lock_orgs(&mut tx, &orgs).await?;

        let results = run_ops(&mut tx, ops).await?;

        let changed = results.iter().any(|r| matches!(r, Ok(WriteOutcome::Created(_) | WriteOutcome::Updated(_))));
        if changed {
            notify::send(&mut tx, &orgs).await?;
        }
        tx.commit().await.context("committing writes")?;
        if changed {
            self.commits_tx.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(results)
    }
}

/// The organizations written by `ops`, sorted, once each.
fn org_ids(ops: &[WriteOp]) -> Vec<String> {
    let mut orgs: Vec<String> = ops.iter().map(|op| op.org_id.clone()).collect();
    orgs.sort_unstable();
    orgs.dedup();
    orgs
}

/// Locks the organizations' counter rows until commit. Locking them in id
/// order means two calls writing the same organizations never deadlock.
async fn lock_orgs(conn: &mut PgConnection, orgs: &[String]) -> Result<(), StoreError> {
    sqlx::query("SELECT id FROM orgs WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(orgs)
        .fetch_all(conn)
        .await
        .context("locking organizations")?;
    Ok(())
}

/// Runs each op in its own savepoint: a refused op rolls back alone.
async fn run_ops(
    conn: &mut PgConnection,
    ops: Vec<WriteOp>,
) -> Result<Vec<Result<WriteOutcome, WriteError>>, StoreError> {
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        // Set before the savepoint, so that rolling it back keeps the scope.
        set_scope(&mut *conn, "sharehub.org_id", &op.org_id).await?;
        sqlx::query("SAVEPOINT op").execute(&mut *conn).await.context("opening a savepoint")?;

        let result = write::apply(&mut *conn, op, sharehub_model::view::write_time()).await?;

        if result.is_err() {
            sqlx::query("ROLLBACK TO op").execute(&mut *conn).await.context("rolling back a refused write")?;
        }
        sqlx::query("RELEASE op").execute(&mut *conn).await.context("releasing a savepoint")?;
        results.push(result);
    }
    Ok(results)
}
