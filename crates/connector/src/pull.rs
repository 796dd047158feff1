//! Hub to app: one hub record (from a webhook, the change feed or a
//! preempting read) applied to the app records linked to it, or created in
//! the app when none is and the mapping says so.
//!
//! Dropped without writing: an event not newer than the version last shared
//! (stale or repeated), and a record whose mapped fields equal what was last
//! shared (an echo of the connector's own push, or a change to fields the
//! app does not hold).

use std::collections::HashMap;

use futures::StreamExt;
use serde_json::Value;

use crate::connector::Connector;
use crate::error::{Error, Result};
use crate::mapping::{external_id, hub_id, own_external_ids};
use crate::push::INACTIVE;
use crate::state::Link;

/// The side of a failing record, in the state's `record_errors`.
pub(crate) const PULL: &str = "pull";

/// How deep a chain of missing references is followed (invoice -> person ->
/// organization) before the record is left for a later try.
const MAX_DEPTH: usize = 3;

impl Connector {
    /// Applies a hub record of `hub_entity` to the organization's app;
    /// a record that fails is recorded with its error and does not stop others.
    pub async fn apply_hub_record(&self, group: &str, hub_entity: &str, record: &Value) -> Result<()> {
        let _guard = self.org(group)?.lock.lock().await;
        self.apply_logged(group, hub_entity, record).await
    }

    /// Applies hub records (a webhook delivery, a page of the change feed)
    /// in their order, each run of one entity several records at a time, as
    /// many as the app takes ([`crate::AppAdapter::concurrent_writes`]).
    /// A record met twice in a run is applied once, at its last (newest)
    /// version. An outage fails the whole call once the run has settled, so
    /// that the caller hands the records back (the hub retries a webhook,
    /// the feed cursor stays put); refused records are recorded one by one.
    pub async fn apply_hub_records(&self, group: &str, records: &[(&str, &Value)]) -> Result<()> {
        let org = self.org(group)?;
        let _guard = org.lock.lock().await;
        let at_once = org.adapter.concurrent_writes().clamp(1, self.inner.options.pull_concurrency.max(1));
        for run in runs_of_one_entity(records) {
            // Boxed and collected first: a lazy `map` here leaves the
            // future's Send-ness to a higher-ranked bound rustc cannot prove.
            let applies: Vec<futures_like::BoxFuture<'_, Result<()>>> = newest_of_each(run)
                .into_iter()
                .map(|(entity, record)| Box::pin(self.apply_logged(group, entity, record)) as _)
                .collect();
            let outcomes: Vec<Result<()>> = futures::stream::iter(applies).buffer_unordered(at_once).collect().await;
            outcomes.into_iter().collect::<Result<Vec<()>>>()?;
        }
        Ok(())
    }

    async fn apply_logged(&self, group: &str, hub_entity: &str, record: &Value) -> Result<()> {
        match self.apply(group, hub_entity, record, 0).await {
            Err(e) if !e.is_transient() => {
                let id = hub_id(&record["id"]).unwrap_or_default();
                tracing::warn!(group, hub_entity, id, error = %e, "hub record not applied to the app");
                self.inner.state.record_failure(group, PULL, hub_entity, &id, &e.to_string()).await
            }
            other => other,
        }
    }

    fn apply<'a>(
        &'a self,
        group: &'a str,
        hub_entity: &'a str,
        record: &'a Value,
        depth: usize,
    ) -> futures_like::BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let id = hub_id(&record["id"]).ok_or_else(|| Error::Mapping("hub record without an id".into()))?;
            // Held while this record is read and written, never across the
            // recursion below: two applies that meet the same record (an
            // invoice's and its person's own) take turns instead of both
            // creating it, and no apply ever waits holding another's lock.
            let result = {
                let _record = self.inner.record_lock(hub_entity, &id).lock().await;
                let links = self.inner.state.links_by_hub(group, hub_entity, &id).await?;
                if links.is_empty() {
                    self.create_in_app(group, hub_entity, &id, record).await
                } else {
                    self.update_links(group, &links, record).await
                }
            };
            match result {
                Err(Error::Unresolved { entity, hub_id }) if depth < MAX_DEPTH => {
                    self.import_referenced(group, &entity, &hub_id, depth).await?;
                    // Read again: the copy at hand predates the reference's link.
                    match self.inner.hub.record(group, hub_entity, &id).await? {
                        Some(fresh) => self.apply(group, hub_entity, &fresh, depth + 1).await,
                        None => Ok(()),
                    }
                }
                Ok(()) => self.inner.state.clear_failure(group, PULL, hub_entity, &id).await,
                other => other,
            }
        })
    }

    /// Applies again the hub records that failed (a reference the app
    /// lacked, an app error since fixed), each at most `record_attempts` times.
    pub(crate) async fn retry_failed_pulls(&self, group: &str) -> Result<()> {
        let failing = self.inner.state.record_errors(group).await?;
        let due = failing.iter().filter(|f| f.side == PULL && f.attempts < self.inner.options.record_attempts);
        for failure in due {
            match self.inner.hub.record(group, &failure.entity, &failure.record_id).await? {
                Some(record) => self.apply_hub_record(group, &failure.entity, &record).await?,
                // Gone from the hub: nothing left to apply.
                None => self.inner.state.clear_failure(group, PULL, &failure.entity, &failure.record_id).await?,
            }
        }
        Ok(())
    }

    /// Brings a referenced hub record into the app first.
    async fn import_referenced(&self, group: &str, app_entity: &str, hub_id: &str, depth: usize) -> Result<()> {
        let entity = self.inner.mapping.entity(app_entity).ok_or_else(|| Error::Config(app_entity.into()))?;
        let Some(target) = entity.targets.iter().find(|t| t.creates) else {
            return Err(Error::Unresolved { entity: app_entity.into(), hub_id: hub_id.into() });
        };
        match self.inner.hub.record(group, &target.hub, hub_id).await? {
            Some(referenced) => self.apply(group, &target.hub, &referenced, depth + 1).await,
            None => Err(Error::Mapping(format!("{} {hub_id} is not on the hub", target.hub))),
        }
    }

    async fn update_links(&self, group: &str, links: &[Link], record: &Value) -> Result<()> {
        for link in links {
            self.apply_to_link(group, link, record).await?;
        }
        Ok(())
    }

    /// Applies a hub record to one linked app record.
    pub(crate) async fn apply_to_link(&self, group: &str, link: &Link, record: &Value) -> Result<()> {
        let org = self.org(group)?;
        let external = external_id(&link.app_entity, &link.app_id);
        if !own_external_ids(record, self.inner.hub.provider()).contains(&external) {
            self.link_on_hub(group, link).await?;
        }
        let version = record["version"].as_i64().unwrap_or(0);
        if version <= link.hub_version || !org.settings.direction(&link.app_entity).pulls() {
            return Ok(());
        }
        let Some((_, target)) = self.target(&link.app_entity, &link.hub_entity) else { return Ok(()) };
        let mut updated = Link { hub_version: version, ..link.clone() };
        if record["archived"] == Value::Bool(true) {
            if target.creates && link.fingerprint != INACTIVE {
                org.adapter.mark_inactive(&link.app_entity, &link.app_id).await?;
                updated.fingerprint = INACTIVE.to_string();
            }
            return self.inner.state.save_link(group, &updated).await;
        }

        let fields = target.to_app(record, self.inner.hub.provider())?;
        let fingerprint = target.fingerprint(&fields)?;
        if fingerprint != link.fingerprint && !self.app_wins(group, link, target, record).await? {
            org.adapter.update(&link.app_entity, &link.app_id, fields).await?;
            updated.fingerprint = fingerprint;
        }
        self.inner.state.save_link(group, &updated).await
    }

    /// Whether the app holds a newer unshared change to this record, which
    /// wins over the hub's unless the organization gives the hub preemption.
    async fn app_wins(
        &self,
        group: &str,
        link: &Link,
        target: &crate::mapping::Target,
        record: &Value,
    ) -> Result<bool> {
        let org = self.org(group)?;
        if org.settings.hub_preemption {
            return Ok(false);
        }
        let Some(current) = org.adapter.fetch(&link.app_entity, &link.app_id).await? else { return Ok(false) };
        if target.fingerprint(&current.fields)? == link.fingerprint {
            return Ok(false);
        }
        let hub_time = record["updated_at"].as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok());
        let app_wins = hub_time.is_some_and(|t| current.updated_at > t);
        let (entity, id, hub_id) = (&link.app_entity, &link.app_id, &link.hub_id);
        match app_wins {
            true => tracing::info!(group, entity, id, hub_id, "conflict: the app's newer change wins over the hub's"),
            false => tracing::info!(group, entity, id, hub_id, "conflict: the hub's newer change wins over the app's"),
        }
        Ok(app_wins)
    }

    /// Creates an app record for a hub record the app lacks, and links it.
    async fn create_in_app(&self, group: &str, hub_entity: &str, id: &str, record: &Value) -> Result<()> {
        let org = self.org(group)?;
        if record["archived"] == Value::Bool(true) {
            return Ok(());
        }
        let creating = self
            .inner
            .mapping
            .targets_of_hub(hub_entity)
            .find(|(entity, target)| target.creates && org.settings.direction(&entity.name).pulls());
        let Some((entity, target)) = creating else { return Ok(()) };

        let fields = target.to_app(record, self.inner.hub.provider())?;
        let created = org.adapter.create(&entity.name, fields).await?;
        // Remembered before the hub hears of it: if linking on the hub
        // fails, the next event of this record finds the app row and links
        // it then, instead of creating a second row.
        let link = Link {
            app_entity: entity.name.clone(),
            app_id: created.id.clone(),
            hub_entity: hub_entity.to_string(),
            hub_id: id.to_string(),
            hub_version: record["version"].as_i64().unwrap_or(0),
            fingerprint: target.fingerprint(&created.fields)?,
        };
        self.inner.state.save_link(group, &link).await?;
        tracing::debug!(group, hub_entity, id, app_id = created.id, "hub record created in the app");
        self.link_on_hub(group, &link).await
    }

    /// Links the connector's id to the hub record, and remembers the version
    /// that answers (linking may move it on).
    async fn link_on_hub(&self, group: &str, link: &Link) -> Result<()> {
        let external = external_id(&link.app_entity, &link.app_id);
        let linked = self.inner.hub.link(group, &link.hub_entity, &link.hub_id, &external).await?;
        let version = linked["version"].as_i64().unwrap_or(0);
        self.inner.state.save_link(group, &Link { hub_version: version, ..link.clone() }).await
    }
}

/// The records split into runs of consecutive records of one entity.
fn runs_of_one_entity<'a, 'r>(records: &'r [(&'a str, &'a Value)]) -> Vec<&'r [(&'a str, &'a Value)]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=records.len() {
        if i == records.len() || records[i].0 != records[start].0 {
            runs.push(&records[start..i]);
            start = i;
        }
    }
    runs
}

/// Each record of a run once, at its last occurrence (the hub sends a
/// record's versions oldest first), in the order of those occurrences.
fn newest_of_each<'a>(run: &[(&'a str, &'a Value)]) -> Vec<(&'a str, &'a Value)> {
    let mut last: HashMap<Option<String>, usize> = HashMap::new();
    for (i, (_, record)) in run.iter().enumerate() {
        last.insert(hub_id(&record["id"]), i);
    }
    run.iter()
        .enumerate()
        // A record without an id is kept: `apply` records it as failing.
        .filter(|(i, (_, record))| {
            let id = hub_id(&record["id"]);
            id.is_none() || last.get(&id) == Some(i)
        })
        .map(|(_, pair)| *pair)
        .collect()
}

/// A boxed future, for the recursion through missing references.
mod futures_like {
    pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::{newest_of_each, runs_of_one_entity};

    fn record(id: &str, version: i64) -> Value {
        json!({ "id": [{ "provider": "connec", "id": id }], "version": version })
    }

    #[test]
    fn runs_keep_the_order_of_entities_and_each_record_once_at_its_newest() {
        let (p1, p1_newer, p2, i1) = (record("p1", 1), record("p1", 2), record("p2", 1), record("i1", 1));
        let all = [("people", &p1), ("people", &p2), ("people", &p1_newer), ("invoices", &i1), ("people", &p2)];
        let runs = runs_of_one_entity(&all);
        let shape: Vec<(&str, usize)> = runs.iter().map(|r| (r[0].0, r.len())).collect();
        assert_eq!(shape, [("people", 3), ("invoices", 1), ("people", 1)]);

        let newest = newest_of_each(runs[0]);
        let seen: Vec<(String, i64)> = newest
            .iter()
            .map(|(_, r)| (r["id"][0]["id"].as_str().unwrap().into(), r["version"].as_i64().unwrap()))
            .collect();
        assert_eq!(seen, [("p2".to_string(), 1), ("p1".to_string(), 2)]);
    }
}
