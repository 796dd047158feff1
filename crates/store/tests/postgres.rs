//! The PostgreSQL store against a real server.
//!
//! Skipped (with a message) unless `SHAREHUB_TEST_POSTGRES_URL` names a
//! superuser connection, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
//! Each test creates its own database, migrates it as that superuser, grants
//! the role `sharehub_app` (LOGIN NOSUPERUSER NOBYPASSRLS, created if
//! missing) `SELECT, INSERT, UPDATE, DELETE`, runs the hub's store as that
//! role, and drops the database at the end.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sharehub_model::catalog;
use sharehub_model::filter::{parse_filter, parse_orderby};
use sharehub_store::postgres::PgStore;
use sharehub_store::test_support::{self, TestDb};
use sharehub_store::write::Caller;
use sharehub_store::*;
use sqlx::{Connection, PgConnection};

fn base_url() -> Option<String> {
    let url = test_support::base_url_from_env();
    if url.is_none() {
        eprintln!("skipped: set SHAREHUB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres to run the PostgreSQL tests");
    }
    url
}

async fn admin(url: &str) -> PgConnection {
    PgConnection::connect(url).await.expect("connecting as the superuser")
}

async fn create_db(base: &str) -> TestDb {
    TestDb::create(base).await.expect("creating the test database")
}

/// Runs `body` on a fresh database and drops it, even if `body` panics.
async fn with_db<F, Fut>(body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(base) = base_url() else { return };
    let db = create_db(&base).await;
    let outcome = tokio::spawn(body(db.clone())).await;

    db.drop_database().await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// An organization with one app installed, as the hub's role sees them.
struct Tenant {
    store: Arc<PgStore>,
    org: Org,
    app: App,
    group: Group,
}

async fn tenant(db: &TestDb) -> Tenant {
    let store = Arc::new(PgStore::open(&db.app_url).await.unwrap());
    let org = store.create_org("Chinook").await.unwrap();
    let entities = vec![EntityAccess { entity: "organizations".into(), read: true, write: true, subscribe: true }];
    let new = NewApp { name: "CRM".into(), provider: "crm".into(), notification_url: None, entities };
    let (app, _) = store.create_app(new, "whsec_test".into()).await.unwrap();
    let group = store.install(&app.id, &org.id, Some("acct-1")).await.unwrap();
    Tenant { store, org, app, group }
}

impl Tenant {
    fn op(&self, target: Target, body: Value) -> WriteOp {
        let Value::Object(body) = body else { panic!("body must be an object") };
        WriteOp {
            org_id: self.org.id.clone(),
            caller: Caller {
                app_id: self.app.id.clone(),
                provider: self.app.provider.clone(),
                realm: self.group.realm.clone(),
            },
            entity: catalog::entity("organizations").unwrap(),
            target,
            body,
            matching_fields: Vec::new(),
            if_match: None,
            archive: false,
        }
    }

    async fn write_one(&self, op: WriteOp) -> Result<WriteOutcome, WriteError> {
        self.store.write(vec![op]).await.unwrap().remove(0)
    }

    async fn all_changes(&self) -> Vec<Change> {
        self.store.changes(&self.org.id, 0, 1000).await.unwrap()
    }
}

fn with_ext(ext: &str, fields: Value) -> Value {
    let mut body = fields;
    body["id"] = json!([{"provider": "crm", "realm": "acct-1", "id": ext}]);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_picks_the_backend_from_the_scheme() {
    // Not through `with_db`: `open` also holds the SQLite branch, whose
    // future is not `Send`, so it cannot run in a spawned task.
    let Some(base) = base_url() else { return };
    let db = create_db(&base).await;
    let pg = sharehub_store::open(&db.app_url).await.map(|_| ());
    let alt = sharehub_store::open(&db.app_url.replacen("postgres://", "postgresql://", 1)).await.map(|_| ());
    let other = sharehub_store::open("mysql://x@y/z").await.map(|_| ());

    db.drop_database().await.unwrap();
    pg.unwrap();
    alt.unwrap();
    let err = other.err().unwrap();
    assert!(err.to_string().contains("unsupported database URL scheme"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_round_trip() {
    with_db(|db| async move {
        let t = tenant(&db).await;
        let s = &t.store;
        assert_eq!(s.list_orgs().await.unwrap().iter().map(|o| &o.id).collect::<Vec<_>>(), vec![&t.org.id]);

        let app = s.get_app(&t.app.id).await.unwrap().unwrap();
        assert_eq!((app.provider.as_str(), app.api_key.as_str()), ("crm", t.app.api_key.as_str()));
        assert!(app.can_write("organizations") && app.wants("organizations"));
        assert_eq!(s.list_apps().await.unwrap().len(), 1);

        let duplicate = NewApp { name: "x".into(), provider: "crm".into(), notification_url: None, entities: vec![] };
        assert!(matches!(s.create_app(duplicate, "whsec_x".into()).await, Err(StoreError::Invalid(_))));

        let update = AppUpdate {
            name: Some("CRM 2".into()),
            notification_url: Some(Some("https://x.test/hook".into())),
            entities: Some(vec![]),
            endpoint_enabled: Some(false),
        };
        let updated = s.update_app(&t.app.id, update).await.unwrap().unwrap();
        let reread = s.get_app(&t.app.id).await.unwrap().unwrap();
        assert_eq!((reread.name.as_str(), reread.notification_url.as_deref()), ("CRM 2", Some("https://x.test/hook")));
        assert!(
            reread.entities.is_empty()
                && reread.endpoint_disabled == updated.endpoint_disabled
                && reread.endpoint_disabled.is_some()
        );
        assert!(s.update_app("nope", AppUpdate::default()).await.unwrap().is_none());

        let key = s.rotate_api_key(&t.app.id).await.unwrap().unwrap();
        assert_ne!(key, t.app.api_key);
        assert_eq!(s.get_app(&t.app.id).await.unwrap().unwrap().api_key, key);
        assert!(s.rotate_api_key("nope").await.unwrap().is_none());
        assert!(s.set_webhook_secret(&t.app.id, "whsec_new".into()).await.unwrap());
        assert_eq!(s.get_app(&t.app.id).await.unwrap().unwrap().webhook_secret, "whsec_new");

        let again = s.install(&t.app.id, &t.org.id, None).await.unwrap();
        assert_eq!((again.id.as_str(), again.realm.as_str()), (t.group.id.as_str(), "acct-1"));
        assert_eq!(s.get_group(&t.group.id).await.unwrap().unwrap().org_id, t.org.id);
        assert_eq!(s.groups_of_app(&t.app.id).await.unwrap().len(), 1);
        assert!(matches!(s.install(&t.app.id, "no-org", None).await, Err(StoreError::Invalid(_))));
        assert_eq!(s.cursors(&t.app.id).await.unwrap().get(&t.org.id), Some(&0));
        s.ping().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_rules_run_on_postgres() {
    with_db(|db| async move {
        let t = tenant(&db).await;
        let created = t
            .write_one(t.op(Target::New, with_ext("c1", json!({"name": "Acme", "annual_revenue": "0.30"}))))
            .await
            .unwrap();
        let WriteOutcome::Created(record) = created else { panic!("expected a creation: {created:?}") };

        // The stored text is what was written, decimal digits and key order included.
        let read = t.store.get_record(&t.org.id, "organizations", record.id).await.unwrap().unwrap();
        assert_eq!((&read.data, read.version, read.content_hash), (&record.data, 1, record.content_hash));
        assert_eq!(read.created_at.as_microsecond(), record.created_at.as_microsecond(), "times keep microseconds");
        assert!(read.data.to_string().contains("\"annual_revenue\":0.30"), "{}", read.data);
        assert_eq!(
            t.store.find_by_external_id(&t.org.id, "organizations", &t.app.id, "acct-1", "c1").await.unwrap(),
            Some(record.id)
        );

        let upsert = t.write_one(t.op(Target::New, with_ext("c1", json!({"name": "Acme Ltd"})))).await.unwrap();
        assert!(matches!(&upsert, WriteOutcome::Updated(r) if r.id == record.id && r.version == 2));
        let same = t.write_one(t.op(Target::New, with_ext("c1", json!({"name": "Acme Ltd"})))).await.unwrap();
        assert!(matches!(same, WriteOutcome::Unchanged(_)));
        assert_eq!(t.store.last_seq(&t.org.id).await.unwrap(), 2, "a no-op logs nothing");

        let by_id = t.write_one(t.op(Target::Id(record.id), json!({"annual_revenue": "12.50"}))).await.unwrap();
        assert_eq!(by_id.record().version, 3);

        let mut stale = t.op(Target::Id(record.id), json!({"name": "Late"}));
        stale.if_match = Some(1);
        assert_eq!(t.write_one(stale).await, Err(WriteError::StaleVersion { current: 3 }));

        let mut archive = t.op(Target::Id(record.id), json!({}));
        archive.archive = true;
        assert!(t.write_one(archive).await.unwrap().record().archived);

        let kinds: Vec<(i64, ChangeKind)> = t.all_changes().await.iter().map(|c| (c.seq, c.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (1, ChangeKind::Created),
                (2, ChangeKind::Updated),
                (3, ChangeKind::Updated),
                (4, ChangeKind::Archived)
            ]
        );

        let links = t.store.links(&t.org.id, &[record.id]).await.unwrap();
        assert_eq!(links[&record.id][0].id, "c1");
        let query = ListQuery {
            org_id: t.org.id.clone(),
            entity: "organizations".into(),
            filter: None,
            order_by: vec![],
            top: 10,
            skip: 0,
        };
        assert_eq!(t.store.list_records(&query).await.unwrap().1, 0, "archived records leave lists");

        // A refused op rolls back alone; the other ops of the call commit.
        let ops = vec![
            t.op(Target::Id(uuid::Uuid::now_v7()), json!({"name": "x"})),
            t.op(Target::New, json!({"name": "Other"})),
        ];
        let results = t.store.write(ops).await.unwrap();
        assert_eq!(results[0], Err(WriteError::NotFound));
        assert!(matches!(results[1], Ok(WriteOutcome::Created(_))));
        assert_eq!(t.store.last_seq(&t.org.id).await.unwrap(), 5);
    })
    .await;
}

/// 20 writers in 5 store instances (as 5 hub processes) create the same
/// external id, then the same matching fields: one record each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_converge_on_one_record() {
    with_db(|db| async move {
        let t = Arc::new(tenant(&db).await);
        let mut stores = Vec::new();
        for _ in 0..5 {
            stores.push(Arc::new(PgStore::open(&db.app_url).await.unwrap()));
        }

        let mut woken = stores[4].commits();
        let ids = race(&t, &stores, |t| t.op(Target::New, with_ext("same", json!({"name": "Racer"})))).await;
        assert_eq!(ids.len(), 1, "one record for one external id");
        tokio::time::timeout(Duration::from_secs(5), woken.changed())
            .await
            .expect("another process's commit wakes this one")
            .unwrap();

        let ids = race(&t, &stores, |t| {
            let mut op = t.op(Target::New, json!({"name": "Matched", "email": {"address": "m@x.test"}}));
            op.matching_fields = vec!["email/address".into()];
            op
        })
        .await;
        assert_eq!(ids.len(), 1, "one record for one set of matching fields");
        assert_eq!(t.all_changes().await.len(), 2, "one creation each, no-ops log nothing");
    })
    .await;
}

/// Runs 20 concurrent writes of `make`'s op; answers the record ids written.
async fn race(t: &Arc<Tenant>, stores: &[Arc<PgStore>], make: fn(&Tenant) -> WriteOp) -> HashSet<uuid::Uuid> {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (store, op) = (stores[i % stores.len()].clone(), make(t));
        tasks.push(tokio::spawn(async move { store.write(vec![op]).await.unwrap().remove(0).unwrap() }));
    }
    let mut ids = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let outcome = task.await.unwrap();
        created += usize::from(matches!(outcome, WriteOutcome::Created(_)));
        ids.insert(outcome.record().id);
    }
    assert_eq!(created, 1);
    ids
}

/// A transaction that took seq 1 and has not committed holds back the
/// writer that comes after it; the feed never shows seq 2 before seq 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_follows_commit_order() {
    with_db(|db| async move {
        let t = Arc::new(tenant(&db).await);

        // First transaction: the same steps as the store's writer, left open.
        let mut first = admin(&db.app_url).await;
        sqlx::query("BEGIN").execute(&mut first).await.unwrap();
        sqlx::query("SELECT id FROM orgs WHERE id = $1 FOR UPDATE").bind(&t.org.id).execute(&mut first).await.unwrap();
        let first_op = t.op(Target::New, json!({"name": "First"}));
        let first_record = sharehub_store::postgres::apply_on(&mut first, first_op).await.unwrap().unwrap();

        let second = {
            let t = t.clone();
            tokio::spawn(async move { t.write_one(t.op(Target::New, json!({"name": "Second"}))).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second writer waits for the first to commit");
        assert!(t.all_changes().await.is_empty());

        sqlx::query("COMMIT").execute(&mut first).await.unwrap();
        let second_record = second.await.unwrap();
        let feed: Vec<(i64, uuid::Uuid)> = t.all_changes().await.iter().map(|c| (c.seq, c.record_id)).collect();
        assert_eq!(feed, vec![(1, first_record.record().id), (2, second_record.record().id)]);
    })
    .await;
}

/// Writes waiting together are committed together; when one of them fails
/// in the database, the others still commit (each is run again alone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_does_not_fail_the_writes_grouped_with_it() {
    with_db(|db| async move {
        let t = Arc::new(tenant(&db).await);

        // Hold the organization so the writer stalls on a first write while the
        // next ones queue up behind it and are then taken as one group.
        let mut holder = admin(&db.app_url).await;
        sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
        sqlx::query("SELECT id FROM orgs WHERE id = $1 FOR UPDATE").bind(&t.org.id).execute(&mut holder).await.unwrap();
        let spawn_write = |op: WriteOp| {
            let t = t.clone();
            tokio::spawn(async move { t.store.write(vec![op]).await })
        };
        let first = spawn_write(t.op(Target::New, json!({"name": "First"})));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let good_a = spawn_write(t.op(Target::New, json!({"name": "Good A"})));
        // An organization without a row: numbering its change fails in the database.
        let bad = spawn_write(WriteOp { org_id: "org-missing".into(), ..t.op(Target::New, json!({"name": "Bad"})) });
        let good_b = spawn_write(t.op(Target::New, json!({"name": "Good B"})));
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

        let name = |result: Result<Vec<Result<WriteOutcome, WriteError>>, StoreError>| {
            let outcome = result.unwrap().remove(0).unwrap();
            outcome.record().data["name"].as_str().unwrap().to_string()
        };
        assert_eq!(name(first.await.unwrap()), "First");
        assert_eq!(name(good_a.await.unwrap()), "Good A");
        assert!(bad.await.unwrap().is_err(), "the write to a missing organization fails");
        assert_eq!(name(good_b.await.unwrap()), "Good B");
        let seqs: Vec<i64> = t.all_changes().await.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    })
    .await;
}

/// Many writers in three processes; a reader following the feed with its
/// cursor never finds a gap, so it never skips a change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_has_no_gaps_under_concurrent_writers() {
    with_db(|db| async move {
        let t = Arc::new(tenant(&db).await);
        let mut writers = Vec::new();
        for w in 0..3 {
            let store = Arc::new(PgStore::open(&db.app_url).await.unwrap());
            for n in 0..10 {
                let (store, op) = (store.clone(), t.op(Target::New, json!({"name": format!("w{w}-{n}")})));
                writers.push(tokio::spawn(async move { store.write(vec![op]).await.unwrap() }));
            }
        }

        // A change that never shows up (a writer failed, a commit was lost)
        // fails the test at the deadline instead of hanging it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut cursor = 0;
        while cursor < 30 {
            assert!(tokio::time::Instant::now() < deadline, "the feed stopped at seq {cursor} of 30");
            let changes = t.store.changes(&t.org.id, cursor, 100).await.unwrap();
            if changes.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for change in changes {
                assert_eq!(change.seq, cursor + 1, "a gap in the feed");
                cursor = change.seq;
            }
        }
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(t.store.last_seq(&t.org.id).await.unwrap(), 30);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_orders_in_sql() {
    with_db(|db| async move {
        let t = tenant(&db).await;
        for (name, revenue) in
            [("alpha", "10.00"), ("beta", "250.50"), ("gamma", "0.30"), ("delta", "99.99"), ("Zulu", "1000")]
        {
            t.write_one(t.op(Target::New, json!({"name": name, "annual_revenue": revenue}))).await.unwrap();
        }
        let list = |filter: &str, order: &str, top, skip| ListQuery {
            org_id: t.org.id.clone(),
            entity: "organizations".into(),
            filter: (!filter.is_empty()).then(|| parse_filter(filter).unwrap()),
            order_by: if order.is_empty() { vec![] } else { parse_orderby(order).unwrap() },
            top,
            skip,
        };
        let names = |records: &[StoredRecord]| {
            records.iter().map(|r| r.data["name"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>()
        };

        let (page, total) =
            t.store.list_records(&list("annual_revenue gt 1 and name ne 'delta'", "name desc", 2, 0)).await.unwrap();
        assert_eq!((names(&page), total), (vec!["beta".to_string(), "alpha".to_string()], 3));
        let (page, _) =
            t.store.list_records(&list("annual_revenue gt 1 and name ne 'delta'", "name desc", 2, 2)).await.unwrap();
        assert_eq!(names(&page), vec!["Zulu"], "byte order: uppercase first");

        let (page, total) =
            t.store.list_records(&list("annual_revenue le 0.3 or version gt 1", "", 10, 0)).await.unwrap();
        assert_eq!((names(&page), total), (vec!["gamma".to_string()], 1));
        let (_, total) = t
            .store
            .list_records(&list("created_at gt '2000-01-01T00:00:00Z' and missing eq null", "", 10, 0))
            .await
            .unwrap();
        assert_eq!(total, 5);
        assert!(matches!(
            t.store.list_records(&list("created_at gt 'soon'", "", 10, 0)).await,
            Err(StoreError::BadFilter(_))
        ));
    })
    .await;
}

/// The second wall: the hub's role, without naming an organization, sees
/// no tenant rows even though they exist, and cannot write another's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_hides_unscoped_rows() {
    with_db(|db| async move {
        let t = tenant(&db).await;
        t.write_one(t.op(Target::New, with_ext("r1", json!({"name": "Hidden"})))).await.unwrap();

        let mut hub = admin(&db.app_url).await;
        let mut superuser = admin(&db.admin_url).await;
        for table in ["records", "id_links", "changes"] {
            assert_eq!(count(&mut superuser, table).await, 1, "{table} has a row");
            assert_eq!(count(&mut hub, table).await, 0, "{table} is hidden without set_config");
        }

        sqlx::query("BEGIN").execute(&mut hub).await.unwrap();
        sqlx::query("SELECT set_config('sharehub.org_id', 'other-org', true)").execute(&mut hub).await.unwrap();
        assert_eq!(count(&mut hub, "records").await, 0, "another organization's rows stay hidden");
        let insert = sqlx::query("INSERT INTO changes (org_id, seq, entity, record_id, version, kind, at) VALUES ($1, 99, 'x', 'x', 1, 'created', 0)")
            .bind(&t.org.id)
            .execute(&mut hub)
            .await;
        assert!(insert.is_err(), "writing another organization's rows is refused");
        sqlx::query("ROLLBACK").execute(&mut hub).await.unwrap();

        sqlx::query("BEGIN").execute(&mut hub).await.unwrap();
        sqlx::query("SELECT set_config('sharehub.org_id', $1, true)").bind(&t.org.id).execute(&mut hub).await.unwrap();
        assert_eq!(count(&mut hub, "records").await, 1, "the named organization's rows show");
        sqlx::query("COMMIT").execute(&mut hub).await.unwrap();
        assert_eq!(count(&mut hub, "records").await, 0, "the scope ends with the transaction");
    })
    .await;
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(conn).await.unwrap()
}

fn batch(t: &Tenant, webhook_id: &str, to_seq: i64) -> PendingBatch {
    PendingBatch {
        app_id: t.app.id.clone(),
        webhook_id: webhook_id.into(),
        body: b"{\"organizations\":[]}".to_vec(),
        ranges: vec![CursorMove { org_id: t.org.id.clone(), to_seq }],
        records: vec![BatchRecord {
            org_id: t.org.id.clone(),
            entity: "organizations".into(),
            id: uuid::Uuid::now_v7(),
        }],
        attempts: 0,
        next_attempt_at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        created_at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        last_error: None,
    }
}

fn attempt(webhook_id: &str, n: u32, outcome: &str) -> DeliveryAttempt {
    let at = jiff::Timestamp::from_microsecond(1_700_000_000_123_456).unwrap();
    DeliveryAttempt {
        webhook_id: webhook_id.into(),
        attempt: n,
        at,
        status: Some(500),
        outcome: outcome.into(),
        error: None,
        duration_ms: 12,
        record_count: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_state_round_trip() {
    with_db(|db| async move {
        let t = tenant(&db).await;
        let s = &t.store;
        let mut first = batch(&t, "msg_1", 3);
        s.save_pending_batch(&first).await.unwrap();
        s.save_pending_batch(&batch(&t, "msg_other", 9)).await.unwrap();
        let saved = s.pending_batch(&t.app.id).await.unwrap().unwrap();
        assert_eq!(
            (saved.webhook_id.as_str(), &saved.body, &saved.ranges, &saved.records),
            ("msg_1", &first.body, &first.ranges, &first.records)
        );

        first.attempts = 1;
        first.last_error = Some("HTTP 500".into());
        s.save_pending_batch(&first).await.unwrap();
        s.record_attempt(&first, &attempt("msg_1", 1, "failed"), false).await.unwrap();
        let saved = s.pending_batch(&t.app.id).await.unwrap().unwrap();
        assert_eq!((saved.attempts, saved.last_error.as_deref()), (1, Some("HTTP 500")));

        s.record_attempt(&first, &attempt("msg_1", 2, "delivered"), true).await.unwrap();
        assert!(s.pending_batch(&t.app.id).await.unwrap().is_none());
        assert_eq!(s.cursors(&t.app.id).await.unwrap()[&t.org.id], 3);
        let log = s.delivery_log(&t.app.id, 10).await.unwrap();
        assert_eq!(log.iter().map(|a| a.attempt).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!((log[0].at, log[0].status, log[0].duration_ms), (attempt("", 0, "").at, Some(500), 12));

        s.advance_cursors(&t.app.id, &[CursorMove { org_id: t.org.id.clone(), to_seq: 2 }]).await.unwrap();
        assert_eq!(s.cursors(&t.app.id).await.unwrap()[&t.org.id], 3, "cursors never move back");

        let dead = batch(&t, "msg_2", 7);
        s.save_pending_batch(&dead).await.unwrap();
        s.bury_batch(&dead).await.unwrap();
        assert!(s.pending_batch(&t.app.id).await.unwrap().is_none());
        assert_eq!(s.cursors(&t.app.id).await.unwrap()[&t.org.id], 7);
        let letters = s.dead_letters(&t.app.id).await.unwrap();
        assert_eq!(
            (letters.len(), letters[0].body.clone(), letters[0].records.clone()),
            (1, dead.body.clone(), dead.records.clone())
        );
        assert!(s.take_resend_request(&t.app.id).await.unwrap().is_none());
        assert!(!s.request_resend("other-app", "msg_2").await.unwrap());
        assert!(s.request_resend(&t.app.id, "msg_2").await.unwrap());
        let taken = s.take_resend_request(&t.app.id).await.unwrap().unwrap();
        assert_eq!(taken.webhook_id, "msg_2");
        assert!(s.take_resend_request(&t.app.id).await.unwrap().is_none(), "a request is taken once");
        assert!(s.dead_letter(&t.app.id, "msg_2").await.unwrap().unwrap().resent_at.is_some());
        assert!(s.dead_letter("other-app", "msg_2").await.unwrap().is_none());

        s.set_endpoint_disabled(&t.app.id, Some("410 Gone")).await.unwrap();
        assert_eq!(s.get_app(&t.app.id).await.unwrap().unwrap().endpoint_disabled.as_deref(), Some("410 Gone"));

        let response = SavedResponse {
            fingerprint: "f".into(),
            status: 201,
            body: b"{}".to_vec(),
            created_at: jiff::Timestamp::from_second(5).unwrap(),
        };
        s.save_response(&t.app.id, "key-1", &response).await.unwrap();
        let replay = s.saved_response(&t.app.id, "key-1").await.unwrap().unwrap();
        assert_eq!((replay.status, replay.body, replay.created_at), (201, b"{}".to_vec(), response.created_at));
        assert!(s.saved_response(&t.app.id, "key-2").await.unwrap().is_none());
    })
    .await;
}

/// Two processes' stores: while one holds an app's delivery lease the other
/// cannot take it, until it is released (which wakes the other's workers)
/// or expires; of many simultaneous claims exactly one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_leases_have_one_holder_at_a_time() {
    with_db(|db| async move {
        let t = tenant(&db).await;
        let (a, b) = (t.store.clone(), Arc::new(PgStore::open(&db.app_url).await.unwrap()));
        let app = t.app.id.as_str();
        let long = Duration::from_secs(30);

        assert!(a.claim_app(app, "a", long).await.unwrap());
        assert!(a.claim_app(app, "a", long).await.unwrap(), "the holder renews");
        assert!(!b.claim_app(app, "b", long).await.unwrap(), "held by a");
        b.release_app(app, "b").await.unwrap();
        assert!(!b.claim_app(app, "b", long).await.unwrap(), "only the holder releases");

        let mut woken = b.commits();
        woken.borrow_and_update();
        a.release_app(app, "a").await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), woken.changed())
            .await
            .expect("a release wakes the other process")
            .unwrap();
        assert!(b.claim_app(app, "b", Duration::from_millis(300)).await.unwrap(), "free after release");
        assert!(!a.claim_app(app, "a", long).await.unwrap());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(a.claim_app(app, "a", long).await.unwrap(), "an expired lease is taken over");
        assert!(!b.claim_app(app, "b", long).await.unwrap());

        a.release_app(app, "a").await.unwrap();
        let mut claims = tokio::task::JoinSet::new();
        for i in 0..8 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let app = app.to_string();
            claims.spawn(async move { store.claim_app(&app, &format!("h{i}"), long).await.unwrap() });
        }
        let won = claims.join_all().await.into_iter().filter(|w| *w).count();
        assert_eq!(won, 1, "exactly one simultaneous claim wins");
    })
    .await;
}

/// Live processes share the apps: a free app goes to a process below its
/// share, and a process over its share is told so (to give idle apps up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_processes_share_the_apps() {
    with_db(|db| async move {
        let t = tenant(&db).await;
        let store = t.store.clone();
        let long = Duration::from_secs(30);
        let mut apps = vec![t.app.id.clone()];
        for i in 1..4 {
            let new = NewApp {
                name: format!("App {i}"),
                provider: format!("app{i}"),
                notification_url: None,
                entities: vec![],
            };
            apps.push(store.create_app(new, "whsec_test".into()).await.unwrap().0.id);
        }

        // Alone, a process may take every app.
        store.announce_holder("a", long).await.unwrap();
        for app in &apps {
            assert!(store.claim_app(app, "a", long).await.unwrap());
        }
        assert!(!store.over_share("a").await.unwrap());

        // A second process comes: "a" holds 4 of 4, its share is 2.
        store.announce_holder("b", long).await.unwrap();
        assert!(store.over_share("a").await.unwrap());
        assert!(store.claim_app(&apps[0], "a", long).await.unwrap(), "renewals go through over share");
        store.release_app(&apps[3], "a").await.unwrap();
        assert!(!store.claim_app(&apps[3], "a", long).await.unwrap(), "a does not take back what it gave up");
        assert!(store.claim_app(&apps[3], "b", long).await.unwrap());
        assert!(store.over_share("a").await.unwrap(), "3 of 4 is still over a share of 2");
        store.release_app(&apps[2], "a").await.unwrap();
        assert!(!store.over_share("a").await.unwrap());
        assert!(store.claim_app(&apps[2], "b", long).await.unwrap());
        assert!(!store.over_share("b").await.unwrap());

        // "b" retires and gives its apps up: "a" may take them all again.
        store.release_app(&apps[2], "b").await.unwrap();
        store.release_app(&apps[3], "b").await.unwrap();
        store.announce_holder("b", Duration::ZERO).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(store.claim_app(&apps[2], "a", long).await.unwrap());
        assert!(store.claim_app(&apps[3], "a", long).await.unwrap());
    })
    .await;
}
