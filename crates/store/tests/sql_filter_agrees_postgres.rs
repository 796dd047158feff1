//! The PostgreSQL translation of `$filter` selects exactly the records that
//! `Expr::matches_with` accepts, on random records and random filters, and
//! its `$orderby` sorts date-time fields as instants (the generators of
//! `sql_filter_agrees.rs`). Skipped unless
//! `SHAREHUB_TEST_POSTGRES_URL` is set; works in temporary tables.

use proptest::prelude::*;
use serde_json::Value;
use sharehub_model::filter::Expr;
use sharehub_store::sql_filter::{bind_postgres, postgres_filter, postgres_order_by};
use sqlx::{Connection, PgConnection, Row};

/// A temporary table shadowing nothing: it lives as long as the connection.
#[path = "filter_gen/mod.rs"]
mod filter_gen;
use filter_gen::*;

const CREATE: &str = "CREATE TEMP TABLE records (
  org_id TEXT NOT NULL, id TEXT COLLATE \"C\" NOT NULL, entity TEXT NOT NULL,
  data TEXT NOT NULL,
  version BIGINT NOT NULL,
  content_hash BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  archived BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (org_id, id))";

async fn insert(conn: &mut PgConnection, records: &[Record]) {
    sqlx::query(CREATE).execute(&mut *conn).await.unwrap();
    for r in records {
        sqlx::query(
            "INSERT INTO records (org_id, id, entity, data, version, content_hash, created_at, updated_at)
             VALUES ('org', $1, 'people', $2, $3, '\\x00', $4, $5)",
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

async fn selected(conn: &mut PgConnection, filter: &Expr, order: &str) -> Vec<String> {
    let fragment = postgres_filter(filter, 1, &date_times()).unwrap();
    let sql = format!("SELECT id FROM records WHERE org_id = 'org' AND {} ORDER BY {order}, id ASC", fragment.sql);
    let rows = bind_postgres(&fragment.binds, sqlx::query(&sql)).fetch_all(&mut *conn).await.unwrap();
    let mut ids: Vec<String> = rows.iter().map(|row| row.get::<String, _>(0)).collect();
    ids.sort();
    ids
}

/// Every id, in the order of `order` then by id.
async fn ordered(conn: &mut PgConnection, order: &str) -> Vec<String> {
    let sql = format!("SELECT id FROM records ORDER BY {order}, id ASC");
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await.unwrap();
    rows.iter().map(|row| row.get::<String, _>(0)).collect()
}

/// The server to check against; without one the property is skipped, said
/// once rather than for each of its cases.
fn url() -> Option<String> {
    static SKIP_NOTICE: std::sync::Once = std::sync::Once::new();
    let url = std::env::var("SHAREHUB_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        SKIP_NOTICE.call_once(|| {
            eprintln!("skipped: set SHAREHUB_TEST_POSTGRES_URL to check the PostgreSQL filter translation");
        });
    }
    url
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn postgres_sql_selects_what_matches_accepts(
        records in records(),
        filters in proptest::collection::vec(expr(), 1..5),
        order in order_keys(),
        date_order in date_time_order_key(),
    ) {
        let Some(url) = url() else { return Ok(()) };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let order = postgres_order_by(&order, &date_times()).unwrap();
        let date_order_sql = postgres_order_by(std::slice::from_ref(&date_order), &date_times()).unwrap();
        let (outcomes, in_date_order) = runtime.block_on(async {
            // Temporary tables: nothing is left in the database afterwards.
            let mut conn = PgConnection::connect(&url).await.unwrap();
            insert(&mut conn, &records).await;
            let mut outcomes = Vec::new();
            for filter in &filters {
                outcomes.push(selected(&mut conn, filter, &order).await);
            }
            let in_date_order = ordered(&mut conn, &date_order_sql).await;
            conn.close().await.unwrap();
            (outcomes, in_date_order)
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
