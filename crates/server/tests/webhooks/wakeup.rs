//! Delivery wakes up on platform changes, not only on its poll.

use std::time::Duration;

use crate::common::eventually;
use crate::support::*;

#[tokio::test]
async fn a_freshly_registered_app_gets_its_first_webhook_without_waiting_for_the_poll() {
    // The poll alone would start the reader's task a minute from now.
    let s = setup_with(|c| c.delivery.poll_interval_ms = 60_000).await;
    let id = s.create_org_record("Prompt").await;

    eventually(Duration::from_secs(1), || async { s.receiver.records().into_iter().find(|(_, r)| hub_id(r) == id) })
        .await;
}
