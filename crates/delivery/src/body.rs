//! The body of a webhook: records keyed by plural entity name, each in the
//! receiving app's view (external ids on, its own `group_id`), possibly from
//! several organizations: receivers route each record by `group_id`.

use std::collections::HashMap;

use serde_json::{Map, Value};
use sharehub_model::view::Viewer;
use sharehub_store::render::render_records;
use sharehub_store::{App, BatchRecord, Store, StoreError};

use crate::worker::groups_by_org;

/// A webhook body, and the version of each record it holds.
pub struct Rendered {
    pub body: Vec<u8>,
    pub versions: HashMap<uuid::Uuid, i64>,
}

/// Renders the records' present state as one webhook body.
pub async fn render_body(store: &dyn Store, app: &App, records: &[BatchRecord]) -> Result<Rendered, StoreError> {
    let groups = groups_by_org(store, &app.id).await?;
    let mut by_org: HashMap<&str, Vec<uuid::Uuid>> = HashMap::new();
    for r in records {
        by_org.entry(&r.org_id).or_default().push(r.id);
    }

    let mut rendered: HashMap<uuid::Uuid, (String, Value)> = HashMap::new();
    let mut versions = HashMap::new();
    for (org_id, ids) in by_org {
        let Some(group_id) = groups.get(org_id) else { continue };
        let stored = store.get_records(org_id, &ids).await?;
        let viewer = Viewer { group_id, external_ids: true };
        let values = render_records(store, org_id, &viewer, &stored).await?;
        for (record, value) in stored.into_iter().zip(values) {
            versions.insert(record.id, record.version);
            rendered.insert(record.id, (record.entity, value));
        }
    }

    let mut body: Map<String, Value> = Map::new();
    for r in records {
        let Some((entity, value)) = rendered.remove(&r.id) else { continue };
        if !app.can_read(&entity) {
            continue;
        }
        if let Value::Array(list) = body.entry(entity).or_insert_with(|| Value::Array(Vec::new())) {
            list.push(value);
        }
    }
    let body = serde_json::to_vec(&Value::Object(body))
        .map_err(|e| StoreError::Corrupt(format!("rendering a webhook body: {e}")))?;
    Ok(Rendered { body, versions })
}
