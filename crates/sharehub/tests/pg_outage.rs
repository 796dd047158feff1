//! The database goes away mid-load: a real `sharehub serve` process on
//! PostgreSQL keeps answering, recovers by itself, and loses no acknowledged
//! write.
//!
//! Skipped (with a message) unless `SHAREHUB_TEST_POSTGRES_URL` names a
//! superuser connection, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
//! The test creates its own database ([`TestDb`]), starts one hub on it as
//! the role `sharehub_app`, and runs a writer that POSTs one organization at
//! a time, each under its own external id, so that retrying a POST is
//! idempotent. Mid-load it cuts the database off for [`OUTAGE`] without
//! restarting the server (`ALLOW_CONNECTIONS false` and every hub backend
//! terminated), then lets connections in again. It checks that:
//!
//! 1. during the outage the hub answers 503 with the contract's JSON error
//!    body, never a 500 or anything else, every answer comes before the
//!    request timeout, `/health/ready` answers 503, and the process lives;
//! 2. once the database is back, writes succeed again within
//!    [`RECOVERY_LIMIT`] and `/health/ready` answers 200, with no restart;
//! 3. every write answered 2xx is in the database afterwards, once.
//!
//! The database is dropped at the end, whatever happened.

#[path = "support/hub_process.rs"]
mod hub_process;

use hub_process::{admin, Hub};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use sharehub_store::test_support::{self, TestDb};
use sqlx::{Connection, PgConnection};

/// The whole test, process included, must end within this.
const DEADLINE: Duration = Duration::from_secs(60);
/// How long the database refuses connections.
const OUTAGE: Duration = Duration::from_secs(2);
/// The hub's request timeout: no answer may take longer (then 408).
const REQUEST_TIMEOUT_SECS: u64 = 5;
/// How soon after the database is back a write must succeed again.
const RECOVERY_LIMIT: Duration = Duration::from_secs(10);
/// Writes acknowledged before the cut, so that the load is under way.
const WRITES_BEFORE_CUT: usize = 20;
/// Pause before retrying a refused write, as a polite client would.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

// --- the hub process ----------------------------------------------------------

fn spawn_hub(db: &TestDb, dir: &Path) -> Hub {
    let settings =
        [("SHAREHUB_REQUEST_TIMEOUT_SECS", REQUEST_TIMEOUT_SECS.to_string()), ("RUST_LOG", "info".to_string())];
    hub_process::spawn_hub(&db.app_url, dir.join("hub.log"), &settings)
}

/// The status of `GET /health/ready`, or `None` when no answer came; a 503
/// must carry the contract's body.
async fn ready_status(client: &reqwest::Client, hub: &Hub) -> Option<StatusCode> {
    let response = client.get(format!("{}/health/ready", hub.base)).send().await.ok()?;
    let status = response.status();
    let body = response.bytes().await.ok()?;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(is_unavailable_body(&body), "/health/ready answered 503 with {}", String::from_utf8_lossy(&body));
    }
    Some(status)
}

/// `{"errors":[{"status":"503","code":"service-unavailable",…}]}`.
fn is_unavailable_body(body: &[u8]) -> bool {
    let Ok(body) = serde_json::from_slice::<Value>(body) else { return false };
    let error = &body["errors"][0];
    error["status"] == "503" && error["code"] == "service-unavailable" && error["title"].is_string()
}

// --- the database's outage ------------------------------------------------------

/// Makes the test database refuse new connections and ends the hub's.
async fn cut_off(db: &TestDb) {
    let mut conn = PgConnection::connect(&db.base_url).await.expect("connecting as the superuser");
    let refuse = format!("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false", db.name);
    sqlx::query(&refuse).execute(&mut conn).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db.name)
    .execute(&mut conn)
    .await
    .unwrap();
}

/// Lets connections to the test database in again.
async fn bring_back(db: &TestDb) {
    let mut conn = PgConnection::connect(&db.base_url).await.expect("connecting as the superuser");
    let allow = format!("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true", db.name);
    sqlx::query(&allow).execute(&mut conn).await.unwrap();
}

/// The external ids of the organization records in the database, read as
/// the superuser (past row-level security), and the number of such records.
async fn stored_writes(db: &TestDb) -> (BTreeSet<String>, i64) {
    let mut conn = PgConnection::connect(&db.admin_url).await.unwrap();
    let linked: Vec<String> = sqlx::query_scalar(
        "SELECT l.external_id FROM id_links l \
         JOIN records r ON r.org_id = l.org_id AND r.id = l.record_id \
         WHERE l.entity = 'organizations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let records: i64 = sqlx::query_scalar("SELECT count(*) FROM records WHERE entity = 'organizations'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    (linked.into_iter().collect(), records)
}

// --- the writer -------------------------------------------------------------------

/// The app that writes and the group it writes in.
#[derive(Clone)]
struct Writer {
    provider: String,
    api_id: String,
    api_key: String,
    group: String,
}

/// What the writer saw.
#[derive(Default)]
struct Tally {
    /// The external ids answered 2xx, with when.
    acked: Vec<(u64, Instant)>,
    /// When the 503s (with the contract's body) came.
    unavailable: Vec<Instant>,
    /// Anything else: other statuses, bad 503 bodies, no answer.
    unexpected: Vec<String>,
    slowest: Duration,
}

impl Tally {
    fn acked_after(&self, since: Instant) -> Option<Instant> {
        self.acked.iter().map(|(_, at)| *at).find(|at| *at > since)
    }
}

/// POSTs organizations `0, 1, 2, …` one at a time until `stop`, retrying
/// each until it is acknowledged.
async fn write_loop(
    client: reqwest::Client,
    base: String,
    writer: Writer,
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let answer = post(&client, &base, &writer, n).await;
        let acked = note(&mut tally.lock().unwrap(), n, started, answer);
        if acked {
            n += 1;
        } else {
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// POSTs organization `n` under the writer's external id `n`.
async fn post(client: &reqwest::Client, base: &str, w: &Writer, n: u64) -> reqwest::Result<(StatusCode, Vec<u8>)> {
    let record = json!({ "name": format!("org {n}"), "id": [{ "provider": w.provider, "id": n.to_string() }] });
    let response = client
        .post(format!("{base}/api/v2/{}/organizations", w.group))
        .basic_auth(&w.api_id, Some(&w.api_key))
        .header("content-type", "application/vnd.api+json")
        .json(&json!({ "organizations": record }))
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.bytes().await?.to_vec()))
}

/// Records one answer; tells whether the write was acknowledged.
fn note(tally: &mut Tally, n: u64, started: Instant, answer: reqwest::Result<(StatusCode, Vec<u8>)>) -> bool {
    tally.slowest = tally.slowest.max(started.elapsed());
    match answer {
        Ok((status, _)) if status.is_success() => {
            tally.acked.push((n, Instant::now()));
            return true;
        }
        Ok((StatusCode::SERVICE_UNAVAILABLE, body)) if is_unavailable_body(&body) => {
            tally.unavailable.push(Instant::now());
        }
        Ok((status, body)) => tally.unexpected.push(format!("org {n}: {status} {}", String::from_utf8_lossy(&body))),
        Err(e) => tally.unexpected.push(format!("org {n}: no answer after {:?}: {e}", started.elapsed())),
    }
    false
}

// --- platform calls -----------------------------------------------------------------

/// Registers an app that writes organizations and installs it in a new
/// organization.
async fn register_writer(client: &reqwest::Client, hub: &Hub) -> Writer {
    let org = admin(client, hub, "/platform/v1/orgs", json!({ "name": "Acme" })).await;
    let org = org["org"]["id"].as_str().unwrap();
    let access = json!({ "entity": "organizations", "read": true, "write": true, "subscribe": false });
    let app = json!({ "name": "writer", "provider": "writer", "notification_url": null, "entities": [access] });
    let created = admin(client, hub, "/platform/v1/apps", app).await;
    let secrets = &created["secrets"];
    let (api_id, api_key) = (secrets["api_id"].as_str().unwrap(), secrets["api_key"].as_str().unwrap());
    let installed = admin(client, hub, "/platform/v1/groups", json!({ "app_id": api_id, "org_id": org })).await;
    Writer {
        provider: "writer".into(),
        api_id: api_id.into(),
        api_key: api_key.into(),
        group: installed["group"]["id"].as_str().unwrap().into(),
    }
}

// --- the test -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_rides_out_a_database_outage() {
    let Some(base) = test_support::base_url_from_env() else {
        eprintln!("skipped: set SHAREHUB_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres to run the outage test");
        return;
    };
    let db = TestDb::create(&base).await.expect("creating the test database");
    let scenario = tokio::spawn(scenario(db.clone()));
    let abort = scenario.abort_handle();
    let outcome = tokio::time::timeout(DEADLINE, scenario).await;
    abort.abort();
    db.drop_database().await.expect("dropping the test database");
    match outcome {
        Err(_) => panic!("the outage test did not end within {DEADLINE:?}"),
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(other) => other.expect("the scenario ran"),
    }
}

/// What the outage looked like from outside.
struct Observed {
    cut_at: Instant,
    back_at: Instant,
    /// `/health/ready` statuses polled during the outage.
    ready_during: Vec<(Duration, Option<StatusCode>)>,
}

async fn scenario(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(REQUEST_TIMEOUT_SECS + 3);
    let client = reqwest::Client::builder().timeout(timeout).build().unwrap();
    let mut hub = spawn_hub(&db, dir.path());
    hub.wait_ready(&client).await;
    let writer = register_writer(&client, &hub).await;

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(write_loop(client.clone(), hub.base.clone(), writer, tally.clone(), stop.clone()));
    wait_for(&tally, &hub, "the writes before the cut", |t| t.acked.len() >= WRITES_BEFORE_CUT).await;

    let observed = outage(&db, &client, &hub).await;
    wait_for(&tally, &hub, "a write after the outage", |t| t.acked_after(observed.back_at).is_some()).await;
    let ready_again = wait_ready_again(&client, &hub, observed.back_at).await;
    // Keep writing a little on the recovered pool.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    load.await.expect("the writer ran");

    hub.assert_alive();
    let tally = std::mem::take(&mut *tally.lock().unwrap());
    check_answers(&tally, &observed, ready_again, &hub);
    check_no_acked_write_lost(&db, &tally).await;
}

/// Cuts the database off for [`OUTAGE`], polling `/health/ready` meanwhile.
async fn outage(db: &TestDb, client: &reqwest::Client, hub: &Hub) -> Observed {
    cut_off(db).await;
    let cut_at = Instant::now();
    let mut ready_during = Vec::new();
    while cut_at.elapsed() < OUTAGE {
        ready_during.push((cut_at.elapsed(), ready_status(client, hub).await));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bring_back(db).await;
    Observed { cut_at, back_at: Instant::now(), ready_during }
}

/// Waits until `done` holds for what the writer saw, at most [`RECOVERY_LIMIT`].
async fn wait_for(tally: &Mutex<Tally>, hub: &Hub, what: &str, done: impl Fn(&Tally) -> bool) {
    let deadline = Instant::now() + RECOVERY_LIMIT;
    while !done(&tally.lock().unwrap()) {
        if Instant::now() > deadline {
            let unexpected = tally.lock().unwrap().unexpected.clone();
            panic!("no {what} within {RECOVERY_LIMIT:?}; unexpected answers {unexpected:#?}\n{}", hub.logs());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How long after the database came back `/health/ready` answered 200.
async fn wait_ready_again(client: &reqwest::Client, hub: &Hub, back_at: Instant) -> Duration {
    while ready_status(client, hub).await != Some(StatusCode::OK) {
        assert!(back_at.elapsed() < RECOVERY_LIMIT, "/health/ready not 200 again:\n{}", hub.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    back_at.elapsed()
}

/// Only 2xx and proper 503s, all in time, 503s during the outage, and
/// `/health/ready` down while the database was.
fn check_answers(tally: &Tally, observed: &Observed, ready_again: Duration, hub: &Hub) {
    let recovered = tally.acked_after(observed.back_at).unwrap() - observed.back_at;
    let refused = tally.unavailable.iter().filter(|at| **at > observed.cut_at && **at < observed.back_at).count();
    eprintln!(
        "{} writes acknowledged, {} answered 503 ({refused} during the outage), slowest answer {:?}; \
         writes again {recovered:?} and ready again {ready_again:?} after the database came back; ready during: {:?}",
        tally.acked.len(),
        tally.unavailable.len(),
        tally.slowest,
        observed.ready_during,
    );
    assert!(tally.unexpected.is_empty(), "answers other than 2xx or 503: {:#?}\n{}", tally.unexpected, hub.logs());
    assert!(tally.slowest < Duration::from_secs(REQUEST_TIMEOUT_SECS), "an answer took {:?}", tally.slowest);
    assert!(refused > 0, "no write was refused with 503 during the outage");
    // pg_terminate_backend only signals: allow the hub's backends a moment to go.
    let settled = observed.ready_during.iter().filter(|(at, _)| *at > Duration::from_millis(300));
    for (at, status) in settled {
        assert_eq!(*status, Some(StatusCode::SERVICE_UNAVAILABLE), "/health/ready {at:?} into the outage");
    }
}

/// Every acknowledged write is stored, and retries made no duplicates.
async fn check_no_acked_write_lost(db: &TestDb, tally: &Tally) {
    let (stored, records) = stored_writes(db).await;
    let lost: Vec<u64> = tally.acked.iter().map(|(n, _)| *n).filter(|n| !stored.contains(&n.to_string())).collect();
    assert!(lost.is_empty(), "acknowledged writes missing from the database: {lost:?}");
    assert_eq!(records, stored.len() as i64, "one record per external id, retries included");
}
