//! Catching up from the hub's change feed: every change after the saved seq,
//! in order, applied as a webhook would be. This is also the hub-to-app half
//! of the initial import (the feed from 0 holds every record), and what
//! repairs the webhooks missed while the connector was down.

use crate::connector::Connector;
use crate::error::Result;

const FEED: &str = "feed";

impl Connector {
    /// Applies the organization's hub changes since the saved cursor,
    /// saving it after each page.
    #[tracing::instrument(skip_all, fields(group))]
    pub async fn catch_up(&self, group: &str) -> Result<()> {
        let mut after: i64 = self.load_cursor(group, FEED).await?.unwrap_or(0);
        loop {
            let page = self.inner.hub.changes(group, after, self.inner.options.page_size.max(1)).await?;
            let records: Vec<(&str, &serde_json::Value)> = page
                .changes
                .iter()
                .filter(|c| !c.own && !c.record.is_null())
                .map(|c| (c.entity.as_str(), &c.record))
                .collect();
            self.apply_hub_records(group, &records).await?;
            after = page.next_after;
            self.save_cursor(group, FEED, &after).await?;
            if !page.has_more {
                return Ok(());
            }
        }
    }

    /// Moves the feed cursor to its end without applying anything.
    pub(crate) async fn skip_feed(&self, group: &str) -> Result<()> {
        let mut after: i64 = self.load_cursor(group, FEED).await?.unwrap_or(0);
        loop {
            let page = self.inner.hub.changes(group, after, 1000).await?;
            after = page.next_after;
            if !page.has_more {
                return self.save_cursor(group, FEED, &after).await;
            }
        }
    }
}
