//! The declared mapping between an app's entities and the hub's: per app
//! entity, one or more hub targets (a customer row becomes a person and an
//! organization), each a list of field paths with conversions and references.
//!
//! Every hub record the connector writes carries the connector's own
//! external id `"{app entity}:{app id}"`, so references are sent in the app's
//! terms and the hub resolves them through its id map.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::adapter::AppRecord;
use crate::convert::{get_path, set_path, Convert};
use crate::error::{Error, Result};

/// The app field that stands for the record's own id in a reference.
pub const OWN_ID: &str = "$id";

/// Every mapped app entity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Mapping {
    pub entities: Vec<EntityMapping>,
}

/// One app entity and the hub records it becomes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityMapping {
    /// The app's name of the entity (a table, an API resource).
    pub name: String,
    pub targets: Vec<Target>,
}

/// One hub entity an app entity becomes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// The hub entity (`people`, `organizations`, ...).
    pub hub: String,
    /// Whether a hub record of this entity that the app lacks creates an app
    /// record. A secondary target (a customer's company) only updates.
    #[serde(default = "yes")]
    pub creates: bool,
    /// An app field that must hold a value for this target to exist.
    #[serde(default)]
    pub when: Option<String>,
    /// Hub fields that identify an existing record to merge into on import.
    #[serde(default)]
    pub matching_fields: Vec<String>,
    #[serde(flatten)]
    pub fields: FieldSet,
}

fn yes() -> bool {
    true
}

/// Fields and references of a record or of its lines.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSet {
    #[serde(default)]
    pub fields: Vec<Field>,
    #[serde(default)]
    pub references: Vec<Reference>,
}

/// One field: an app path, a hub path, a conversion; or a constant sent to
/// the hub; or (with `each`) an array of lines mapped field by field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    #[serde(default)]
    pub app: Option<String>,
    pub hub: String,
    #[serde(default)]
    pub convert: Convert,
    /// A constant written to the hub (the app has no such field).
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub each: Option<FieldSet>,
}

/// A reference: the app field holds the app id of a record of `entity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    pub app: String,
    pub hub: String,
    /// The app entity referred to.
    pub entity: String,
    /// Only sent when this app field holds a value.
    #[serde(default)]
    pub when: Option<String>,
}

/// The connector's external id of an app record.
pub fn external_id(entity: &str, app_id: &str) -> String {
    format!("{entity}:{app_id}")
}

impl Mapping {
    pub fn entity(&self, name: &str) -> Option<&EntityMapping> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// Checks what serde cannot: one target per hub entity within an app
    /// entity, and references to mapped entities.
    pub fn validate(&self) -> Result<()> {
        for entity in &self.entities {
            let mut hubs: Vec<&str> = entity.targets.iter().map(|t| t.hub.as_str()).collect();
            hubs.sort_unstable();
            if hubs.windows(2).any(|w| w[0] == w[1]) {
                return Err(Error::Config(format!("{}: two targets of one hub entity", entity.name)));
            }
            for target in &entity.targets {
                target.fields.check_references(self)?;
            }
        }
        Ok(())
    }

    /// Targets of a hub entity, with the app entity they belong to.
    pub fn targets_of_hub<'a>(&'a self, hub: &'a str) -> impl Iterator<Item = (&'a EntityMapping, &'a Target)> + 'a {
        self.entities.iter().flat_map(move |e| e.targets.iter().filter(move |t| t.hub == hub).map(move |t| (e, t)))
    }
}

impl FieldSet {
    fn check_references(&self, mapping: &Mapping) -> Result<()> {
        for reference in &self.references {
            if mapping.entity(&reference.entity).is_none() {
                return Err(Error::Config(format!("reference {} names unmapped {}", reference.hub, reference.entity)));
            }
        }
        self.fields.iter().filter_map(|f| f.each.as_ref()).try_for_each(|each| each.check_references(mapping))
    }

    /// The hub form of app fields.
    fn to_hub(&self, record: &Value, own_id: &str, provider: &str) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        for field in &self.fields {
            let value = match (&field.value, &field.app) {
                (Some(constant), _) => constant.clone(),
                (None, Some(app)) => match get_path(record, app) {
                    Some(value) => field.value_to_hub(value, provider)?,
                    None => continue,
                },
                (None, None) => continue,
            };
            set_path(&mut out, &field.hub, value);
        }
        for reference in &self.references {
            if reference.when.as_ref().is_some_and(|w| get_path(record, w).is_none_or(Value::is_null)) {
                continue;
            }
            let app_id = match reference.app.as_str() {
                OWN_ID => Value::String(own_id.to_string()),
                app => get_path(record, app).cloned().unwrap_or(Value::Null),
            };
            let value = match app_id {
                Value::Null => Value::Null,
                id => json!([{ "provider": provider, "id": external_id(&reference.entity, &plain(&id)) }]),
            };
            set_path(&mut out, &reference.hub, value);
        }
        Ok(out)
    }

    /// The app form of a hub record's fields. A reference the app does not
    /// hold yet is an [`Error::Unresolved`] naming the hub id.
    fn to_app(&self, record: &Value, provider: &str) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        for field in &self.fields {
            let Some(app) = &field.app else { continue };
            let value = get_path(record, &field.hub).unwrap_or(&Value::Null);
            let value = match &field.each {
                Some(each) => Value::Array(
                    lines(value).iter().map(|l| each.to_app(l, provider).map(Value::Object)).collect::<Result<_>>()?,
                ),
                None => field.convert.to_app(value)?,
            };
            set_path(&mut out, app, value);
        }
        for reference in self.references.iter().filter(|r| r.app != OWN_ID) {
            let value = get_path(record, &reference.hub).unwrap_or(&Value::Null);
            let app_id = resolve(value, &reference.entity, provider)?;
            set_path(&mut out, &reference.app, app_id);
        }
        Ok(out)
    }

    /// The mapped app fields in canonical form, in mapping order.
    fn projection(&self, record: &Value) -> Result<Value> {
        let mut out = Map::new();
        for field in &self.fields {
            let Some(app) = &field.app else { continue };
            let value = get_path(record, app).unwrap_or(&Value::Null);
            let value = match &field.each {
                Some(each) => Value::Array(lines(value).iter().map(|l| each.projection(l)).collect::<Result<_>>()?),
                None => field.convert.canonical(value)?,
            };
            out.insert(app.clone(), value);
        }
        for reference in self.references.iter().filter(|r| r.app != OWN_ID) {
            let value = get_path(record, &reference.app).unwrap_or(&Value::Null);
            let value = if value.is_null() { Value::Null } else { Value::String(plain(value)) };
            out.insert(reference.app.clone(), value);
        }
        Ok(Value::Object(out))
    }
}

impl Field {
    fn value_to_hub(&self, value: &Value, provider: &str) -> Result<Value> {
        match &self.each {
            Some(each) => {
                let lines = lines(value).iter().map(|l| each.to_hub(l, "", provider).map(Value::Object));
                Ok(Value::Array(lines.collect::<Result<_>>()?))
            }
            None => self.convert.to_hub(value),
        }
    }
}

fn lines(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// An id as text (`5` and `"5"` are the same app id).
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The app id behind a hub reference: the connector's own entry for `entity`.
fn resolve(value: &Value, entity: &str, provider: &str) -> Result<Value> {
    let entries = match value {
        Value::Null => return Ok(Value::Null),
        Value::Array(entries) => entries.as_slice(),
        other => return Err(Error::Unresolved { entity: entity.to_string(), hub_id: plain(other) }),
    };
    let prefix = format!("{entity}:");
    let own = entries
        .iter()
        .find_map(|e| (e["provider"] == provider).then(|| e["id"].as_str()?.strip_prefix(&prefix)).flatten());
    match own {
        Some(id) => Ok(Value::String(id.to_string())),
        None => Err(Error::Unresolved { entity: entity.to_string(), hub_id: hub_id(value).unwrap_or_default() }),
    }
}

/// The hub's own id in an id array (or a plain id).
pub fn hub_id(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(entries) => entries.iter().find(|e| e["provider"] == "connec")?["id"].as_str().map(String::from),
        _ => None,
    }
}

/// The connector's own external ids in a hub record's id array.
pub fn own_external_ids(record: &Value, provider: &str) -> Vec<String> {
    let entries = record["id"].as_array().map(Vec::as_slice).unwrap_or_default();
    entries.iter().filter(|e| e["provider"] == provider).filter_map(|e| e["id"].as_str().map(String::from)).collect()
}

impl Target {
    /// Whether this app record has this target at all.
    pub fn applies_to(&self, record: &AppRecord) -> bool {
        self.when.as_ref().is_none_or(|w| record.fields.get(w).is_some_and(|v| !v.is_null()))
    }

    /// The hub record for an app record, with the connector's external id and
    /// the matching fields for import.
    pub fn to_hub(&self, entity: &str, record: &AppRecord, provider: &str) -> Result<Value> {
        let fields = Value::Object(record.fields.clone());
        let mut out = self.fields.to_hub(&fields, &record.id, provider)?;
        out.insert("id".into(), json!([{ "provider": provider, "id": external_id(entity, &record.id) }]));
        if !self.matching_fields.is_empty() {
            out.insert("opts".into(), json!({ "matching_fields": self.matching_fields }));
        }
        Ok(Value::Object(out))
    }

    /// The app fields a hub record sets.
    pub fn to_app(&self, hub_record: &Value, provider: &str) -> Result<Map<String, Value>> {
        self.fields.to_app(hub_record, provider)
    }

    /// A fingerprint of what this target maps of an app record: equal
    /// fingerprints mean nothing to share (the change is an echo).
    pub fn fingerprint(&self, fields: &Map<String, Value>) -> Result<String> {
        let projection = self.fields.projection(&Value::Object(fields.clone()))?;
        Ok(hex::encode(Sha256::digest(projection.to_string().as_bytes())))
    }
}
