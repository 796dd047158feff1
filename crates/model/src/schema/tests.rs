//! Tests of the schemas, normalisation and validation, on Chinook-shaped records.

use serde_json::{json, Value};

use super::{json_schema, normalize, validate};
use crate::catalog::{all, entity, EntityDef};
use crate::FieldError;

fn def(name: &str) -> &'static EntityDef {
    entity(name).unwrap()
}

fn errors(name: &str, record: Value) -> Vec<FieldError> {
    validate(def(name), &record).unwrap_err()
}

fn paths(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

fn examples() -> Vec<(&'static str, Value)> {
    vec![
        (
            "organizations",
            json!({
                "name": "Embraer - Empresa Brasileira de Aeronáutica S.A.",
                "is_customer": true,
                "address": {"billing": {"line1": "Av. Brigadeiro Faria Lima, 2170",
                    "city": "São José dos Campos", "region": "SP", "postal_code": "12227-000",
                    "country": "Brazil"}},
                "phone": {"landline": "+55 (12) 3923-5555", "fax": "+55 (12) 3923-5566"},
                "email": {"address": "luisg@embraer.com.br"},
                "annual_revenue": 1250000.50, "number_of_employees": 18000,
                "assignee_id": "0190a7e4-7b1c-7c4e-9a52-3f1d2b8c9e01"
            }),
        ),
        (
            "people",
            json!({
                "first_name": "Luís", "last_name": "Gonçalves", "is_customer": true,
                "organization_id": "0190a7e4-7b1c-7c4e-9a52-3f1d2b8c9e02",
                "address_work": {"billing": {"city": "São José dos Campos", "country": "Brazil"}},
                "phone_work": {"landline": "+55 (12) 3923-5555"},
                "email": {"address": "luisg@embraer.com.br"},
                "lead_status_changes": [{"status": "Open", "created_at": "2016-07-28T13:35:50Z"}]
            }),
        ),
        (
            "employees",
            json!({
                "employee_id": "1", "first_name": "Andrew", "last_name": "Adams",
                "job_title": "General Manager", "gender": "M",
                "birth_date": "1962-02-18T00:00:00Z", "hired_date": "2002-08-14",
                "address": {"shipping": {"line1": "11120 Jasper Ave NW", "city": "Edmonton",
                    "region": "AB", "postal_code": "T5K 2N1", "country": "Canada"}},
                "phone": {"landline": "+1 (780) 428-9482", "fax": "+1 (780) 428-3457"},
                "email": {"address": "andrew@chinookcorp.com"},
                "employee_salaries": [{"type": "SALARY", "annual_salary": "98000.00", "currency": "CAD"}]
            }),
        ),
        (
            "items",
            json!({
                "name": "For Those About To Rock (We Salute You)", "type": "SERVICE",
                "description": "Angus Young, Malcolm Young, Brian Johnson",
                "sale_price": {"total_amount": 0.99, "currency": "USD"},
                "sale_tax_code_id": "0190a7e4-7b1c-7c4e-9a52-3f1d2b8c9e03"
            }),
        ),
        (
            "invoices",
            json!({
                "type": "CUSTOMER", "status": "PAID", "transaction_number": "1",
                "transaction_date": "2007-01-01T00:00:00Z",
                "person_id": "0190a7e4-7b1c-7c4e-9a52-3f1d2b8c9e04",
                "billing_address": {"line1": "Theodor-Heuss-Straße 34", "city": "Stuttgart",
                    "postal_code": "70174", "country": "Germany"},
                "amount": {"total_amount": 1.98, "currency": "USD"},
                "lines": [
                    {"line_number": 1, "quantity": 1, "unit_price": {"total_amount": 0.99},
                     "item_id": "0190a7e4-7b1c-7c4e-9a52-3f1d2b8c9e05"},
                    {"line_number": 2, "quantity": 1, "unit_price": {"total_amount": 0.99},
                     "item_id": "0190a7e4-7b1c-7c4e-9a52-3f1d2b8c9e06"}
                ]
            }),
        ),
        (
            "payments",
            json!({
                "type": "CUSTOMER", "status": "ACTIVE", "transaction_date": "2007-01-02T00:00:00Z",
                "total_amount": 1.98, "currency": "USD",
                "person_id": "0190a7e4-7b1c-7c4e-9a52-3f1d2b8c9e04",
                "payment_lines": [{"amount": 1.98, "linked_transactions": [
                    {"id": "0190a7e4-7b1c-7c4e-9a52-3f1d2b8c9e07", "class": "Invoice",
                     "applied_amount": 1.98}]},
                    {"amount": {"total_amount": "0.00", "currency": "USD"}}]
            }),
        ),
        (
            "tax_codes",
            json!({
                "name": "GST 10%", "status": "ACTIVE", "tax_type": "OUTPUT", "sale_tax_rate": 10,
                "sale_taxes": [{"name": "GST", "rate": 10.0, "tax_type_applicable": "TaxOnAmount"}]
            }),
        ),
        (
            "accounts",
            json!({
                "code": "090", "name": "Business Bank Account", "class": "ASSET", "type": "BANK",
                "classification": "ASSET_BANK_CASHONHAND", "currency": "USD", "status": "ACTIVE",
                "header": false, "bank_account": {"account_number": "1234"}
            }),
        ),
        (
            "company",
            json!({
                "name": "Chinook Corp", "currency": "USD", "timezone": "-05:00",
                "email": {"address": "info@chinookcorp.com"}, "website": {"url": "https://chinook.example"},
                "address": {"billing": {"city": "Edmonton", "country": "Canada"}},
                "logo": {"logo": "https://chinook.example/logo.png"}
            }),
        ),
    ]
}

#[test]
fn every_entity_has_a_compiling_schema_with_id_and_title() {
    for def in all() {
        let schema = json_schema(def);
        assert!(schema["$id"].as_str().is_some_and(|id| id.ends_with(def.name)), "{}", def.name);
        assert!(schema["title"].is_string(), "{}", def.name);
        assert_eq!(schema["type"], "object", "{}", def.name);
        assert_eq!(def.has_schema, schema.get("properties").is_some(), "{}", def.name);
        // Only organizations and items require a field (their name).
        let empty_ok = validate(def, &json!({})).is_ok();
        assert_eq!(empty_ok, !["organizations", "items"].contains(&def.name), "{}", def.name);
    }
}

#[test]
fn realistic_records_are_accepted_with_extra_fields() {
    for (name, mut record) in examples() {
        record["x_shopify_tags"] = json!(["anything", {"goes": 1}]);
        record["created_at"] = json!("2016-07-28T13:35:50Z");
        normalize(def(name), &mut record).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        validate(def(name), &record).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

#[test]
fn wrong_types_are_reported_at_their_path() {
    let invoice = json!({"lines": [{"quantity": "abc"}, {"quantity": true, "item_id": 5}]});
    let found = errors("invoices", invoice);
    assert_eq!(paths(&found), ["lines/0/quantity", "lines/1/item_id", "lines/1/quantity"]);
    assert!(found.iter().all(|e| e.message.starts_with("expected")), "{found:?}");
    assert_eq!(found[0].message, "expected a decimal number");

    let found = errors("people", json!({"email": 12, "birth_date": "1962-02-18T00:00:00"}));
    assert_eq!(paths(&found), ["birth_date", "email"]);
    assert_eq!(found[1].message, "expected an object");

    let found = errors("people", json!({"email": {"address": 12}}));
    assert_eq!(found, [FieldError::new("email/address", "expected a string")]);
}

#[test]
fn enums_formats_and_required_fields_say_what_was_expected() {
    let found = errors("employees", json!({"gender": "X", "hired_date": "14/08/2002"}));
    assert_eq!(found[0].path, "gender");
    assert_eq!(found[0].message, r#"expected one of "M", "F""#);
    assert_eq!(found[1].path, "hired_date");
    assert!(found[1].message.starts_with("expected a date (YYYY-MM-DD)"));

    let found = errors("organizations", json!({"name": null, "is_customer": "yes"}));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&FieldError::new("name", "is required")));
    assert!(found.contains(&FieldError::new("is_customer", "expected a boolean")));

    let found = errors("payments", json!({"payment_lines": [{"amount": true}]}));
    assert_eq!(paths(&found), ["payment_lines/0/amount"]);
}

#[test]
fn free_form_entities_accept_any_object() {
    let journals = def("journals");
    assert!(!journals.has_schema);
    assert_eq!(json_schema(journals)["type"], "object");
    let mut record = json!({"lines": [{"debit": "x"}], "when": "2024-01-01T10:00:00"});
    let before = record.clone();
    assert!(normalize(journals, &mut record).is_ok());
    assert_eq!(record, before);
    assert!(validate(journals, &record).is_ok());
    assert!(validate(journals, &json!([1])).is_err());
}

#[test]
fn decimals_are_normalised_to_exact_numbers() {
    let mut item = json!({
        "sale_price": {"net_amount": "0.30", "total_amount": 1.98, "tax_rate": "1e1"},
        "weight": " 2.500 ", "quantity_on_hand": null
    });
    normalize(def("items"), &mut item).unwrap();
    let text = serde_json::to_string(&item).unwrap();
    assert_eq!(
        text,
        r#"{"sale_price":{"net_amount":0.30,"total_amount":1.98,"tax_rate":10},"weight":2.500,"quantity_on_hand":null}"#
    );

    let mut invoice = json!({"lines": [{"quantity": "abc", "unit_price": {"net_amount": "1,5"}},
        {"quantity": true, "total_price": {"tax_amount": "NaN"}}]});
    let found = normalize(def("invoices"), &mut invoice).unwrap_err();
    assert_eq!(
        paths(&found),
        ["lines/0/quantity", "lines/0/unit_price/net_amount", "lines/1/quantity", "lines/1/total_price/tax_amount"]
    );
    assert!(found.iter().all(|e| e.message == "expected a decimal number"));
}

#[test]
fn dates_are_normalised_to_utc_and_need_an_offset() {
    let mut invoice = json!({"transaction_date": "2024-01-01T10:00:00+02:00",
        "due_date": "2024-01-31T23:59:59.250-05:00", "created_at": "2024-01-01T10:00:00"});
    let found = normalize(def("invoices"), &mut invoice).unwrap_err();
    assert_eq!(found, [FieldError::new("created_at", "expected an RFC 3339 date-time with an offset (Z or +hh:mm)")]);
    assert_eq!(invoice["transaction_date"], "2024-01-01T08:00:00Z");
    assert_eq!(invoice["due_date"], "2024-02-01T04:59:59.250Z");

    let mut employee = json!({"birth_date": "1962-02-18T00:00:00Z", "hired_date": "2002-08-14",
        "released_date": "2010-01-01T00:00:00+01:00"});
    normalize(def("employees"), &mut employee).unwrap();
    assert_eq!(
        employee,
        json!({"birth_date": "1962-02-18T00:00:00Z", "hired_date": "2002-08-14",
        "released_date": "2009-12-31T23:00:00Z"})
    );

    let found = normalize(def("employees"), &mut json!({"hired_date": 2002})).unwrap_err();
    assert_eq!(paths(&found), ["hired_date"]);
}

#[test]
fn references_and_nulls_are_left_for_the_caller() {
    let external = json!([{"provider": "shopify", "realm": "store-1", "id": "1001"}]);
    let mut invoice = json!({"person_id": external.clone(), "lines": [{"item_id": external.clone()}],
        "amount": null, "lines_extra": null});
    let before = invoice.clone();
    normalize(def("invoices"), &mut invoice).unwrap();
    assert_eq!(invoice, before);
}

#[test]
fn text_round_trips_byte_for_byte() {
    let sent = r#"{"first_name":"Łukasz 李雷 🎸","last_name":"Gonçalves\u00e9","description":"naïve — “quoted” 日本語","amount":1.10}"#;
    let mut person: Value = serde_json::from_str(sent).unwrap();
    normalize(def("people"), &mut person).unwrap();
    validate(def("people"), &person).unwrap();
    let expected: Value = serde_json::from_str(sent).unwrap();
    assert_eq!(serde_json::to_string(&person).unwrap(), serde_json::to_string(&expected).unwrap());
    assert_eq!(person["first_name"], "Łukasz 李雷 🎸");
    assert_eq!(serde_json::to_string(&person["amount"]).unwrap(), "1.10");
}

#[test]
fn non_objects_are_refused() {
    assert_eq!(paths(&normalize(def("people"), &mut json!("x")).unwrap_err()), [""]);
    assert_eq!(paths(&errors("people", json!([]))), [""]);
}

#[test]
fn served_schemas_are_self_contained() {
    let schema = json_schema(def("invoices"));
    let keys: Vec<&str> = schema.as_object().unwrap().keys().map(String::as_str).take(3).collect();
    assert_eq!(keys, ["$schema", "$id", "title"]);
    assert_eq!(schema["title"], "Invoice");
    assert_eq!(schema["$defs"]["line"]["properties"]["quantity"]["$ref"], "#/$defs/decimal");
    assert_eq!(schema["$defs"]["decimal"]["format"], "decimal");
    assert_eq!(schema["properties"]["updated_at"]["$ref"], "#/$defs/date_time");
    let free = json_schema(def("app_users"));
    assert_eq!(free["title"], "app_users");
    assert!(free.get("properties").is_none());
}

/// Walks a schema and reports every keyword outside the shared set, and every
/// `$ref` with a constraint beside it (draft 7 would ignore the constraint).
fn draft_differences(schema: &Value, path: &str, found: &mut Vec<String>) {
    use super::validate::SHARED_KEYWORDS;

    let Some(fields) = schema.as_object() else {
        return;
    };
    for (keyword, value) in fields {
        let here = format!("{path}/{keyword}");
        if !SHARED_KEYWORDS.contains(&keyword.as_str()) {
            found.push(here.clone());
        }
        match keyword.as_str() {
            "properties" | "$defs" => value.as_object().into_iter().flatten().for_each(|(name, sub)| {
                draft_differences(sub, &format!("{here}/{name}"), found);
            }),
            "allOf" | "anyOf" => value.as_array().into_iter().flatten().enumerate().for_each(|(i, sub)| {
                draft_differences(sub, &format!("{here}/{i}"), found);
            }),
            "items" => draft_differences(value, &here, found),
            _ => {}
        }
    }
    let annotations = ["$ref", "$comment", "description", "title"];
    if fields.contains_key("$ref") && fields.keys().any(|k| !annotations.contains(&k.as_str())) {
        found.push(format!("{path}: a constraint beside $ref"));
    }
}

#[test]
fn schemas_mean_the_same_in_draft_7_and_draft_2020_12() {
    let mut found = Vec::new();
    for def in all() {
        draft_differences(json_schema(def), def.name, &mut found);
    }
    assert!(found.is_empty(), "schemas use what draft 7 reads differently: {found:?}");

    let mut sample = Vec::new();
    let schema = json!({"prefixItems": [], "properties": {"x": {"$ref": "#/a", "minimum": 1}}});
    draft_differences(&schema, "s", &mut sample);
    assert_eq!(sample, ["s/prefixItems", "s/properties/x/minimum", "s/properties/x: a constraint beside $ref"]);
}

#[test]
fn the_nul_character_is_refused_anywhere() {
    let mut person = json!({"first_name": "Ann\u{0}", "notes": [{"description": "ok"}, {"x\u{0}y": 1}]});
    let found = normalize(def("people"), &mut person).unwrap_err();
    assert_eq!(paths(&found), ["first_name", "notes/1/x\u{0}y"]);
    assert_eq!(found[0].message, "must not contain the character U+0000");

    let mut journal = json!({"memo": ["fine", "bad\u{0}"]});
    assert_eq!(paths(&normalize(def("journals"), &mut journal).unwrap_err()), ["memo/1"]);
    assert!(normalize(def("people"), &mut json!({"first_name": "Zoë 日本 🎵"})).is_ok());
}

#[test]
fn a_decimal_too_large_or_too_precise_says_so() {
    let nines = "9".repeat(200);
    let mut item = json!({ "sale_price": { "net_amount": "0.1000000000000000055511151231257827", "tax_amount": nines },
        "purchase_price": { "net_amount": "1,5" } });
    let found = normalize(def("items"), &mut item).unwrap_err();
    let messages: Vec<(&str, &str)> = found.iter().map(|e| (e.path.as_str(), e.message.as_str())).collect();
    for path in ["sale_price/net_amount", "sale_price/tax_amount"] {
        let (_, message) = messages.iter().find(|(p, _)| *p == path).expect(path);
        assert!(message.contains("too large or too precise"), "{path}: {message}");
    }
    assert!(messages.contains(&("purchase_price/net_amount", "expected a decimal number")), "{messages:?}");
}

fn date_time_names(def: &EntityDef) -> Vec<String> {
    super::date_time_fields(def).iter().map(|path| path.to_slash_string()).collect()
}

#[test]
fn date_time_fields_are_read_from_the_schemas() {
    let meta = ["created_at", "updated_at"];
    let transaction = ["created_at", "due_date", "transaction_date", "updated_at"];
    for name in ["invoices", "sales_orders", "purchase_orders", "quotes", "credit_notes"] {
        assert_eq!(date_time_names(def(name)), transaction, "{name}");
    }
    assert_eq!(date_time_names(def("payments")), ["created_at", "transaction_date", "updated_at"]);
    // `birth_date` is a date (YYYY-MM-DD or a date-time), not a date-time;
    // `lead_status_changes/created_at` sits in an array a filter cannot index.
    assert_eq!(date_time_names(def("people")), ["created_at", "lead_conversion_date", "updated_at"]);
    assert_eq!(date_time_names(def("organizations")), meta);
    for free in all().iter().filter(|d| !d.has_schema) {
        assert!(date_time_names(free).is_empty(), "{}", free.name);
    }
}

#[test]
fn every_date_time_field_is_normalised_to_utc() {
    for entity in all() {
        for path in super::date_time_fields(entity).iter() {
            // {"a": {"b": "…+02:00"}} for the path a/b.
            let mut record = json!("2030-05-05T12:00:00.500+02:00");
            for key in path.0.iter().rev() {
                record = json!({ key.as_str(): record });
            }
            normalize(entity, &mut record).unwrap_or_else(|e| panic!("{}: {e:?}", entity.name));
            let pointer = format!("/{}", path.0.join("/"));
            let stored = record.pointer(&pointer).and_then(Value::as_str);
            assert_eq!(stored, Some("2030-05-05T10:00:00.500Z"), "{}.{}", entity.name, path.to_slash_string());
        }
    }
}

#[test]
fn date_time_paths_follow_refs_combinators_and_objects_but_not_arrays() {
    let schema = json!({
        "$defs": {
            "when": { "type": "string", "format": "date-time" },
            "stamped": { "type": "object", "properties": { "at": { "$ref": "#/$defs/when" } } }
        },
        "allOf": [{ "properties": { "from_all_of": { "$ref": "#/$defs/when" } } }],
        "properties": {
            "plain": { "type": "string" },
            "day": { "type": "string", "format": "date" },
            "nested": { "$ref": "#/$defs/stamped" },
            "deeper": { "type": "object", "properties": { "inner": { "$ref": "#/$defs/stamped" } } },
            "listed": { "type": "array", "items": { "$ref": "#/$defs/stamped" } },
            "either": { "anyOf": [{ "type": "number" }, { "$ref": "#/$defs/when" }] },
            "plain_first": { "anyOf": [{ "type": "string" }, { "$ref": "#/$defs/when" }] },
            "object_or_time": { "oneOf": [{ "$ref": "#/$defs/stamped" }, { "$ref": "#/$defs/when" }] },
            "ref_id": { "$ref": "#/$defs/when" }
        }
    });
    let found: Vec<String> = super::normalize::date_time_paths_in(&schema, vec!["ref_id"])
        .into_iter()
        .map(|path| path.to_slash_string())
        .collect();
    let mut found = found;
    found.sort();
    // `plain_first`: a string meets the plain branch first and is left as
    // sent, so it is no date-time; `ref_id` is a reference, left alone.
    assert_eq!(found, ["deeper/inner/at", "either", "from_all_of", "nested/at", "object_or_time", "object_or_time/at"]);
}
