//! The connector's state file: the id map survives a reopen, versions only
//! go up, webhook ids are remembered, failures count up to a pause.

use sharehub_connector::state::{Link, State};

fn link(app_id: &str, hub_id: &str, version: i64) -> Link {
    Link {
        app_entity: "customers".into(),
        app_id: app_id.into(),
        hub_entity: "organizations".into(),
        hub_id: hub_id.into(),
        hub_version: version,
        fingerprint: format!("fp-{version}"),
    }
}

#[tokio::test]
async fn the_id_map_survives_a_reopen_and_finds_links_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let state = State::open(&path).await.unwrap();
        state.save_link("cld-1", &link("1", "hub-a", 3)).await.unwrap();
        state.save_link("cld-1", &link("5", "hub-a", 4)).await.unwrap();
        state.save_link("cld-2", &link("1", "hub-b", 1)).await.unwrap();
    }
    let state = State::open(&path).await.unwrap();
    let found = state.link_by_app("cld-1", "customers", "organizations", "1").await.unwrap().unwrap();
    assert_eq!(found.hub_id, "hub-a");
    let shared = state.links_by_hub("cld-1", "organizations", "hub-a").await.unwrap();
    assert_eq!(shared.len(), 2, "two customers of one company");
    assert!(state.link_by_app("cld-2", "customers", "organizations", "5").await.unwrap().is_none());
}

#[tokio::test]
async fn a_link_never_goes_back_to_an_older_version() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(&dir.path().join("state.db")).await.unwrap();
    state.save_link("cld-1", &link("1", "hub-a", 5)).await.unwrap();
    state.save_link("cld-1", &link("1", "hub-a", 2)).await.unwrap();
    let found = state.link_by_app("cld-1", "customers", "organizations", "1").await.unwrap().unwrap();
    assert_eq!(found.hub_version, 5);
}

#[tokio::test]
async fn webhook_ids_are_seen_once_unless_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(&dir.path().join("state.db")).await.unwrap();
    assert!(state.first_sight_of_webhook("msg_1").await.unwrap());
    assert!(!state.first_sight_of_webhook("msg_1").await.unwrap());
    state.forget_webhook("msg_1").await.unwrap();
    assert!(state.first_sight_of_webhook("msg_1").await.unwrap());
}

#[tokio::test]
async fn failures_count_up_and_a_success_or_resume_resets_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = State::open(&dir.path().join("state.db")).await.unwrap();
    assert_eq!(state.note_failure("cld-1", "hub down").await.unwrap(), 1);
    assert_eq!(state.note_failure("cld-1", "hub down").await.unwrap(), 2);
    state.set_paused("cld-1", true).await.unwrap();
    let status = state.status("cld-1").await.unwrap();
    assert!(status.paused);
    assert_eq!(status.last_error.as_deref(), Some("hub down"));
    state.set_paused("cld-1", false).await.unwrap();
    assert_eq!(state.status("cld-1").await.unwrap().failures, 0);
    state.note_failure("cld-1", "again").await.unwrap();
    state.note_success("cld-1").await.unwrap();
    assert_eq!(state.status("cld-1").await.unwrap().failures, 0);
}

/// A million links: lookups either way use the indexes (a few lookups of
/// a ms or less each, not a scan of the table).
#[tokio::test]
async fn lookups_stay_fast_at_a_million_links() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let state = State::open(&path).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
         INSERT INTO id_map SELECT 'cld-1', 'tracks', CAST(i AS TEXT), 'items', 'hub-' || i, 1, '' FROM n",
    )
    .execute(&pool)
    .await
    .unwrap();

    let started = std::time::Instant::now();
    for i in (1..=1_000_000).step_by(10_007) {
        let by_app = state.link_by_app("cld-1", "tracks", "items", &i.to_string()).await.unwrap().unwrap();
        let by_hub = state.links_by_hub("cld-1", "items", &by_app.hub_id).await.unwrap();
        assert_eq!(by_hub[0].app_id, i.to_string());
    }
    let per_pair = started.elapsed() / 100;
    assert!(per_pair < std::time::Duration::from_millis(20), "{per_pair:?} per pair of lookups");
}
