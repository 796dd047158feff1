//! Failures and recovery: retries keep the message, restarts lose nothing,
//! versions never go back, exhausted batches become dead letters.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sharehub_delivery::schedule::RetrySchedule;

use crate::common::eventually;
use crate::support::*;

#[tokio::test]
async fn a_500_then_200_sends_the_same_message_twice_and_the_log_shows_both_attempts() {
    let s = setup().await;
    s.receiver.script(&[500, 200]);
    let id = s.create_org_record("Retried").await;

    let received = wait_for_requests(&s.receiver, 2).await;
    assert_eq!(received[0].webhook_id(), received[1].webhook_id(), "webhook-id stable across retries");
    assert!(received[0].webhook_id().starts_with("msg_"));
    assert_eq!(received[0].body, received[1].body, "same body on retry");
    assert_eq!(versions_of(&s.receiver, &id), vec![1, 1]);
    assert_no_more_requests(&s.receiver, 2).await;

    let log = logged_attempts(&s.hub, &s.reader, &received[0].webhook_id(), 2).await;
    let summary: Vec<(i64, String, Option<i64>)> = log
        .iter()
        .map(|a| (a["attempt"].as_i64().unwrap(), a["outcome"].as_str().unwrap().to_string(), a["status"].as_i64()))
        .collect();
    assert_eq!(summary, vec![(1, "failed".into(), Some(500)), (2, "delivered".into(), Some(200))]);
    assert_eq!(log[0]["record_count"], 1);
}

#[tokio::test]
async fn a_batch_tried_before_a_restart_is_retried_after_it_with_the_same_webhook_id() {
    let mut s = setup_with(|c| c.delivery.retry_schedule = "3s,3s,3s".into()).await;
    s.receiver.script(&[500]);
    let id = s.create_org_record("Across a restart").await;
    let failed = wait_for_requests(&s.receiver, 1).await;

    s.hub.restart().await;
    let received = wait_for_requests(&s.receiver, 2).await;
    assert_eq!(received[1].webhook_id(), failed[0].webhook_id());
    assert_eq!(received[1].body, failed[0].body);
    assert_eq!(versions_of(&s.receiver, &id), vec![1, 1]);
    let log = logged_attempts(&s.hub, &s.reader, &failed[0].webhook_id(), 2).await;
    assert_eq!(log.iter().map(|a| a["outcome"].as_str().unwrap()).collect::<Vec<_>>(), ["failed", "delivered"]);
}

#[tokio::test]
async fn a_change_committed_while_delivery_was_down_is_delivered_after_restart() {
    let mut s = setup_with(|c| c.delivery.enabled = false).await;
    let id = s.create_org_record("Committed, not yet sent").await;
    s.hub.stop().await;
    assert!(s.receiver.received().is_empty());

    s.hub.config.delivery.enabled = true;
    s.hub.restart().await;
    let record = wait_for_record(&s.receiver, &id).await;
    assert_eq!(record["name"], "Committed, not yet sent");
}

#[tokio::test]
async fn a_record_updated_quickly_through_failures_never_arrives_older_after_newer() {
    let s = setup().await;
    let id = s.create_org_record("v1").await;
    let mut last = 1;
    for i in 2..=25 {
        if i % 6 == 0 {
            s.receiver.script(&[500, 200, 500]);
        }
        last = s.rename(&id, &format!("v{i}")).await;
    }
    let record = wait_for_version(&s.receiver, &id, last).await;
    assert_eq!(record["name"], "v25");

    let seen = versions_of(&s.receiver, &id);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "versions went back: {seen:?}");
    for request in s.receiver.received() {
        let names: Vec<Value> = request.records().iter().map(|(_, r)| r["name"].clone()).collect();
        assert_eq!(names.len(), 1, "one record appears once per body: {names:?}");
    }
}

#[tokio::test]
async fn exhausted_retries_make_a_dead_letter_the_cursor_moves_on_and_a_resend_sends_the_present_state() {
    let s = setup().await;
    s.receiver.script(&[500, 500, 500, 500]);
    let id = s.create_org_record("Doomed").await;

    let letter = eventually(SOON, || async { dead_letters(&s.hub, &s.reader).await.into_iter().next() }).await;
    let tries = s.receiver.received();
    assert_eq!(tries.len(), 4, "1 try + 3 retries");
    assert!(tries.iter().all(|r| r.webhook_id() == tries[0].webhook_id()));
    assert_eq!(letter["webhook_id"], tries[0].webhook_id().as_str());
    assert_eq!(letter["attempts"], 4);
    assert_eq!(letter["record_count"], 1);
    assert!(letter["resent_at"].is_null());

    // The cursor moved on: the next change is delivered once the receiver recovers.
    let version = s.rename(&id, "Updated after").await;
    let next = wait_for_version(&s.receiver, &id, version).await;
    assert_eq!(next["name"], "Updated after");
    assert_no_more_requests(&s.receiver, 5).await;

    let old_id = tries[0].webhook_id();
    let path = format!("/platform/v1/apps/{}/dead-letters/{old_id}/resend", s.reader.api_id);
    let response = s.hub.admin(Method::POST, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["resend"]["queued"], true, "{report}");

    // The app's own delivery task sends it, as a new message.
    let received = wait_for_requests(&s.receiver, 6).await;
    let new_id = received[5].webhook_id();
    assert_ne!(new_id, old_id);
    let resent = received[5].records();
    assert_eq!(resent.len(), 1);
    assert_eq!((hub_id(&resent[0].1), resent[0].1["version"].as_i64()), (id, Some(version)), "present state");
    standardwebhooks::Webhook::new(&s.reader.webhook_secret)
        .unwrap()
        .verify(&received[5].body, &received[5].headers)
        .unwrap();
    let letter = dead_letters(&s.hub, &s.reader).await.into_iter().next().unwrap();
    assert!(!letter["resent_at"].is_null(), "{letter}");

    // A dead letter that does not exist is a 404.
    let missing = format!("/platform/v1/apps/{}/dead-letters/msg_nope/resend", s.reader.api_id);
    assert_eq!(s.hub.admin(Method::POST, &missing).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_dead_letter_of_an_entity_the_app_no_longer_reads_is_not_resent() {
    let s = setup().await;
    s.receiver.script(&[500, 500, 500, 500]);
    s.create_org_record("Doomed").await;
    let letter = eventually(SOON, || async { dead_letters(&s.hub, &s.reader).await.into_iter().next() }).await;

    // The reader loses organizations; it keeps people.
    let app_path = format!("/platform/v1/apps/{}", s.reader.api_id);
    let entities = serde_json::json!([{ "entity": "people", "read": true, "write": false, "subscribe": true }]);
    let response =
        s.hub.admin(Method::PATCH, &app_path).json(&serde_json::json!({ "entities": entities })).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK);

    let path = format!("{app_path}/dead-letters/{}/resend", letter["webhook_id"].as_str().unwrap());
    let response = s.hub.admin(Method::POST, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("nothing to resend"), "{body}");

    assert_no_more_requests(&s.receiver, 4).await;
    let letter = dead_letters(&s.hub, &s.reader).await.into_iter().next().unwrap();
    assert!(letter["resent_at"].is_null(), "not marked resent: {letter}");
}

#[tokio::test]
async fn updates_made_while_a_failed_batch_waits_for_its_retry_never_overtake_it() {
    // A retry a second away, and the worker woken every 100 ms (the poll)
    // meanwhile: each wake finds the failed batch pending and newer versions
    // of its record in the log, and must still wait for the retry.
    let s = setup_with(|c| c.delivery.retry_schedule = "1s,1s,1s".into()).await;
    s.receiver.script(&[500]);
    let id = s.create_org_record("v1").await;
    let failed = wait_for_requests(&s.receiver, 1).await;

    let mut last = 1;
    for i in 2..=6 {
        last = s.rename(&id, &format!("v{i}")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let record = wait_for_version(&s.receiver, &id, last).await;
    assert_eq!(record["name"], "v6");
    // The failed message is settled too (retried, or overtaken and retried later).
    let log = logged_attempts(&s.hub, &s.reader, &failed[0].webhook_id(), 2).await;
    assert_eq!(log[1]["outcome"], "delivered", "{log:?}");

    let seen = versions_of(&s.receiver, &id);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "an older version after a newer one: {seen:?}");
    assert_eq!(seen.last(), Some(&last), "the newest version last: {seen:?}");
    let received = s.receiver.received();
    assert_eq!(received[1].webhook_id(), failed[0].webhook_id(), "the retry is the next request: {seen:?}");
    assert_eq!(received[1].body, failed[0].body);
}

#[test]
fn the_shipped_retry_schedule_keeps_trying_for_at_least_a_day() {
    // A receiver down for a day must lose nothing, even with every delay
    // shortened by the jitter. Read from the shipped file, not the environment.
    use figment::providers::Format as _;
    use figment::providers::Toml;

    let text = sharehub_server::config::DEFAULT_CONFIG;
    let config: sharehub_server::Config =
        figment::Figment::from(Toml::string(text)).extract().expect("the shipped config");
    let schedule = RetrySchedule {
        delays: RetrySchedule::parse_delays(&config.delivery.retry_schedule).expect("a valid schedule"),
        jitter: config.delivery.jitter,
    };
    let shortest = schedule.total().mul_f64(1.0 - schedule.jitter.clamp(0.0, 1.0));
    assert!(shortest >= Duration::from_secs(24 * 3600), "{:?} retried for as little as {shortest:?}", schedule.delays);
}
