//! The SQLite translation of `$filter` selects exactly the records that
//! `Expr::matches` accepts, on random records and random filters.

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
    let fragment = sqlite_filter(filter).unwrap();
    let sql = format!("SELECT id FROM records WHERE org_id = 'org' AND {} ORDER BY {order}, id ASC", fragment.sql);
    let rows = bind_sqlite(&fragment.binds, sqlx::query(&sql)).fetch_all(&mut *conn).await.unwrap();
    let mut ids: Vec<String> = rows.iter().map(|row| row.get::<String, _>(0)).collect();
    ids.sort();
    ids
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn sql_selects_what_matches_accepts(
        records in records(),
        filters in proptest::collection::vec(expr(), 1..5),
        order in order_keys(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let order = sqlite_order_by(&order).unwrap();
        let outcomes = runtime.block_on(async {
            let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
            insert(&mut conn, &records).await;
            let mut outcomes = Vec::new();
            for filter in &filters {
                outcomes.push(selected(&mut conn, filter, &order).await);
            }
            outcomes
        });
        for (filter, from_sql) in filters.iter().zip(outcomes) {
            let expected: Vec<String> = records
                .iter()
                .filter(|r| filter.matches(&as_json(r)))
                .map(|r| r.id.clone())
                .collect();
            prop_assert_eq!(from_sql, expected, "filter: {}", filter);
        }
    }
}
