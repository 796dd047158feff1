//! The SQLite translation of `$filter` selects exactly the records that
//! `Expr::matches_with` accepts, on random records and random filters, and
//! its `$orderby` sorts date-time fields as instants.

use proptest::prelude::*;
use serde_json::Value;
use sharehub_model::filter::Expr;
use sharehub_store::sql_filter::{bind_sqlite, sqlite_filter, sqlite_order_by};
use sqlx::{Connection, Row, SqliteConnection};

#[path = "filter_gen/mod.rs"]
mod filter_gen;
use filter_gen::*;

const CREATE: &str = "CREATE TABLE records (
  org_id TEXT NOT NULL, id TEXT NOT NULL, entity TEXT NOT NULL,
  data TEXT NOT NULL,
  version INTEGER NOT NULL,
  content_hash BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  archived INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (org_id, id))";

async fn insert(conn: &mut SqliteConnection, records: &[Record]) {
    sqlx::query(CREATE).execute(&mut *conn).await.unwrap();
    for r in records {
        sqlx::query(
            "INSERT INTO records (org_id, id, entity, data, version, content_hash, created_at, updated_at)
             VALUES ('org', ?, 'people', ?, ?, x'00', ?, ?)",
        )
        .bind(&r.id)
        .bind(Value::Object(r.data.clone()).to_string())
        .bind(r.version)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

async fn selected(conn: &mut SqliteConnection, filter: &Expr, order: &str) -> Vec<String> {
    let fragment = sqlite_filter(filter, &date_times()).unwrap();
    let sql = format!("SELECT id FROM records WHERE org_id = 'org' AND {} ORDER BY {order}, id ASC", fragment.sql);
    let rows = bind_sqlite(&fragment.binds, sqlx::query(&sql)).fetch_all(&mut *conn).await.unwrap();
    let mut ids: Vec<String> = rows.iter().map(|row| row.get::<String, _>(0)).collect();
    ids.sort();
    ids
}

/// Every id, in the order of `order` then by id.
async fn ordered(conn: &mut SqliteConnection, order: &str) -> Vec<String> {
    let sql = format!("SELECT id FROM records ORDER BY {order}, id ASC");
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await.unwrap();
    rows.iter().map(|row| row.get::<String, _>(0)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn sql_selects_what_matches_accepts(
        records in records(),
        filters in proptest::collection::vec(expr(), 1..5),
        order in order_keys(),
        date_order in date_time_order_key(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let order = sqlite_order_by(&order, &date_times()).unwrap();
        let date_order_sql = sqlite_order_by(std::slice::from_ref(&date_order), &date_times()).unwrap();
        let (outcomes, in_date_order) = runtime.block_on(async {
            let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
            insert(&mut conn, &records).await;
            let mut outcomes = Vec::new();
            for filter in &filters {
                outcomes.push(selected(&mut conn, filter, &order).await);
            }
            (outcomes, ordered(&mut conn, &date_order_sql).await)
        });
        prop_assert_eq!(in_date_order, ids_in_date_time_order(&records, &date_order), "$orderby {:?}", date_order);
        for (filter, from_sql) in filters.iter().zip(outcomes) {
            let expected: Vec<String> = records
                .iter()
                .filter(|r| filter.matches_with(&as_json(r), &date_times()))
                .map(|r| r.id.clone())
                .collect();
            prop_assert_eq!(from_sql, expected, "filter: {}", filter);
        }
    }
}
