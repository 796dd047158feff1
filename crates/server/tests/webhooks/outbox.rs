//! The change log is the outbox: a record and its change commit together, so
//! a write whose change cannot be logged leaves nothing behind, no record to
//! read and no webhook to send.

use std::str::FromStr;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;

use crate::common::TestApp;
use crate::support::*;

/// A connection to the hub's database behind its back, as its owner.
enum Backdoor {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Backdoor {
    async fn open(hub: &TestApp) -> Self {
        let url = hub.database_owner_url();
        if url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url).unwrap();
            Backdoor::Sqlite(sqlx::SqliteConnection::connect_with(&options).await.expect("opening the hub's file"))
        } else {
            Backdoor::Postgres(sqlx::PgConnection::connect(&url).await.expect("connecting as the database's owner"))
        }
    }

    /// Makes every insert into the change log fail, as a full disk or a
    /// constraint would.
    async fn refuse_changes(&mut self) {
        match self {
            Backdoor::Sqlite(conn) => {
                let sql = "CREATE TRIGGER refuse_changes BEFORE INSERT ON changes \
                           BEGIN SELECT RAISE(ABORT, 'injected: the change log refuses rows'); END";
                sqlx::query(sql).execute(conn).await.unwrap();
            }
            Backdoor::Postgres(conn) => {
                let function = "CREATE FUNCTION refuse_changes() RETURNS trigger LANGUAGE plpgsql AS \
                                $$ BEGIN RAISE EXCEPTION 'injected: the change log refuses rows'; END $$";
                sqlx::query(function).execute(&mut *conn).await.unwrap();
                let trigger = "CREATE TRIGGER refuse_changes BEFORE INSERT ON changes \
                               FOR EACH ROW EXECUTE FUNCTION refuse_changes()";
                sqlx::query(trigger).execute(&mut *conn).await.unwrap();
            }
        }
    }

    async fn accept_changes(&mut self) {
        let sql = match self {
            Backdoor::Sqlite(_) => "DROP TRIGGER refuse_changes",
            Backdoor::Postgres(_) => "DROP TRIGGER refuse_changes ON changes",
        };
        match self {
            Backdoor::Sqlite(conn) => drop(sqlx::query(sql).execute(conn).await.unwrap()),
            Backdoor::Postgres(conn) => drop(sqlx::query(sql).execute(conn).await.unwrap()),
        }
    }
}

/// The writer's view of the change feed, from the start.
async fn feed(s: &Setup) -> Vec<Value> {
    let (status, body) = s.hub.get(&s.writer, &format!("/api/v2/{}/changes?after=0&limit=1000", s.writer_group)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["changes"].as_array().cloned().unwrap_or_default()
}

async fn names(s: &Setup) -> Vec<String> {
    let (status, body) = s.hub.get(&s.writer, &format!("/api/v2/{}/organizations", s.writer_group)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["organizations"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_write_whose_change_cannot_be_logged_leaves_no_record_and_sends_no_webhook() {
    let s = setup().await;
    let before = s.create_org_record("Before").await;
    wait_for_record(&s.receiver, &before).await;

    let mut db = Backdoor::open(&s.hub).await;
    db.refuse_changes().await;
    let own_id = json!([{ "provider": s.writer.provider, "realm": s.writer_group, "id": "lost-1" }]);
    let (status, body) =
        s.hub.post(&s.writer, &s.writer_group, "organizations", json!({ "id": own_id, "name": "Lost" })).await;
    // The contract's error body, not a record.
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let error = &body["errors"][0];
    assert_eq!((error["status"].as_str(), error["code"].as_str()), (Some("500"), Some("internal-error")), "{body}");
    for field in ["id", "title", "detail"] {
        assert!(error[field].as_str().is_some_and(|s| !s.is_empty()), "{field} missing in {body}");
    }

    assert_eq!(names(&s).await, ["Before"], "the record of the failed write is not stored");
    let by_own_id = s
        .hub
        .store()
        .find_by_external_id(&s.org, "organizations", &s.writer.api_id, &s.writer_group, "lost-1")
        .await
        .unwrap();
    assert_eq!(by_own_id, None, "nor its external id");
    assert_eq!(feed(&s).await.len(), 1, "nor its change");
    assert_no_more_requests(&s.receiver, 1).await;

    // Once the log takes rows again, the next write goes through, numbered
    // right after the last one, and is delivered.
    db.accept_changes().await;
    let after = s.create_org_record("After").await;
    wait_for_record(&s.receiver, &after).await;
    let seqs: Vec<i64> = feed(&s).await.iter().map(|c| c["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2], "no gap in the feed");
    let delivered: Vec<String> = s.receiver.records().iter().map(|(_, r)| hub_id(r)).collect();
    assert_eq!(delivered, [before, after]);
    assert_eq!(names(&s).await, ["Before", "After"]);
}
