//! Delivery leases on PostgreSQL: which process delivers an app's webhooks.
//!
//! A claim is one `INSERT … ON CONFLICT DO UPDATE … WHERE` statement: it
//! inserts a free lease, or takes over a row whose lease expired or renews
//! one the claimer already holds, and answers a row only then. Two processes
//! claiming at once serialise on the row lock, and the second re-checks the
//! condition against the first's update, so exactly one of them wins. Expiry
//! is judged by the database's clock, the one clock all processes share.

use std::time::Duration;

use super::notify::CHANNEL;
use super::PgStore;
use crate::error::Context;
use crate::StoreError;

/// The statement's start on the database clock, in unix microseconds.
const NOW_US: &str = "(extract(epoch FROM statement_timestamp()) * 1000000)::bigint";

/// Longest lease accepted (a day): keeps `now + lease` far from overflow.
const MAX_LEASE_US: i64 = 86_400_000_000;

impl PgStore {
    pub(crate) async fn claim_app_impl(&self, app_id: &str, holder: &str, lease: Duration) -> Result<bool, StoreError> {
        let lease_us = i64::try_from(lease.as_micros()).unwrap_or(MAX_LEASE_US).min(MAX_LEASE_US);
        // A new claim needs `mine < ceil((leased + 1) / live)`, written
        // without division; renewing a lease of ours always goes through.
        let claimed = sqlx::query(&format!(
            "WITH live AS (SELECT GREATEST(count(*), 1) AS n FROM delivery_holders WHERE expires_at >= {NOW_US}), \
                  held AS (SELECT count(*) FILTER (WHERE holder = $2) AS mine, count(*) AS leased \
                           FROM delivery_leases WHERE expires_at >= {NOW_US} AND app_id <> $1) \
             INSERT INTO delivery_leases AS l (app_id, holder, expires_at) \
             SELECT $1, $2, {NOW_US} + $3 FROM live, held \
             WHERE held.mine * live.n < held.leased + 1 \
                OR EXISTS (SELECT 1 FROM delivery_leases WHERE app_id = $1 AND holder = $2) \
             ON CONFLICT (app_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE l.expires_at < {NOW_US} OR l.holder = excluded.holder \
             RETURNING l.holder"
        ))
        .bind(app_id)
        .bind(holder)
        .bind(lease_us)
        .fetch_optional(&self.pool)
        .await
        .context("claiming an app's delivery lease")?;
        Ok(claimed.is_some())
    }

    /// Says `holder` is alive for `ttl` more (zero: retired now).
    pub(crate) async fn announce_holder_impl(&self, holder: &str, ttl: Duration) -> Result<(), StoreError> {
        let ttl_us = i64::try_from(ttl.as_micros()).unwrap_or(MAX_LEASE_US).min(MAX_LEASE_US);
        let sql = format!(
            "INSERT INTO delivery_holders (holder, expires_at) VALUES ($1, {NOW_US} + $2) \
             ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at"
        );
        let query = sqlx::query(&sql).bind(holder).bind(ttl_us);
        query.execute(&self.pool).await.context("announcing a delivery process")?;
        Ok(())
    }

    /// Whether `holder` holds more live leases than its share.
    pub(crate) async fn over_share_impl(&self, holder: &str) -> Result<bool, StoreError> {
        let sql = format!(
            "WITH live AS (SELECT GREATEST(count(*), 1) AS n FROM delivery_holders WHERE expires_at >= {NOW_US}), \
                  held AS (SELECT count(*) FILTER (WHERE holder = $1) AS mine, count(*) AS leased \
                           FROM delivery_leases WHERE expires_at >= {NOW_US}) \
             SELECT held.mine > ceil(held.leased::numeric / live.n) FROM live, held"
        );
        let over = sqlx::query_scalar(&sql).bind(holder).fetch_one(&self.pool).await;
        over.context("counting delivery leases")
    }

    /// Deletes the lease if `holder` has it and announces it on the commits
    /// channel, so the other processes' waiting tasks claim the app at once.
    pub(crate) async fn release_app_impl(&self, app_id: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query(
            "WITH gone AS (DELETE FROM delivery_leases WHERE app_id = $1 AND holder = $2 RETURNING app_id) \
             SELECT pg_notify($3, app_id) FROM gone",
        )
        .bind(app_id)
        .bind(holder)
        .bind(CHANNEL)
        .execute(&self.pool)
        .await
        .context("releasing an app's delivery lease")?;
        Ok(())
    }
}
