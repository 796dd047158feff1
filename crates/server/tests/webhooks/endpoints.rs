//! How the hub treats what endpoints answer: redirects, 410 Gone,
//! Retry-After, and receivers that hang.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::receiver::Receiver;
use crate::common::{eventually, TestApp};
use crate::support::*;

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let s = setup().await;
    let target = Receiver::start().await;
    s.receiver.script_with_headers(302, &[("location", &target.url)]);
    let id = s.create_org_record("Not redirected").await;

    let received = wait_for_requests(&s.receiver, 2).await;
    assert_eq!(received[0].webhook_id(), received[1].webhook_id(), "the 302 counted as a failure and was retried");
    wait_for_record(&s.receiver, &id).await;
    let log = logged_attempts(&s.hub, &s.reader, &received[0].webhook_id(), 2).await;
    assert_eq!((log[0]["outcome"].as_str(), log[0]["status"].as_i64()), (Some("failed"), Some(302)));
    assert!(target.received().is_empty(), "the redirect target got a request");
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_re_enabling_resumes_where_it_stopped() {
    let s = setup().await;
    s.receiver.script(&[410]);
    let before = s.create_org_record("Refused with 410").await;
    let refused = wait_for_requests(&s.receiver, 1).await;
    let disabled = eventually(SOON, || async {
        Some(app_info(&s.hub, &s.reader).await).filter(|a| !a["endpoint_disabled"].is_null())
    })
    .await;
    assert!(disabled["endpoint_disabled"].as_str().unwrap().contains("410"), "{disabled}");

    let meanwhile = [s.create_org_record("Meanwhile 1").await, s.create_org_record("Meanwhile 2").await];
    assert_no_more_requests(&s.receiver, 1).await;

    set_endpoint_enabled(&s.hub, &s.reader, true).await;
    for id in meanwhile.iter().chain([&before]) {
        wait_for_record(&s.receiver, id).await;
    }
    let received = s.receiver.received();
    assert_eq!(received[1].webhook_id(), refused[0].webhook_id(), "the refused batch goes first, unchanged");
    assert_eq!(received[1].body, refused[0].body);
    let mut ids: Vec<String> = received[2..].iter().flat_map(|r| r.records()).map(|(_, r)| hub_id(&r)).collect();
    ids.sort();
    let mut expected = meanwhile.to_vec();
    expected.sort();
    assert_eq!(ids, expected, "each change made meanwhile exactly once");
    assert!(app_info(&s.hub, &s.reader).await["endpoint_disabled"].is_null());
    let log = logged_attempts(&s.hub, &s.reader, &refused[0].webhook_id(), 2).await;
    let summary: Vec<(i64, Option<&str>, Option<i64>)> =
        log.iter().map(|a| (a["attempt"].as_i64().unwrap(), a["outcome"].as_str(), a["status"].as_i64())).collect();
    assert_eq!(
        summary,
        vec![(1, Some("gone"), Some(410)), (2, Some("delivered"), Some(200))],
        "the 410 counts as the first attempt"
    );
}

#[tokio::test]
async fn retry_after_delays_the_next_try_beyond_the_schedule() {
    let s = setup().await;
    s.receiver.script_with_headers(503, &[("retry-after", "1")]);
    s.create_org_record("Please wait").await;

    wait_for_requests(&s.receiver, 1).await;
    let refused_at = Instant::now();
    let received = wait_for_requests(&s.receiver, 2).await;
    let waited = refused_at.elapsed();
    assert!(waited >= Duration::from_millis(900), "retried after {waited:?} despite Retry-After: 1");
    assert!(waited < Duration::from_secs(4), "retried only after {waited:?}");
    assert_eq!(received[0].webhook_id(), received[1].webhook_id());
}

#[tokio::test]
async fn a_new_url_or_re_enabling_tries_a_waiting_batch_at_once() {
    let s = setup().await;
    s.receiver.script_with_headers(503, &[("retry-after", "3600")]);
    let id = s.create_org_record("Waiting an hour").await;
    let first = wait_for_requests(&s.receiver, 1).await;

    // Turning the endpoint on again (even if it was never off) is the signal.
    set_endpoint_enabled(&s.hub, &s.reader, true).await;
    let received = wait_for_requests(&s.receiver, 2).await;
    assert_eq!(received[1].webhook_id(), first[0].webhook_id(), "the same batch, not an hour later");

    // A new URL too: the next batch, refused, is sent to the new receiver.
    s.receiver.script_with_headers(503, &[("retry-after", "3600")]);
    let version = s.rename(&id, "Moved").await;
    wait_for_requests(&s.receiver, 3).await;
    let moved = Receiver::start().await;
    let path = format!("/platform/v1/apps/{}", s.reader.api_id);
    let response =
        s.hub.admin(reqwest::Method::PATCH, &path).json(&json!({ "notification_url": moved.url })).send().await;
    assert_eq!(response.unwrap().status(), reqwest::StatusCode::OK);
    wait_for_version(&moved, &id, version).await;
}

#[tokio::test]
async fn a_hanging_receiver_never_holds_up_another_apps_webhooks() {
    let hub = TestApp::spawn_with(|c| c.delivery.timeout_secs = 2).await;
    let org = hub.create_org("Acme").await;
    let (hanging_url, accepted) = hanging_endpoint().await;
    let healthy = Receiver::start().await;
    let writer = hub.create_app("writer", &[("organizations", "rw")], None).await;
    let slow = hub.create_app("slow", &[("organizations", "rs")], Some(&hanging_url)).await;
    let fast = hub.create_app("fast", &[("organizations", "rs")], Some(&healthy.url)).await;
    let group = hub.install(&writer, &org).await;
    hub.install(&slow, &org).await;
    hub.install(&fast, &org).await;

    for i in 0..3 {
        let id = create(&hub, &writer, &group, "organizations", json!({ "name": format!("Org {i}") })).await;
        let written = Instant::now();
        eventually(Duration::from_millis(1500), || async {
            healthy.records().iter().any(|(_, r)| hub_id(r) == id).then_some(())
        })
        .await;
        assert!(written.elapsed() < Duration::from_millis(1500));
    }
    assert!(accepted.load(Ordering::SeqCst) >= 1, "the hanging endpoint was being tried meanwhile");
}
