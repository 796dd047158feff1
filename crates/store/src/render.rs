//! Rendering stored records in one reader's view, loading the links the view
//! needs in one query.

use serde_json::Value;
use sharehub_model::catalog;
use sharehub_model::view::{self, LinkMap, Viewer};
use uuid::Uuid;

use crate::{Store, StoreError, StoredRecord};

/// Renders `records` (all of organization `org_id`) for `viewer`.
pub async fn render_records(
    store: &dyn Store,
    org_id: &str,
    viewer: &Viewer<'_>,
    records: &[StoredRecord],
) -> Result<Vec<Value>, StoreError> {
    let links = if viewer.external_ids { links_for(store, org_id, records).await? } else { LinkMap::new() };
    Ok(records.iter().map(|record| render_one(record, viewer, &links)).collect())
}

/// [`render_records`] for records the caller gives away: their data moves
/// into the rendered values instead of being copied. Each comes back with
/// its entity name.
pub async fn render_owned(
    store: &dyn Store,
    org_id: &str,
    viewer: &Viewer<'_>,
    records: Vec<StoredRecord>,
) -> Result<Vec<(String, Value)>, StoreError> {
    let links = if viewer.external_ids { links_for(store, org_id, &records).await? } else { LinkMap::new() };
    let render = |mut record: StoredRecord| {
        let data = std::mem::take(&mut record.data);
        let value = match catalog::entity(&record.entity) {
            Some(def) => view::render_data(def, &record.view(), data, viewer, &links),
            None => Value::Null,
        };
        (record.entity, value)
    };
    // Rendering 500 invoices with their id arrays is milliseconds of work.
    Ok(sharehub_model::parallel::map_split(records, render))
}

/// Renders one record with links already loaded.
pub fn render_one(record: &StoredRecord, viewer: &Viewer<'_>, links: &LinkMap) -> Value {
    match catalog::entity(&record.entity) {
        Some(def) => view::render(def, &record.view(), viewer, links),
        None => Value::Null,
    }
}

async fn links_for(store: &dyn Store, org_id: &str, records: &[StoredRecord]) -> Result<LinkMap, StoreError> {
    let mut ids: Vec<Uuid> = Vec::with_capacity(records.len() * 2);
    for record in records {
        ids.push(record.id);
        if let Some(def) = catalog::entity(&record.entity) {
            ids.extend(view::referenced_ids(def, &record.data));
        }
    }
    ids.sort_unstable();
    ids.dedup();
    store.links(org_id, &ids).await
}
