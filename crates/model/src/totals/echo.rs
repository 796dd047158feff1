//! Totals a client sends back unchanged after changing what they came from.
//!
//! A client that reads an invoice, changes a line's quantity and sends the
//! lines back also sends the `total_price` the hub computed for the old
//! quantity. Kept as sent (a value the client sends is never overwritten),
//! that total, and the amount summed from it, would be wrong. So a total that
//! is sent unchanged, that equalled what the old values give, and that the new
//! values no longer give, is taken for such an echo: it is dropped from the
//! write and computed again. A total the client changed, or had set to
//! something else than the product, stays the client's.

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{decimal, fill_line, line_totals, KINDS};
use crate::catalog::EntityDef;

/// Drops from `patch` the line totals and amounts it echoes from `old` (see
/// the module). Only a patch that sends lines can make totals stale.
pub fn forget_echoed_totals(def: &EntityDef, old: &Value, patch: &mut Map<String, Value>) {
    if !def.lines {
        return;
    }
    let Some(old_lines) = old.get("lines").and_then(Value::as_array) else { return };
    let Some(new_lines) = patch.get_mut("lines").and_then(Value::as_array_mut) else { return };
    let same_count = new_lines.len() == old_lines.len();
    let keys: Vec<Option<LineKey>> = new_lines.iter().map(line_key).collect();
    for (i, new_line) in new_lines.iter_mut().enumerate() {
        let unique_key = keys[i].as_ref().filter(|key| keys.iter().flatten().filter(|k| k == key).count() == 1);
        let Some(new_line) = new_line.as_object_mut() else { continue };
        if let Some(old_line) = matching_line(old_lines, new_line, unique_key, same_count.then_some(i)) {
            forget_echoed_line_total(old_line, new_line);
        }
    }
    forget_echoed_amount(old, old_lines, patch);
}

/// What tells a line without an `id` apart: what it sells and how it reads.
type LineKey = (Option<Value>, Option<Value>);

fn line_key(line: &Value) -> Option<LineKey> {
    let key = (line.get("item_id").cloned(), line.get("description").cloned());
    (key != (None, None)).then_some(key)
}

/// The old line a sent line stands for, when that is certain: the one with
/// its `id`; else the only one with its item and description (`key`, when no
/// other sent line has it); else the one at its place (`place`, given when
/// no line was added or removed). When none is certain, its totals are the
/// client's.
fn matching_line<'a>(
    old_lines: &'a [Value],
    new_line: &Map<String, Value>,
    key: Option<&LineKey>,
    place: Option<usize>,
) -> Option<&'a Map<String, Value>> {
    if let Some(id) = new_line.get("id").filter(|id| !id.is_null()) {
        return old_lines.iter().find(|old| old.get("id") == Some(id))?.as_object();
    }
    if let Some(key) = key {
        let mut same = old_lines.iter().filter(|old| line_key(old).as_ref() == Some(key));
        if let (Some(only), None) = (same.next(), same.next()) {
            return only.as_object();
        }
    }
    old_lines.get(place?)?.as_object()
}

fn forget_echoed_line_total(old_line: &Map<String, Value>, new_line: &mut Map<String, Value>) {
    let (was, now) = (computed_total(old_line), computed_total(new_line));
    let Some(before) = old_line.get("total_price").and_then(Value::as_object) else { return };
    let Some(sent) = new_line.get_mut("total_price").and_then(Value::as_object_mut) else { return };
    for kind in KINDS {
        let value = sent.get(kind).and_then(decimal);
        let echoed = value.is_some()
            && value == before.get(kind).and_then(decimal)
            && value == was.get(kind).copied()
            && value != now.get(kind).copied();
        if echoed {
            sent.remove(kind);
        }
    }
    if sent.values().all(Value::is_null) {
        new_line.remove("total_price");
    }
}

/// What the hub computes as a line's `total_price`, per kind.
fn computed_total(line: &Map<String, Value>) -> std::collections::HashMap<&'static str, Decimal> {
    let mut bare = line.clone();
    bare.remove("total_price");
    if fill_line(&mut bare).is_err() {
        return Default::default();
    }
    let total = bare.get("total_price").and_then(Value::as_object);
    KINDS.iter().filter_map(|kind| Some((*kind, total?.get(*kind).and_then(decimal)?))).collect()
}

/// An `amount` sent unchanged that was the sum of the old lines is cleared
/// (`null`, so the old value goes too) and summed again from the new ones.
fn forget_echoed_amount(old: &Value, old_lines: &[Value], patch: &mut Map<String, Value>) {
    let Some(before) = old.get("amount").and_then(Value::as_object) else { return };
    let Some(sent) = patch.get_mut("amount").and_then(Value::as_object_mut) else { return };
    let Ok(old_sums) = line_totals(old_lines) else { return };
    for (kind, sum) in old_sums.sums {
        let value = sent.get(kind).and_then(decimal);
        if value == Some(sum) && value == before.get(kind).and_then(decimal) {
            sent.insert(kind.to_owned(), Value::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::entity;
    use serde_json::json;

    fn invoices() -> &'static EntityDef {
        entity("invoices").unwrap()
    }

    /// The record as stored after a create: totals filled in.
    fn stored(record: Value) -> Value {
        let mut record = record;
        super::super::fill_amounts(invoices(), &mut record).unwrap();
        record
    }

    fn patch_of(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn an_echoed_total_of_a_changed_line_is_dropped() {
        let old = stored(json!({"lines": [{"quantity": 1, "unit_price": {"net_amount": "10.00"}}]}));
        let mut sent = old.clone();
        sent["lines"][0]["quantity"] = json!(3);
        let mut patch = patch_of(json!({"lines": sent["lines"], "amount": sent["amount"]}));
        forget_echoed_totals(invoices(), &old, &mut patch);
        assert!(patch["lines"][0].get("total_price").is_none(), "{patch:?}");
        assert_eq!(patch["amount"]["net_amount"], Value::Null);
    }

    #[test]
    fn a_total_the_client_changed_or_chose_is_kept() {
        let old = stored(json!({"lines": [{"quantity": 1, "unit_price": {"net_amount": 10}}]}));
        let mut patch = patch_of(json!({"lines": [
            {"quantity": 3, "unit_price": {"net_amount": 10}, "total_price": {"net_amount": 25}}
        ]}));
        forget_echoed_totals(invoices(), &old, &mut patch);
        assert_eq!(patch["lines"][0]["total_price"]["net_amount"], 25, "changed by the client");

        // A discount the client set when it created the line stays when echoed.
        let old = stored(json!({"lines": [
            {"quantity": 1, "unit_price": {"net_amount": 10}, "total_price": {"net_amount": 8}}
        ]}));
        let mut patch = patch_of(json!({"lines": [
            {"quantity": 2, "unit_price": {"net_amount": 10}, "total_price": {"net_amount": 8}}
        ]}));
        forget_echoed_totals(invoices(), &old, &mut patch);
        assert_eq!(patch["lines"][0]["total_price"]["net_amount"], 8);
    }

    #[test]
    fn a_line_removed_or_added_beside_a_changed_one_is_matched_by_its_description() {
        let old = stored(json!({"lines": [
            {"description": "A", "quantity": 1, "unit_price": {"net_amount": "10.00"}},
            {"description": "B", "quantity": 1, "unit_price": {"net_amount": "5.00"}}
        ]}));
        // A removed, B's quantity changed, B's old total sent back.
        let mut b = old["lines"][1].clone();
        b["quantity"] = json!(3);
        let mut patch = patch_of(json!({"lines": [b], "amount": old["amount"]}));
        forget_echoed_totals(invoices(), &old, &mut patch);
        assert!(patch["lines"][0].get("total_price").is_none(), "{patch:?}");

        // A line of no description or item among lines added: nothing is certain.
        let old = stored(json!({"lines": [{"quantity": 1, "unit_price": {"net_amount": 5}}]}));
        let mut patch = patch_of(json!({"lines": [
            {"quantity": 1, "unit_price": {"net_amount": 7}},
            {"quantity": 2, "unit_price": {"net_amount": 5}, "total_price": {"net_amount": 5}}
        ]}));
        forget_echoed_totals(invoices(), &old, &mut patch);
        assert_eq!(patch["lines"][1]["total_price"]["net_amount"], 5, "kept: no line is certainly the old one");
    }

    #[test]
    fn lines_are_matched_by_id_before_place() {
        let old = stored(json!({"lines": [
            {"id": "a", "quantity": 1, "unit_price": {"net_amount": 1}},
            {"id": "b", "quantity": 1, "unit_price": {"net_amount": 5}}
        ]}));
        // Line b, echoed first with a new quantity; line a unchanged second.
        let mut patch = patch_of(json!({"lines": [
            {"id": "b", "quantity": 2, "unit_price": {"net_amount": 5}, "total_price": {"net_amount": 5}},
            {"id": "a", "quantity": 1, "unit_price": {"net_amount": 1}, "total_price": {"net_amount": 1}}
        ]}));
        forget_echoed_totals(invoices(), &old, &mut patch);
        assert!(patch["lines"][0].get("total_price").is_none(), "{patch:?}");
        assert_eq!(patch["lines"][1]["total_price"]["net_amount"], 1, "unchanged line keeps its total");
    }
}
