//! Reading records, links and the change log on PostgreSQL.
//!
//! Every read names its organization first ([`PgStore::begin_org`]), so the
//! row-level policies hold even if a query here forgot its `org_id`.

use std::collections::HashMap;

use sharehub_model::view::{Link, LinkMap};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, Row};
use uuid::Uuid;

use super::rows::{change_from_row, parse_uuid, record_from_row, CHANGE_COLUMNS, RECORD_COLUMNS};
use super::{finish, PgStore};
use crate::error::Context;
use crate::sql_filter::{self, SqlBind};
use crate::*;

impl PgStore {
    pub(crate) async fn get_record_impl(
        &self,
        org_id: &str,
        entity: &str,
        id: Uuid,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE org_id = $1 AND id = $2 AND entity = $3");
        let mut tx = self.begin_org(org_id).await?;
        let row = sqlx::query(&sql)
            .bind(org_id)
            .bind(id.to_string())
            .bind(entity)
            .fetch_optional(&mut *tx)
            .await
            .context("reading a record")?;
        finish(tx).await?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(crate) async fn get_records_impl(&self, org_id: &str, ids: &[Uuid]) -> Result<Vec<StoredRecord>, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        // One primary-key lookup per id, whatever the table statistics say
        // (see `PgWriteConn::find_links`).
        let sql = format!(
            "SELECT r.* FROM unnest($2::text[]) AS wanted(id) CROSS JOIN LATERAL \
             (SELECT {RECORD_COLUMNS} FROM records WHERE org_id = $1 AND id = wanted.id OFFSET 0) r"
        );
        let mut tx = self.begin_org(org_id).await?;
        let rows = sqlx::query(&sql).bind(org_id).bind(&ids).fetch_all(&mut *tx).await.context("reading records")?;
        finish(tx).await?;
        rows.iter().map(record_from_row).collect()
    }

    pub(crate) async fn find_by_external_id_impl(
        &self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut tx = self.begin_org(org_id).await?;
        let id: Option<String> = sqlx::query_scalar(
            "SELECT record_id FROM id_links WHERE org_id = $1 AND entity = $2 AND app_id = $3 AND realm = $4 AND external_id = $5",
        )
        .bind(org_id)
        .bind(entity)
        .bind(app_id)
        .bind(realm)
        .bind(external_id)
        .fetch_optional(&mut *tx)
        .await
        .context("looking up an external id")?;
        finish(tx).await?;
        id.as_deref().map(parse_uuid).transpose()
    }

    pub(crate) async fn find_singleton_impl(
        &self,
        org_id: &str,
        entity: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE org_id = $1 AND entity = $2 ORDER BY created_at, id LIMIT 1"
        );
        let mut tx = self.begin_org(org_id).await?;
        let row = sqlx::query(&sql)
            .bind(org_id)
            .bind(entity)
            .fetch_optional(&mut *tx)
            .await
            .context("reading a singleton")?;
        finish(tx).await?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(crate) async fn list_records_impl(&self, q: &ListQuery) -> Result<(Vec<StoredRecord>, u64), StoreError> {
        let date_times = sql_filter::date_time_fields(&q.entity);
        let (filter_sql, binds) = match &q.filter {
            // $1 and $2 are the organization and the entity.
            Some(expr) => {
                let fragment =
                    sql_filter::postgres_filter(expr, 3, date_times).map_err(|e| StoreError::BadFilter(e.message))?;
                (format!(" AND ({})", fragment.sql), fragment.binds)
            }
            None => (String::new(), Vec::new()),
        };
        let mut order =
            sql_filter::postgres_order_by(&q.order_by, date_times).map_err(|e| StoreError::BadOrderBy(e.message))?;
        if !order.is_empty() {
            order.push_str(", ");
        }
        order.push_str("created_at, id");

        let base = format!("FROM records WHERE org_id = $1 AND entity = $2 AND NOT archived{filter_sql}");
        let count_sql = format!("SELECT count(*) {base}");
        let page_sql = format!("SELECT {RECORD_COLUMNS} {base} ORDER BY {order} LIMIT {} OFFSET {}", q.top, q.skip);

        // Under READ COMMITTED a write committing between the two queries
        // can make the count and the page disagree by that write; paging
        // tolerates it, as it does on SQLite's separate reads.
        let mut tx = self.begin_org(&q.org_id).await?;
        let total: i64 = sqlx::query_scalar_with(&count_sql, arguments(q, &binds)?)
            .fetch_one(&mut *tx)
            .await
            .context("counting records")?;
        let rows =
            sqlx::query_with(&page_sql, arguments(q, &binds)?).fetch_all(&mut *tx).await.context("listing records")?;
        finish(tx).await?;

        let records = rows.iter().map(record_from_row).collect::<Result<_, _>>()?;
        Ok((records, u64::try_from(total).unwrap_or(0)))
    }

    pub(crate) async fn links_impl(&self, org_id: &str, ids: &[Uuid]) -> Result<LinkMap, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let mut tx = self.begin_org(org_id).await?;
        let rows = sqlx::query(
            "SELECT l.record_id, a.provider, l.realm, l.external_id FROM unnest($2::text[]) AS wanted(id) \
             CROSS JOIN LATERAL (SELECT * FROM id_links WHERE org_id = $1 AND record_id = wanted.id OFFSET 0) l \
             JOIN apps a ON a.id = l.app_id ORDER BY a.provider, l.realm, l.external_id",
        )
        .bind(org_id)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .context("reading external ids")?;
        finish(tx).await?;

        let mut links: LinkMap = HashMap::new();
        for row in rows {
            let link = Link { provider: row.get(1), realm: row.get(2), id: row.get(3) };
            links.entry(parse_uuid(row.get::<&str, _>(0))?).or_default().push(link);
        }
        Ok(links)
    }

    pub(crate) async fn changes_impl(&self, org_id: &str, after: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        let sql = format!("SELECT {CHANGE_COLUMNS} FROM changes WHERE org_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
        let mut tx = self.begin_org(org_id).await?;
        let rows = sqlx::query(&sql)
            .bind(org_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .context("reading the change log")?;
        finish(tx).await?;
        rows.iter().map(change_from_row).collect()
    }

    pub(crate) async fn last_seq_impl(&self, org_id: &str) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await
            .context("reading the last change")?;
        Ok(seq.unwrap_or(0))
    }
}

/// The organization, the entity, then the filter's values, as `$1, $2, …`.
fn arguments(q: &ListQuery, binds: &[SqlBind]) -> Result<PgArguments, StoreError> {
    let mut args = PgArguments::default();
    let bad = |e| StoreError::Invalid(format!("bad filter value: {e}"));
    args.add(q.org_id.clone()).map_err(bad)?;
    args.add(q.entity.clone()).map_err(bad)?;
    for bind in binds {
        match bind {
            SqlBind::Text(s) => args.add(s.clone()),
            SqlBind::Int(i) => args.add(*i),
            SqlBind::Real(f) => args.add(*f),
            SqlBind::Null => args.add(Option::<String>::None),
        }
        .map_err(bad)?;
    }
    Ok(args)
}
