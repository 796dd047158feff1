//! The declared mapping: app records to hub records and back, references in
//! the connector's own terms, and fingerprints that ignore the form of a value.

use serde_json::{json, Map, Value};
use sharehub_connector::{AppRecord, Error, Mapping};

const MAPPING: &str = r#"{ "entities": [
  { "name": "customers", "targets": [
    { "hub": "organizations", "when": "company", "creates": false, "matching_fields": ["name"],
      "fields": [ { "app": "company", "hub": "name" } ] },
    { "hub": "people", "fields": [
        { "app": "first", "hub": "first_name" },
        { "app": "email", "hub": "email/address" },
        { "hub": "is_customer", "value": true } ],
      "references": [ { "app": "$id", "hub": "organization_id", "entity": "customers", "when": "company" } ] } ] },
  { "name": "tracks", "targets": [ { "hub": "items", "fields": [ { "app": "name", "hub": "name" } ] } ] },
  { "name": "invoices", "targets": [ { "hub": "invoices", "fields": [
      { "app": "day", "hub": "transaction_date", "convert": "timestamp" },
      { "app": "lines", "hub": "lines", "each": {
          "fields": [ { "app": "qty", "hub": "quantity", "convert": "decimal" },
                      { "app": "price", "hub": "unit_price/net_amount", "convert": "decimal" } ],
          "references": [ { "app": "track", "hub": "item_id", "entity": "tracks" } ] } } ],
    "references": [ { "app": "customer", "hub": "person_id", "entity": "customers" } ] } ] }
] }"#;

fn mapping() -> Mapping {
    let mapping: Mapping = serde_json::from_str(MAPPING).unwrap();
    mapping.validate().unwrap();
    mapping
}

fn record(id: &str, fields: Value) -> AppRecord {
    let Value::Object(fields) = fields else { panic!("an object") };
    AppRecord {
        id: id.into(),
        updated_at: "2024-01-01T00:00:00Z".parse().unwrap(),
        fields,
        inactive: false,
        unreadable: None,
    }
}

#[test]
fn one_customer_row_becomes_an_organization_and_a_person_referring_to_it() {
    let mapping = mapping();
    let customers = mapping.entity("customers").unwrap();
    let row = record("7", json!({ "first": "Ada", "email": "ada@example.com", "company": "Engines Ltd" }));
    let org = customers.targets[0].to_hub("customers", &row, "store").unwrap();
    assert_eq!(org["id"], json!([{ "provider": "store", "id": "customers:7" }]));
    assert_eq!(org["opts"], json!({ "matching_fields": ["name"] }));
    let person = customers.targets[1].to_hub("customers", &row, "store").unwrap();
    assert_eq!(person["email"]["address"], json!("ada@example.com"));
    assert_eq!(person["is_customer"], json!(true));
    assert_eq!(person["organization_id"], json!([{ "provider": "store", "id": "customers:7" }]));

    let without_company = record("8", json!({ "first": "Bo", "company": null }));
    assert!(!customers.targets[0].applies_to(&without_company));
    let person = customers.targets[1].to_hub("customers", &without_company, "store").unwrap();
    assert!(person.get("organization_id").is_none());
}

#[test]
fn lines_and_references_go_to_the_hub_and_come_back() {
    let mapping = mapping();
    let target = &mapping.entity("invoices").unwrap().targets[0];
    let row = record(
        "1",
        json!({ "day": "2007-01-01 00:00:00", "customer": 2,
                "lines": [ { "id": 10, "qty": 1, "price": "0.99", "track": 5 } ] }),
    );
    let hub = target.to_hub("invoices", &row, "store").unwrap();
    assert_eq!(hub["transaction_date"], json!("2007-01-01T00:00:00.000Z"));
    assert_eq!(hub["person_id"], json!([{ "provider": "store", "id": "customers:2" }]));
    assert_eq!(hub["lines"][0]["unit_price"]["net_amount"], json!("0.99"));
    assert_eq!(hub["lines"][0]["item_id"], json!([{ "provider": "store", "id": "tracks:5" }]));

    // As the hub shows it: ids with its own entry, decimals as numbers.
    let shown = json!({
        "transaction_date": "2007-01-01T00:00:00Z",
        "person_id": [{ "provider": "connec", "id": "u-2" }, { "provider": "store", "id": "customers:2" }],
        "lines": [{ "quantity": 1.0, "unit_price": { "net_amount": 0.990 },
                    "item_id": [{ "provider": "connec", "id": "u-5" }, { "provider": "store", "id": "tracks:5" }] }]
    });
    let back = target.to_app(&shown, "store").unwrap();
    assert_eq!(back["customer"], json!("2"));
    assert_eq!(back["lines"][0]["track"], json!("5"));
    assert_eq!(
        target.fingerprint(&back).unwrap(),
        target.fingerprint(&row.fields).unwrap(),
        "the same meaning gives the same fingerprint, whatever the form"
    );
}

#[test]
fn a_reference_the_app_lacks_names_the_hub_record() {
    let mapping = mapping();
    let target = &mapping.entity("invoices").unwrap().targets[0];
    let shown = json!({ "person_id": [{ "provider": "connec", "id": "u-9" }, { "provider": "books", "id": "77" }] });
    match target.to_app(&shown, "store") {
        Err(Error::Unresolved { entity, hub_id }) => {
            assert_eq!((entity.as_str(), hub_id.as_str()), ("customers", "u-9"))
        }
        other => panic!("expected an unresolved reference, got {other:?}"),
    }
}

#[test]
fn a_changed_mapped_field_changes_the_fingerprint_and_an_unmapped_one_does_not() {
    let mapping = mapping();
    let target = &mapping.entity("customers").unwrap().targets[1];
    let fields = |first: &str, other: &str| -> Map<String, Value> {
        let Value::Object(map) = json!({ "first": first, "email": "a@b.c", "support_rep": other }) else { panic!() };
        map
    };
    let base = target.fingerprint(&fields("Ada", "1")).unwrap();
    assert_eq!(base, target.fingerprint(&fields("Ada", "2")).unwrap());
    assert_ne!(base, target.fingerprint(&fields("Adah", "1")).unwrap());
}

#[test]
fn a_reference_to_an_unmapped_entity_is_refused() {
    let broken = MAPPING.replace(r#""entity": "tracks""#, r#""entity": "albums""#);
    let mapping: Mapping = serde_json::from_str(&broken).unwrap();
    assert!(matches!(mapping.validate(), Err(Error::Config(_))));
}
