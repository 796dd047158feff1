//! How a client's partial write merges into a stored record, and how the hub
//! tells that a write changed nothing.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Fields the hub sets on every record it shows; clients may send them back
/// (they often echo a record they read) but they are never stored in `data`.
pub const META_FIELDS: &[&str] =
    &["id", "group_id", "channel_id", "resource_type", "created_at", "updated_at", "version", "archived", "opts"];

/// Removes the meta fields from a client's object, returning it as data.
pub fn strip_meta(object: &mut Map<String, Value>) {
    for field in META_FIELDS {
        object.shift_remove(*field);
    }
}

/// Merges `patch` into `target`: a field not sent stays as it is, a field sent
/// as `null` is cleared, objects merge field by field, and anything else
/// (strings, numbers, arrays such as invoice lines) replaces the old value.
pub fn merge_patch(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.shift_remove(&key);
            }
            Value::Object(inner) => merge_object_field(target, key, inner),
            other => {
                target.insert(key, other);
            }
        }
    }
}

/// What [`merge_patch`] makes of `patch` merged into an empty record, done
/// in place (a create, the commonest write, then copies nothing): members
/// holding `null` are dropped, at every level of nested objects.
pub fn drop_null_members(patch: &mut Map<String, Value>) {
    patch.retain(|_, value| match value {
        Value::Null => false,
        Value::Object(inner) => {
            drop_null_members(inner);
            true
        }
        _ => true,
    });
}

fn merge_object_field(target: &mut Map<String, Value>, key: String, patch: Map<String, Value>) {
    match target.get_mut(&key) {
        Some(Value::Object(existing)) => merge_patch(existing, patch),
        _ => {
            let mut fresh = Map::new();
            merge_patch(&mut fresh, patch);
            target.insert(key, Value::Object(fresh));
        }
    }
}

/// SHA-256 of the record's data in a canonical form (keys sorted at every
/// level), so that the same content sent with its keys in another order is
/// recognised as unchanged.
pub fn content_hash(data: &Value) -> [u8; 32] {
    let mut hasher = Sha256::new();
    feed(&mut hasher, data);
    hasher.finalize().into()
}

fn feed(hasher: &mut Sha256, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            hasher.update(b"{");
            for key in keys {
                write_json(hasher, key.as_str());
                hasher.update(b":");
                feed(hasher, &map[key]);
                hasher.update(b",");
            }
            hasher.update(b"}");
        }
        Value::Array(items) => {
            hasher.update(b"[");
            for item in items {
                feed(hasher, item);
                hasher.update(b",");
            }
            hasher.update(b"]");
        }
        scalar => write_json(hasher, scalar),
    }
}

/// Feeds the compact JSON text of `value` (the bytes `to_string` would
/// make) to the hasher without building the string: this runs for every
/// key and scalar of every record written.
fn write_json<T: serde::Serialize + ?Sized>(hasher: &mut Sha256, value: &T) {
    struct HashWriter<'a>(&'a mut Sha256);
    impl std::io::Write for HashWriter<'_> {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // Writing JSON into a hasher cannot fail: keys are strings, and the
    // writer never returns an error.
    let _ = serde_json::to_writer(HashWriter(hasher), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn dropping_null_members_is_merging_into_an_empty_record() {
        let patch = obj(json!({
            "name": "Ünïcode 名前 🎵", "gone": null,
            "address": {"city": "Paris", "zip": null, "geo": {"lat": null, "lng": 2.35}},
            "lines": [{"item_id": null, "amount": 1.10}, null],
            "tags": [], "empty": {}
        }));
        let mut merged = Map::new();
        merge_patch(&mut merged, patch.clone());
        let mut in_place = patch;
        drop_null_members(&mut in_place);

        assert_eq!(Value::Object(in_place.clone()).to_string(), Value::Object(merged).to_string());
        assert!(!in_place.contains_key("gone"));
        assert_eq!(in_place["address"], json!({"city": "Paris", "geo": {"lng": 2.35}}));
        // Arrays are values: what they hold is kept as sent.
        assert_eq!(in_place["lines"], json!([{"item_id": null, "amount": 1.10}, null]));
    }

    /// The hash as first defined (each key and scalar through `to_string`):
    /// stored records carry it, so the hash of unchanged data must not move.
    fn hash_as_first_defined(value: &Value) -> [u8; 32] {
        fn feed(hasher: &mut Sha256, value: &Value) {
            match value {
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    hasher.update(b"{");
                    for key in keys {
                        hasher.update(Value::String(key.clone()).to_string().as_bytes());
                        hasher.update(b":");
                        feed(hasher, &map[key]);
                        hasher.update(b",");
                    }
                    hasher.update(b"}");
                }
                Value::Array(items) => {
                    hasher.update(b"[");
                    for item in items {
                        feed(hasher, item);
                        hasher.update(b",");
                    }
                    hasher.update(b"]");
                }
                scalar => hasher.update(scalar.to_string().as_bytes()),
            }
        }
        let mut hasher = Sha256::new();
        feed(&mut hasher, value);
        hasher.finalize().into()
    }

    #[test]
    fn the_content_hash_keeps_its_bytes() {
        let record = json!({
            "name": "Zoë \"Ünïcödé\" 東京 🎸\n\u{0007}", "amount": "12.30", "n": 1.5e300, "i": -7,
            "ok": true, "none": null, "lines": [{"b": 1, "a": [2, "x"]}, []], "": {}
        });
        assert_eq!(content_hash(&record), hash_as_first_defined(&record));
    }

    #[test]
    fn fields_not_sent_stay_and_null_clears() {
        let mut rec =
            obj(json!({"first_name": "Ana", "last_name": "Lima", "email": {"address": "a@x", "address2": "b@x"}}));
        merge_patch(&mut rec, obj(json!({"last_name": null, "email": {"address2": null, "address": "c@x"}})));
        assert_eq!(Value::Object(rec), json!({"first_name": "Ana", "email": {"address": "c@x"}}));
    }

    #[test]
    fn arrays_replace_the_old_value() {
        let mut rec = obj(json!({"lines": [{"quantity": 1}, {"quantity": 2}]}));
        merge_patch(&mut rec, obj(json!({"lines": [{"quantity": 3}]})));
        assert_eq!(rec["lines"], json!([{"quantity": 3}]));
    }

    #[test]
    fn hash_ignores_key_order_but_not_values() {
        let a = serde_json::from_str::<Value>(r#"{"a":1,"b":{"x":"é","y":[1,2]}}"#).unwrap();
        let b = serde_json::from_str::<Value>(r#"{"b":{"y":[1,2],"x":"é"},"a":1}"#).unwrap();
        let c = serde_json::from_str::<Value>(r#"{"b":{"y":[2,1],"x":"é"},"a":1}"#).unwrap();
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
    }

    #[test]
    fn meta_fields_are_not_data() {
        let mut rec = obj(json!({"id": "x", "version": 3, "name": "n", "opts": {}}));
        strip_meta(&mut rec);
        assert_eq!(Value::Object(rec), json!({"name": "n"}));
    }
}
