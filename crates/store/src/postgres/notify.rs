//! Waking delivery workers of every hub process after a commit.
//!
//! A write transaction that changed something sends `NOTIFY` on
//! [`CHANNEL`]; PostgreSQL delivers it only if, and once, the transaction
//! commits. Each process keeps one listening connection and bumps its
//! commits channel on every notification. After the listening connection
//! drops, it bumps too: notifications sent meanwhile are lost, and a
//! spurious wake-up only costs the workers one read.

use std::time::Duration;

use sqlx::postgres::{PgConnection, PgListener, PgPool};
use tokio::sync::watch;

use crate::error::Context;
use crate::StoreError;

/// The channel commits are announced on; the payload is an organization id
/// (an app id when a delivery lease is released). Listeners ignore it.
pub(crate) const CHANNEL: &str = "sharehub_commits";

/// Queues one notification per organization, sent when `conn`'s
/// transaction commits.
pub(crate) async fn send(conn: &mut PgConnection, orgs: &[String]) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, org) FROM unnest($2::text[]) AS org")
        .bind(CHANNEL)
        .bind(orgs)
        .execute(conn)
        .await
        .context("announcing a commit")?;
    Ok(())
}

/// Listens in the background until every receiver of `commits` is gone.
pub(crate) fn listen(pool: PgPool, commits: watch::Sender<u64>) {
    tokio::spawn(async move {
        tokio::select! {
            _ = commits.closed() => {}
            _ = listen_forever(&pool, &commits) => {}
        }
    });
}

async fn listen_forever(pool: &PgPool, commits: &watch::Sender<u64>) {
    loop {
        if let Err(e) = listen_once(pool, commits).await {
            // The store was closed (a command such as `migrate` ending): done.
            if pool.is_closed() {
                return;
            }
            tracing::warn!(error = %e, "listening for commits failed; retrying");
        }
        bump(commits);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Listens on one connection until it fails.
async fn listen_once(pool: &PgPool, commits: &watch::Sender<u64>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    loop {
        // `None`: the connection dropped and the next call reconnects.
        if listener.try_recv().await?.is_none() {
            tracing::warn!("the commit listener lost its connection; reconnecting");
        }
        bump(commits);
    }
}

fn bump(commits: &watch::Sender<u64>) {
    commits.send_modify(|n| *n = n.wrapping_add(1));
}
