//! Reading records, links and the change log on SQLite.

use std::collections::HashMap;

use sharehub_model::view::{Link, LinkMap};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row};
use uuid::Uuid;

use super::rows::{record_from_row, timestamp, RECORD_COLUMNS};
use super::tx::parse_uuid;
use super::SqliteStore;
use crate::error::Context;
use crate::sql_filter::{self, SqlBind};
use crate::*;

impl SqliteStore {
    pub(crate) async fn get_record_impl(
        &self,
        org_id: &str,
        entity: &str,
        id: Uuid,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE org_id = ? AND id = ? AND entity = ?");
        let row = sqlx::query(&sql)
            .bind(org_id)
            .bind(id.to_string())
            .bind(entity)
            .fetch_optional(&self.reader)
            .await
            .context("reading a record")?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(crate) async fn get_records_impl(&self, org_id: &str, ids: &[Uuid]) -> Result<Vec<StoredRecord>, StoreError> {
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE org_id = ? AND id IN ({marks})");
            let mut query = sqlx::query(&sql).bind(org_id);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            let rows = query.fetch_all(&self.reader).await.context("reading records")?;
            for row in &rows {
                records.push(record_from_row(row)?);
            }
        }
        Ok(records)
    }

    pub(crate) async fn find_by_external_id_impl(
        &self,
        org_id: &str,
        entity: &str,
        app_id: &str,
        realm: &str,
        external_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        super::tx::find_link(&self.reader, org_id, entity, app_id, realm, external_id).await
    }

    pub(crate) async fn find_singleton_impl(
        &self,
        org_id: &str,
        entity: &str,
    ) -> Result<Option<StoredRecord>, StoreError> {
        let sql =
            format!("SELECT {RECORD_COLUMNS} FROM records WHERE org_id = ? AND entity = ? ORDER BY created_at LIMIT 1");
        let row = sqlx::query(&sql)
            .bind(org_id)
            .bind(entity)
            .fetch_optional(&self.reader)
            .await
            .context("reading a singleton")?;
        row.as_ref().map(record_from_row).transpose()
    }

    pub(crate) async fn list_records_impl(&self, q: &ListQuery) -> Result<(Vec<StoredRecord>, u64), StoreError> {
        let date_times = sql_filter::date_time_fields(&q.entity);
        let mut filter_sql = String::new();
        let mut binds = Vec::new();
        if let Some(expr) = &q.filter {
            let fragment = sql_filter::sqlite_filter(expr, date_times).map_err(|e| StoreError::BadFilter(e.message))?;
            filter_sql = format!(" AND ({})", fragment.sql);
            binds = fragment.binds;
        }
        let mut order =
            sql_filter::sqlite_order_by(&q.order_by, date_times).map_err(|e| StoreError::BadOrderBy(e.message))?;
        if !order.is_empty() {
            order.push_str(", ");
        }
        order.push_str("created_at, id");

        let base = format!("FROM records WHERE org_id = ? AND entity = ? AND archived = 0{filter_sql}");
        let count_sql = format!("SELECT count(*) {base}");
        let total: i64 = sqlx::query_scalar_with(&count_sql, arguments(q, &binds)?)
            .fetch_one(&self.reader)
            .await
            .context("counting records")?;

        let page_sql = format!("SELECT {RECORD_COLUMNS} {base} ORDER BY {order} LIMIT {} OFFSET {}", q.top, q.skip);
        let rows = sqlx::query_with(&page_sql, arguments(q, &binds)?)
            .fetch_all(&self.reader)
            .await
            .context("listing records")?;
        let records = rows.iter().map(record_from_row).collect::<Result<_, _>>()?;
        Ok((records, total as u64))
    }

    pub(crate) async fn links_impl(&self, org_id: &str, ids: &[Uuid]) -> Result<LinkMap, StoreError> {
        let mut links: LinkMap = HashMap::new();
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT l.record_id, a.provider, l.realm, l.external_id FROM id_links l JOIN apps a ON a.id = l.app_id \
                 WHERE l.org_id = ? AND l.record_id IN ({marks}) ORDER BY a.provider, l.realm, l.external_id"
            );
            let mut query = sqlx::query(&sql).bind(org_id);
            for id in chunk {
                query = query.bind(id.to_string());
            }
            for row in query.fetch_all(&self.reader).await.context("reading external ids")? {
                let link = Link { provider: row.get(1), realm: row.get(2), id: row.get(3) };
                links.entry(parse_uuid(row.get::<&str, _>(0))?).or_default().push(link);
            }
        }
        Ok(links)
    }

    pub(crate) async fn changes_impl(&self, org_id: &str, after: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT org_id, seq, entity, record_id, version, origin_app, kind, at FROM changes WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(org_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await
        .context("reading the change log")?;
        rows.iter().map(change_from_row).collect()
    }

    pub(crate) async fn last_seq_impl(&self, org_id: &str) -> Result<i64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes WHERE org_id = ?")
            .bind(org_id)
            .fetch_optional(&self.reader)
            .await
            .context("reading the last change")?;
        Ok(seq.unwrap_or(0))
    }
}

fn arguments(q: &ListQuery, binds: &[SqlBind]) -> Result<SqliteArguments<'static>, StoreError> {
    let mut args = SqliteArguments::default();
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

fn change_from_row(row: &SqliteRow) -> Result<Change, StoreError> {
    let kind: &str = row.get(6);
    Ok(Change {
        org_id: row.get(0),
        seq: row.get(1),
        entity: row.get(2),
        record_id: parse_uuid(row.get::<&str, _>(3))?,
        version: row.get(4),
        origin_app: row.get(5),
        kind: ChangeKind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("bad change kind {kind:?}")))?,
        at: timestamp(row.get(7))?,
    })
}
