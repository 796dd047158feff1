//! The catalogue of shared entities: the 31 collections of the Connec! v2 contract,
//! which of them have a JSON Schema or `lines[]`, and their reference fields.
//!
//! A reference path names a field holding the id of another record
//! (`organization_id`, `lines/item_id`); arrays met on the way are walked, so
//! `lines/item_id` covers `lines/0/item_id`, `lines/1/item_id`, ... Only fields that
//! point at a record of a catalogue entity are listed: id-references to embedded
//! sub-records (`lines/id`, `notes/id`, `project_task_id`) and HR numbers
//! (`employees.employee_id`) are not references.

use serde_json::Value;

use crate::FieldError;

/// One shared entity (a kind of business record).
#[derive(Debug)]
pub struct EntityDef {
    /// Plural snake_case name as in URLs (`people`, `tax_codes`); `company` for the singleton.
    pub name: &'static str,
    /// True only for `company`: one record per organization.
    pub singleton: bool,
    /// Fields holding ids of other records.
    pub references: &'static [Reference],
    /// False: the entity is accepted as a free-form JSON object.
    pub has_schema: bool,
    /// A transaction with `lines[]` whose amounts can be computed (see [`crate::totals`]).
    pub lines: bool,
}

/// A field of an entity that holds the id of a record of another entity.
#[derive(Debug, PartialEq, Eq)]
pub struct Reference {
    /// `/`-separated path without array indexes: `lines/item_id`.
    pub path: &'static str,
    /// Name of the entity referred to.
    pub target: &'static str,
}

const fn r(path: &'static str, target: &'static str) -> Reference {
    Reference { path, target }
}

/// Header references of every sales or purchase transaction with lines.
macro_rules! transaction_refs {
    ($($extra:expr),* $(,)?) => {
        &[
            r("organization_id", "organizations"),
            r("person_id", "people"),
            r("lines/item_id", "items"),
            r("lines/tax_code_id", "tax_codes"),
            r("lines/account_id", "accounts"),
            $($extra),*
        ]
    };
}

/// An entity validated by its JSON Schema.
const fn schema(name: &'static str, references: &'static [Reference]) -> EntityDef {
    EntityDef { name, singleton: false, references, has_schema: true, lines: false }
}

/// A transaction with a JSON Schema and `lines[]`.
const fn transaction(name: &'static str, references: &'static [Reference]) -> EntityDef {
    EntityDef { name, singleton: false, references, has_schema: true, lines: true }
}

/// An entity accepted as a free-form JSON object (no fixture showed its shape).
const fn free(name: &'static str, references: &'static [Reference]) -> EntityDef {
    EntityDef { name, singleton: false, references, has_schema: false, lines: false }
}

static ENTITIES: [EntityDef; 31] = [
    EntityDef { singleton: true, ..schema("company", &[]) },
    schema("accounts", &[]),
    transaction("invoices", transaction_refs![r("sales_order_id", "sales_orders")]),
    transaction("sales_orders", transaction_refs![]),
    transaction("purchase_orders", transaction_refs![]),
    transaction("quotes", transaction_refs![]),
    schema(
        "payments",
        &[
            r("organization_id", "organizations"),
            r("person_id", "people"),
            // `class` may also say SalesOrder; invoices are by far the common case.
            r("payment_lines/linked_transactions/id", "invoices"),
        ],
    ),
    free("stock_adjustments", &[]),
    // The journal shape is inferred (entities.md §18): lines carry an account.
    free("journals", &[r("lines/account_id", "accounts")]),
    schema(
        "items",
        &[
            r("sale_tax_code_id", "tax_codes"),
            r("purchase_tax_code_id", "tax_codes"),
            r("sale_account_id", "accounts"),
            r("purchase_account_id", "accounts"),
        ],
    ),
    schema("organizations", &[r("assignee_id", "app_users")]),
    schema("people", &[r("organization_id", "organizations"), r("assignee_id", "app_users")]),
    free("projects", &[r("organization_id", "organizations")]),
    schema("tax_codes", &[]),
    free("tax_rates", &[]),
    free("warehouses", &[]),
    free("events", &[]),
    free("venues", &[]),
    free("event_orders", &[]),
    free("work_locations", &[]),
    free("pay_items", &[]),
    // `employee_id` of an employee is its HR number, not a reference.
    schema("employees", &[r("work_locations/work_location_id", "work_locations")]),
    free("pay_schedules", &[r("employees/id", "employees")]),
    free(
        "time_sheets",
        &[
            r("employee_id", "employees"),
            r("time_sheet_lines/employee_id", "employees"),
            r("time_sheet_lines/project_id", "projects"),
        ],
    ),
    free("time_activities", &[r("employee_id", "employees")]),
    free("pay_runs", &[]),
    free("pay_stubs", &[]),
    free("leave_applications", &[r("employee_id", "employees"), r("pay_item_id", "pay_items")]),
    free("opportunities", &[r("lead_id", "people"), r("assignee_id", "app_users")]),
    transaction("credit_notes", transaction_refs![r("linked_transactions/id", "invoices")]),
    free("app_users", &[]),
];

/// The entity named `name` (plural URL name, or `company`), if it is in the catalogue.
pub fn entity(name: &str) -> Option<&'static EntityDef> {
    ENTITIES.iter().find(|def| def.name == name)
}

/// Every entity of the catalogue, in the order of the Connec! contract.
pub fn all() -> &'static [EntityDef] {
    &ENTITIES
}

/// Calls `f` for every reference value present in `data`, with its concrete path
/// (`lines/1/item_id`). Arrays met before the last key are walked; the value at the
/// last key is passed whole, even when it is an external-id array. Null and missing
/// values are skipped.
pub fn for_each_reference<'a>(def: &EntityDef, data: &'a Value, mut f: impl FnMut(&Reference, &str, &'a Value)) {
    // One path buffer for the whole walk: this runs for every record written
    // and every record shown with id arrays.
    let mut path = String::new();
    for reference in def.references {
        visit(data, reference.path, &mut path, &mut |path, value| f(reference, path, value));
    }
}

/// Walks `keys` (the rest of a reference path, `/`-separated; empty at its
/// end) down from `node`; `path` is the concrete path to `node`.
fn visit<'a>(node: &'a Value, keys: &str, path: &mut String, f: &mut dyn FnMut(&str, &'a Value)) {
    if keys.is_empty() {
        if !node.is_null() {
            f(path, node);
        }
        return;
    }
    let (key, rest) = keys.split_once('/').unwrap_or((keys, ""));
    match node {
        Value::Array(elements) => {
            for (index, element) in elements.iter().enumerate() {
                let mark = push_index(path, index);
                visit(element, keys, path, f);
                path.truncate(mark);
            }
        }
        Value::Object(map) => {
            if let Some(child) = map.get(key) {
                let mark = push_key(path, key);
                visit(child, rest, path, f);
                path.truncate(mark);
            }
        }
        _ => {}
    }
}

/// Like [`for_each_reference`], but lets `f` rewrite each value in place (to resolve
/// external ids into hub ids, or back). Every error `f` returns is collected.
pub fn for_each_reference_mut(
    def: &EntityDef,
    data: &mut Value,
    mut f: impl FnMut(&Reference, &str, &mut Value) -> Result<(), FieldError>,
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut path = String::new();
    for reference in def.references {
        visit_mut(data, reference.path, &mut path, &mut |path, value| {
            if let Err(error) = f(reference, path, value) {
                errors.push(error);
            }
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn visit_mut(node: &mut Value, keys: &str, path: &mut String, f: &mut dyn FnMut(&str, &mut Value)) {
    if keys.is_empty() {
        if !node.is_null() {
            f(path, node);
        }
        return;
    }
    let (key, rest) = keys.split_once('/').unwrap_or((keys, ""));
    match node {
        Value::Array(elements) => {
            for (index, element) in elements.iter_mut().enumerate() {
                let mark = push_index(path, index);
                visit_mut(element, keys, path, f);
                path.truncate(mark);
            }
        }
        Value::Object(map) => {
            if let Some(child) = map.get_mut(key) {
                let mark = push_key(path, key);
                visit_mut(child, rest, path, f);
                path.truncate(mark);
            }
        }
        _ => {}
    }
}

/// Appends `/key` (or `key` at the root) to `path`; answers the length to cut back to.
fn push_key(path: &mut String, key: &str) -> usize {
    let mark = path.len();
    if !path.is_empty() {
        path.push('/');
    }
    path.push_str(key);
    mark
}

fn push_index(path: &mut String, index: usize) -> usize {
    use std::fmt::Write;
    let mark = path.len();
    if !path.is_empty() {
        path.push('/');
    }
    let _ = write!(path, "{index}");
    mark
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_catalogue_holds_the_31_contract_entities_once_each() {
        let names = "company accounts invoices sales_orders purchase_orders quotes payments \
            stock_adjustments journals items organizations people projects tax_codes tax_rates \
            warehouses events venues event_orders work_locations pay_items employees \
            pay_schedules time_sheets time_activities pay_runs pay_stubs leave_applications \
            opportunities credit_notes app_users";
        for name in names.split_whitespace() {
            assert!(entity(name).is_some(), "{name} missing");
        }
        assert_eq!(all().len(), 31);
        assert!(entity("contacts").is_none());
        let singletons: Vec<_> = all().iter().filter(|d| d.singleton).map(|d| d.name).collect();
        assert_eq!(singletons, ["company"]);
    }

    #[test]
    fn every_reference_targets_a_catalogue_entity() {
        for def in all() {
            for reference in def.references {
                assert!(entity(reference.target).is_some(), "{}.{}", def.name, reference.path);
            }
        }
    }

    #[test]
    fn employee_numbers_are_not_references() {
        let employees = entity("employees").unwrap();
        assert!(employees.references.iter().all(|r| r.path != "employee_id"));
        let leave = entity("leave_applications").unwrap();
        assert!(leave.references.iter().any(|r| r.path == "employee_id"));
    }

    #[test]
    fn references_are_visited_through_arrays_with_concrete_paths() {
        let invoice = json!({
            "organization_id": "o1",
            "person_id": null,
            "lines": [{"item_id": "i1"}, {"description": "Shipping"}, {"item_id": [{"id": "x"}]}]
        });
        let mut seen = Vec::new();
        for_each_reference(entity("invoices").unwrap(), &invoice, |r, path, value| {
            seen.push((r.target, path.to_owned(), value.clone()));
        });
        assert_eq!(
            seen,
            [
                ("organizations", "organization_id".to_owned(), json!("o1")),
                ("items", "lines/0/item_id".to_owned(), json!("i1")),
                ("items", "lines/2/item_id".to_owned(), json!([{"id": "x"}])),
            ]
        );
    }

    #[test]
    fn nested_arrays_are_walked_and_all_errors_collected() {
        let mut payment = json!({"payment_lines": [
            {"linked_transactions": [{"id": "a"}, {"id": "b"}]},
            {"linked_transactions": [{"id": "c"}]}
        ]});
        let result = for_each_reference_mut(entity("payments").unwrap(), &mut payment, |_, p, v| {
            if v == "b" {
                return Err(FieldError::new(p, "unknown invoice"));
            }
            *v = json!(format!("hub-{}", v.as_str().unwrap_or_default()));
            Ok(())
        });
        let errors = result.unwrap_err();
        assert_eq!(errors, [FieldError::new("payment_lines/0/linked_transactions/1/id", "unknown invoice")]);
        assert_eq!(payment["payment_lines"][1]["linked_transactions"][0]["id"], "hub-c");
        assert_eq!(payment["payment_lines"][0]["linked_transactions"][0]["id"], "hub-a");
    }
}
