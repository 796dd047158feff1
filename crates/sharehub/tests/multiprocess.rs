//! Three real `sharehub serve` processes on one PostgreSQL database share
//! webhook delivery: one at a time delivers the app, and killing it loses
//! nothing.
//!
//! Skipped (with a message) unless `SHAREHUB_TEST_POSTGRES_URL` names a
//! superuser connection, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
//! The test creates its own database (migrated by the superuser, used by the
//! role `sharehub_app` as in `crates/store/tests/postgres.rs`), starts three
//! hubs on it and a slow webhook receiver, writes records through all of
//! them, SIGKILLs the process holding the app's lease while a POST is in
//! flight, then SIGTERMs the next holder, and checks that every record
//! arrived in its last version, that the batch cut by the kill was resent
//! under the same webhook-id and body, that no two POSTs overlapped, and
//! that per record versions never went down. It drops the database at the end.

#[path = "support/hub_process.rs"]
mod hub_process;

use hub_process::{admin, hub_id, register, write, Hub, Writer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tokio::sync::mpsc;

const APP_ROLE: &str = "sharehub_app";
/// The whole test, processes included, must end within this.
const DEADLINE: Duration = Duration::from_secs(90);
/// How long the receiver holds each POST once the first holder is killed,
/// so that deliveries are in flight.
const SLOW_ANSWER: Duration = Duration::from_millis(300);
/// The hubs' delivery lease; a SIGKILLed holder is replaced after this.
const LEASE_MS: u64 = 4000;
const RECORDS: usize = 12;

// --- database ---------------------------------------------------------------

/// The test's database: superuser and hub URLs.
#[derive(Clone)]
struct Db {
    name: String,
    base_url: String,
    admin_url: String,
    app_url: String,
}

fn base_url() -> Option<String> {
    let url = std::env::var("SHAREHUB_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipped: set SHAREHUB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres to run the multi-process test");
    }
    url
}

/// The URL with another user and database (keeps host, port and options).
fn with_user_db(url: &str, user: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("URL has a scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let (host, query) = host.split_once('?').map_or((host, ""), |(h, q)| (h, q));
    let host = host.split_once('/').map_or(host, |(h, _)| h);
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    format!("{scheme}://{user}@{host}/{db}{query}")
}

async fn create_db(base: &str) -> Db {
    let name = format!("sharehub_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(base).await.expect("connecting as the superuser");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let role = format!(
        "DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    );
    sqlx::query(&role).execute(&mut conn).await.unwrap();
    let user = base.split_once("://").and_then(|(_, r)| r.split_once('@')).map_or("postgres", |(u, _)| u);
    let db = Db {
        admin_url: with_user_db(base, user, &name),
        app_url: with_user_db(base, APP_ROLE, &name),
        base_url: base.to_string(),
        name,
    };
    sharehub_store::postgres::PgStore::migrate(&db.admin_url).await.unwrap();
    let mut conn = PgConnection::connect(&db.admin_url).await.unwrap();
    let grant = format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}");
    sqlx::query(&grant).execute(&mut conn).await.unwrap();
    db
}

async fn drop_db(db: &Db) {
    let mut conn = PgConnection::connect(&db.base_url).await.expect("connecting as the superuser");
    sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", db.name)).execute(&mut conn).await.unwrap();
}

/// The pid in the holder id (`hostname-pid-uuid`) of the app's delivery lease.
async fn lease_holder_pid(db: &Db, app_id: &str) -> Option<u32> {
    let mut conn = PgConnection::connect(&db.admin_url).await.unwrap();
    let holder: Option<String> = sqlx::query_scalar("SELECT holder FROM delivery_leases WHERE app_id = $1")
        .bind(app_id)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    holder?.rsplit('-').nth(1)?.parse().ok()
}

// --- hub processes ----------------------------------------------------------

fn spawn_hub(db: &Db, dir: &Path, index: usize) -> Hub {
    let settings = [
        ("SHAREHUB_DELIVERY__RETRY_SCHEDULE", "100ms,200ms,500ms,1s,2s,2s,2s".to_string()),
        ("SHAREHUB_DELIVERY__POLL_INTERVAL_MS", "200".to_string()),
        ("SHAREHUB_DELIVERY__LEASE_MS", LEASE_MS.to_string()),
        ("SHAREHUB_DELIVERY__BATCH_RECORDS", "3".to_string()),
        ("SHAREHUB_DELIVERY__TIMEOUT_SECS", "5".to_string()),
        ("RUST_LOG", "info,sharehub_delivery=debug".to_string()),
    ];
    hub_process::spawn_hub(&db.app_url, dir.join(format!("hub-{index}.log")), &settings)
}

// --- receiver ---------------------------------------------------------------

/// One POST the receiver got, in arrival order.
#[derive(Clone)]
struct Arrival {
    webhook_id: String,
    body: Bytes,
}

#[derive(Default)]
struct Tally {
    arrivals: Mutex<Vec<Arrival>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    answering: AtomicBool,
}

/// Counts a POST in flight until dropped, even if the sender vanishes.
struct InFlight<'a>(&'a Tally);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

type ReceiverState = (Arc<Tally>, mpsc::UnboundedSender<String>);

async fn receive(State((tally, tx)): State<ReceiverState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let webhook_id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let now = tally.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    tally.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&tally);
    tally.arrivals.lock().unwrap().push(Arrival { webhook_id: webhook_id.clone(), body });
    let _ = tx.send(webhook_id);
    // Until the first holder is killed nothing is answered, so it dies with
    // its first batch in flight however slow the machine is.
    while !tally.answering.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(SLOW_ANSWER).await;
    StatusCode::OK
}

/// Starts the receiver; answers its URL and the webhook-ids as they arrive.
async fn start_receiver(tally: Arc<Tally>) -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state((tally, tx));
    let url = hub_process::serve_receiver(app).await;
    (url, rx)
}

/// The hub id and version of every record of a webhook body, in body order.
fn versions(body: &[u8]) -> Vec<(String, i64)> {
    let body: Value = serde_json::from_slice(body).expect("webhook body is JSON");
    let records = body["organizations"].as_array().cloned().unwrap_or_default();
    records.iter().map(|r| (hub_id(r), r["version"].as_i64().expect("version"))).collect()
}

// --- the test ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_delivering_process_loses_no_record() {
    let Some(base) = base_url() else { return };
    let db = create_db(&base).await;
    let scenario = tokio::spawn(scenario(db.clone()));
    let abort = scenario.abort_handle();
    let outcome = tokio::time::timeout(DEADLINE, scenario).await;
    abort.abort();
    drop_db(&db).await;
    match outcome {
        Err(_) => panic!("the multi-process test did not end within {DEADLINE:?}"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(other) => other.expect("the scenario ran"),
    }
}

/// The state the scenario builds up.
struct Run {
    db: Db,
    client: reqwest::Client,
    hubs: Vec<Hub>,
    writer: Writer,
    reader_id: String,
    tally: Arc<Tally>,
    arrived: mpsc::UnboundedReceiver<String>,
    /// Hub id -> last version written.
    last: HashMap<String, i64>,
    _dir: tempfile::TempDir,
}

async fn scenario(db: Db) {
    let mut run = start(db).await;
    run.write_round(None).await;

    // SIGKILL the holder while its first POST is in flight.
    let cut = run.next_arrival().await;
    let killed = run.take_holder().await;
    let mut killed_hub = run.hubs.remove(killed);
    killed_hub.child.kill().unwrap();
    killed_hub.exited().await;
    run.tally.answering.store(true, Ordering::SeqCst);
    // Only the first batch went out (again after a timeout, if the machine
    // was slow), and nothing answered it.
    let before_kill: Vec<String> = run.tally.arrivals.lock().unwrap().iter().map(|a| a.webhook_id.clone()).collect();
    assert!(before_kill.iter().all(|id| *id == cut), "one batch before the kill: {before_kill:?}");
    while run.arrived.try_recv().is_ok() {}
    run.write_round(Some(2)).await;

    // The next holder resends the cut batch, then goes on; SIGTERM it.
    run.next_arrival().await;
    let stopped = run.take_holder().await;
    let mut stopped_hub = run.hubs.remove(stopped);
    stopped_hub.terminate().await;
    let exited = Instant::now();
    // What arrived before the exit is not the next holder's work.
    while run.arrived.try_recv().is_ok() {}
    run.write_round(Some(3)).await;
    run.next_arrival().await;
    let takeover = exited.elapsed();

    run.wait_for_last_versions().await;
    run.check(&cut, before_kill.len(), takeover);
}

async fn start(db: Db) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let tally = Arc::new(Tally::default());
    let (url, arrived) = start_receiver(tally.clone()).await;
    let mut hubs: Vec<Hub> = (0..3).map(|i| spawn_hub(&db, dir.path(), i)).collect();
    for hub in &mut hubs {
        hub.wait_ready(&client).await;
    }
    let org = admin(&client, &hubs[0], "/platform/v1/orgs", json!({ "name": "Acme" })).await;
    let org = org["org"]["id"].as_str().unwrap().to_string();
    let writer = register(&client, &hubs[0], &org, "writer", None).await;
    let reader = register(&client, &hubs[0], &org, "reader", Some(&url)).await;
    Run { db, client, hubs, writer, reader_id: reader.api_id, tally, arrived, last: HashMap::new(), _dir: dir }
}

impl Run {
    /// Creates the records (`None`) or renames them all to `round`, through
    /// every live hub in turn.
    async fn write_round(&mut self, round: Option<u32>) {
        let ids: Vec<Option<String>> = match round {
            None => vec![None; RECORDS],
            Some(_) => self.last.keys().cloned().map(Some).collect(),
        };
        for (i, id) in ids.into_iter().enumerate() {
            let hub = &self.hubs[i % self.hubs.len()];
            let name = format!("record {i} round {}", round.unwrap_or(1));
            let (id, version) = write(&self.client, hub, &self.writer, id.as_deref(), &name).await;
            self.last.insert(id, version);
        }
    }

    async fn next_arrival(&mut self) -> String {
        let next = tokio::time::timeout(Duration::from_secs(30), self.arrived.recv()).await;
        next.expect("a webhook arrives").expect("the receiver runs")
    }

    /// The index in `hubs` of the process holding the reader's lease.
    async fn take_holder(&self) -> usize {
        let pid = lease_holder_pid(&self.db, &self.reader_id).await.expect("someone holds the lease");
        self.hubs.iter().position(|h| h.child.id() == pid).unwrap_or_else(|| panic!("no live hub has pid {pid}"))
    }

    async fn wait_for_last_versions(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(40);
        while !self.missing().is_empty() {
            assert!(
                Instant::now() < deadline,
                "never arrived in their last version: {:?}\n{}",
                self.missing(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Records whose last version has not arrived yet.
    fn missing(&self) -> Vec<String> {
        let mut seen: HashMap<String, i64> = HashMap::new();
        for arrival in self.tally.arrivals.lock().unwrap().iter() {
            for (id, version) in versions(&arrival.body) {
                let best = seen.entry(id).or_default();
                *best = (*best).max(version);
            }
        }
        self.last.iter().filter(|(id, v)| seen.get(*id) < Some(v)).map(|(id, _)| id.clone()).collect()
    }

    fn check(&self, cut: &str, by_killed: usize, takeover: Duration) {
        let arrivals = self.tally.arrivals.lock().unwrap().clone();
        let cut_count = arrivals.iter().filter(|a| a.webhook_id == cut).count();
        eprintln!(
            "{} POSTs, the cut batch {cut} arrived {cut_count} times, takeover after SIGTERM in {takeover:?}",
            arrivals.len()
        );
        let resends: Vec<&Arrival> = arrivals.iter().filter(|a| a.webhook_id == cut).collect();
        assert!(resends.len() > by_killed, "the batch cut by SIGKILL ({cut}) is sent again");
        assert!(resends.iter().all(|a| a.body == resends[0].body), "a resent batch keeps its body");
        assert_eq!(self.tally.most_in_flight.load(Ordering::SeqCst), 1, "two processes sent at once");
        check_versions_only_go_up(&arrivals);
        let limit = Duration::from_millis(LEASE_MS / 4);
        assert!(takeover < limit, "after a graceful stop another hub took over in {takeover:?}, not at once");
    }

    fn logs(&self) -> String {
        self.hubs.iter().map(Hub::logs).collect::<Vec<_>>().join("\n---\n")
    }
}

/// Per record, the versions a receiver sees never go down.
fn check_versions_only_go_up(arrivals: &[Arrival]) {
    let mut latest: HashMap<String, i64> = HashMap::new();
    for arrival in arrivals {
        for (id, version) in versions(&arrival.body) {
            let before = latest.insert(id.clone(), version).unwrap_or(0);
            assert!(version >= before, "record {id} went from version {before} to {version} ({})", arrival.webhook_id);
        }
    }
}

// --- concurrent creates across processes -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_external_id_posted_to_three_processes_makes_one_record() {
    let Some(base) = base_url() else { return };
    let db = create_db(&base).await;
    let outcome = tokio::time::timeout(DEADLINE, tokio::spawn(converge(db.clone()))).await;
    drop_db(&db).await;
    match outcome {
        Err(_) => panic!("the test did not end within {DEADLINE:?}"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(other) => other.expect("the scenario ran"),
    }
}

async fn converge(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut hubs: Vec<Hub> = (0..3).map(|i| spawn_hub(&db, dir.path(), i)).collect();
    for hub in &mut hubs {
        hub.wait_ready(&client).await;
    }
    let org = admin(&client, &hubs[0], "/platform/v1/orgs", json!({ "name": "Converge" })).await;
    let writer = register(&client, &hubs[0], org["org"]["id"].as_str().unwrap(), "crm", None).await;

    let posts = (0..30).map(|i| hub_process::post_external_id(&client, &hubs[i % 3], &writer, "crm", "1001"));
    let answers: Vec<(u16, String)> = futures::future::join_all(posts).await;

    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 1, "exactly one create: {answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == 201 || *s == 200), "{answers:?}");
    let ids: std::collections::HashSet<&String> = answers.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 1, "every process answered the same record: {answers:?}");

    let list = hub_process::list_organizations(&client, &hubs[2], &writer, "").await;
    assert_eq!(list["pagination"]["total"], 1, "{list}");

    idempotency_keys_hold_across_processes(&client, &hubs, &writer).await;
}

/// The same Idempotency-Key sent to three processes at once: one of them
/// writes, the others answer 409 (still running) or replay the answer.
async fn idempotency_keys_hold_across_processes(client: &reqwest::Client, hubs: &[Hub], w: &Writer) {
    for round in 0..10 {
        let key = format!("import-{round}");
        let posts = (0..3).map(|i| {
            let (client, hub, w, key) = (client.clone(), hubs[i].base.clone(), w.clone(), key.clone());
            tokio::spawn(async move {
                let record = json!({ "organizations": { "name": key } });
                let response = client
                    .post(format!("{hub}/api/v2/{}/organizations", w.group))
                    .basic_auth(&w.api_id, Some(&w.api_key))
                    .header("idempotency-key", &key)
                    .json(&record)
                    .send()
                    .await
                    .unwrap();
                response.status().as_u16()
            })
        });
        let statuses: Vec<u16> = futures::future::join_all(posts).await.into_iter().map(Result::unwrap).collect();
        assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
        assert!(statuses.contains(&201), "{statuses:?}");
    }
    let list = hub_process::list_organizations(client, &hubs[0], w, "&$filter=name ne 'Acme'").await;
    assert_eq!(list["pagination"]["total"], 10, "one record per key: {list}");
}
