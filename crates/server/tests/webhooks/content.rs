//! What a webhook carries and who gets it: signatures, credentials, batching,
//! subscriptions, an app's own changes, text, archiving.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::receiver::Receiver;
use crate::common::TestApp;
use crate::support::*;

#[tokio::test]
async fn every_webhook_verifies_with_standardwebhooks_and_carries_the_readers_basic_credentials() {
    let s = setup().await;
    s.receiver.script(&[500]);
    let first = s.create_org_record("Signed first").await;
    let second = s.create_org_record("Signed second").await;
    wait_for_requests(&s.receiver, 2).await;
    wait_for_record(&s.receiver, &first).await;
    wait_for_record(&s.receiver, &second).await;

    let received = s.receiver.received();
    let verifier = standardwebhooks::Webhook::new(&s.reader.webhook_secret).unwrap();
    let stranger = standardwebhooks::Webhook::new(&s.writer.webhook_secret).unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", s.reader.api_id, s.reader.api_key));
    for request in &received {
        verifier.verify(&request.body, &request.headers).expect("signature verifies with the reader's secret");
        assert!(stranger.verify(&request.body, &request.headers).is_err(), "another app's secret must not verify");
        assert_eq!(request.headers["authorization"], format!("Basic {basic}").as_str());
        assert_eq!(request.headers["content-type"], "application/json");
    }
    let mut tampered = received[0].body.to_vec();
    tampered.push(b' ');
    assert!(verifier.verify(&tampered, &received[0].headers).is_err(), "a changed body must not verify");
}

#[tokio::test]
async fn one_post_carries_several_entities_and_both_organizations_each_with_the_readers_group_there() {
    let s = setup().await;
    let other_org = s.hub.create_org("Globex").await;
    let writer_other = s.hub.install(&s.writer, &other_org).await;
    let reader_other = s.hub.install(&s.reader, &other_org).await;
    let groups: HashMap<String, String> =
        [(s.org.clone(), s.reader_group.clone()), (other_org.clone(), reader_other.clone())].into();

    // Hold deliveries while writing, so the writes pile up behind the cursor.
    set_endpoint_enabled(&s.hub, &s.reader, false).await;
    let mut ids = HashSet::new();
    for (i, group) in [&s.writer_group, &writer_other].into_iter().enumerate() {
        ids.insert(create(&s.hub, &s.writer, group, "organizations", json!({ "name": format!("Org {i}") })).await);
        ids.insert(
            create(&s.hub, &s.writer, group, "people", json!({ "first_name": "Ada", "last_name": format!("L{i}") }))
                .await,
        );
        ids.insert(
            create(&s.hub, &s.writer, group, "people", json!({ "first_name": "Alan", "last_name": format!("T{i}") }))
                .await,
        );
    }
    set_endpoint_enabled(&s.hub, &s.reader, true).await;

    for id in &ids {
        wait_for_record(&s.receiver, id).await;
    }
    let received = s.receiver.received();
    let widest = received.iter().max_by_key(|r| r.records().len()).unwrap();
    let body = widest.json();
    assert!(
        body["organizations"].is_array() && body["people"].is_array(),
        "one body keyed by plural entity names: {body}"
    );
    let in_body: HashSet<String> =
        widest.records().iter().map(|(_, r)| r["group_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(in_body.len(), 2, "records of both groups in one body: {body}");
    for (entity, record) in s.receiver.records() {
        assert_eq!(record["resource_type"], entity.as_str());
        let org = record["channel_id"].as_str().unwrap();
        assert_eq!(record["group_id"].as_str(), groups.get(org).map(String::as_str), "group of the reader in {org}");
    }
}

#[tokio::test]
async fn many_writes_arrive_in_few_posts_of_at_most_batch_records_each_in_commit_order() {
    // No delivery worker runs while the writes are made, so all twelve wait
    // in the log when it starts. (Disabling the endpoint instead left a race:
    // a step that had read the app just before the PATCH could still send
    // the first one to four writes as a batch of their own.)
    let mut s = setup_with(|c| {
        c.delivery.batch_records = 5;
        c.delivery.enabled = false;
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(s.create_org_record(&format!("Batched {i}")).await);
    }
    s.hub.config.delivery.enabled = true;
    s.hub.restart().await;
    wait_for_record(&s.receiver, ids.last().unwrap()).await;

    let sizes: Vec<usize> = s.receiver.received().iter().map(|r| r.records().len()).collect();
    assert_eq!(sizes, vec![5, 5, 2], "batches of at most batch_records");
    let order: Vec<String> = s.receiver.records().iter().map(|(_, r)| hub_id(r)).collect();
    assert_eq!(order, ids, "records in commit order, each once");
}

#[tokio::test]
async fn an_app_never_receives_its_own_changes_but_receives_the_other_apps() {
    let hub = TestApp::spawn().await;
    let org = hub.create_org("Acme").await;
    let (rx_a, rx_b) = (Receiver::start().await, Receiver::start().await);
    let a = hub.create_app("app-a", &[("organizations", "rws")], Some(&rx_a.url)).await;
    let b = hub.create_app("app-b", &[("organizations", "rws")], Some(&rx_b.url)).await;
    let (group_a, group_b) = (hub.install(&a, &org).await, hub.install(&b, &org).await);

    let by_a = create(&hub, &a, &group_a, "organizations", json!({ "name": "Written by A" })).await;
    let by_b = create(&hub, &b, &group_b, "organizations", json!({ "name": "Written by B" })).await;
    let last_by_a = create(&hub, &a, &group_a, "organizations", json!({ "name": "A again" })).await;

    // Each cursor walks the log in order: once a later change arrived, the earlier ones were judged.
    wait_for_record(&rx_a, &by_b).await;
    wait_for_record(&rx_b, &last_by_a).await;
    wait_for_record(&rx_b, &by_a).await;
    let ids_a: Vec<String> = rx_a.records().iter().map(|(_, r)| hub_id(r)).collect();
    let ids_b: Vec<String> = rx_b.records().iter().map(|(_, r)| hub_id(r)).collect();
    assert!(!ids_a.contains(&by_a) && !ids_a.contains(&last_by_a), "A got its own change: {ids_a:?}");
    assert!(!ids_b.contains(&by_b), "B got its own change: {ids_b:?}");
}

#[tokio::test]
async fn only_entities_read_and_subscribed_are_sent() {
    let hub = TestApp::spawn().await;
    let org = hub.create_org("Acme").await;
    let receiver = Receiver::start().await;
    let writer = hub.create_app("writer", &[("organizations", "rw"), ("people", "rw"), ("items", "rw")], None).await;
    let reader = hub
        .create_app("reader", &[("organizations", "r"), ("items", "w"), ("people", "rs")], Some(&receiver.url))
        .await;
    let group = hub.install(&writer, &org).await;
    hub.install(&reader, &org).await;

    let readable_only = create(&hub, &writer, &group, "organizations", json!({ "name": "Not subscribed" })).await;
    let write_only = create(&hub, &writer, &group, "items", json!({ "name": "Not readable" })).await;
    let wanted = create(&hub, &writer, &group, "people", json!({ "first_name": "Grace", "last_name": "Hopper" })).await;

    wait_for_record(&receiver, &wanted).await;
    let got: Vec<(String, String)> = receiver.records().iter().map(|(e, r)| (e.clone(), hub_id(r))).collect();
    assert_eq!(got, vec![("people".to_string(), wanted)], "only people; not {readable_only} nor {write_only}");
    for request in receiver.received() {
        let body = request.json();
        assert!(body.get("organizations").is_none() && body.get("items").is_none(), "{body}");
    }
}

#[tokio::test]
async fn a_name_with_accents_cjk_and_an_emoji_arrives_byte_for_byte() {
    let s = setup().await;
    let name = "Société Générale – Zoë Ñandú 日本語の会社 🎉🚀";
    let id = s.create_org_record(name).await;
    let record = wait_for_record(&s.receiver, &id).await;
    assert_eq!(record["name"], name);
    let request =
        s.receiver.received().into_iter().find(|r| r.records().iter().any(|(_, rec)| hub_id(rec) == id)).unwrap();
    let raw = name.as_bytes();
    assert!(
        request.body.windows(raw.len()).any(|w| w == raw),
        "the UTF-8 bytes of the name, unescaped, in {:?}",
        String::from_utf8_lossy(&request.body)
    );
}

#[tokio::test]
async fn archiving_with_delete_notifies_subscribers_with_archived_true() {
    let s = setup().await;
    let id = s.create_org_record("Soon archived").await;
    let created = wait_for_record(&s.receiver, &id).await;
    assert!(created.get("archived").is_none(), "{created}");

    let status = delete(&s.hub, &s.writer, &s.writer_group, "organizations", &id).await;
    assert!(status == StatusCode::OK || status == StatusCode::NO_CONTENT, "{status}");
    let version = created["version"].as_i64().unwrap() + 1;
    let archived = wait_for_version(&s.receiver, &id, version).await;
    assert_eq!(archived["archived"], true, "{archived}");
}

#[tokio::test]
async fn a_version_a_batch_already_sent_is_not_sent_again_by_its_own_change() {
    // One record a batch: the first batch holds only the create, but sends
    // the record as it is by then, updated.
    let s = setup_with(|c| c.delivery.batch_records = 1).await;
    set_endpoint_enabled(&s.hub, &s.reader, false).await;
    let id = s.create_org_record("First name").await;
    let version = s.rename(&id, "Second name").await;
    let other = s.create_org_record("Another").await;
    set_endpoint_enabled(&s.hub, &s.reader, true).await;

    wait_for_record(&s.receiver, &other).await;
    assert_no_more_requests(&s.receiver, 2).await;
    let sent: Vec<(String, i64)> =
        s.receiver.records().iter().map(|(_, r)| (hub_id(r), r["version"].as_i64().unwrap())).collect();
    assert_eq!(sent, [(id, version), (other, 1)], "the update's change added nothing new");
}
