//! Amounts of transactions computed from their lines, in exact decimal arithmetic.
//!
//! Rules, applied only where the client left a value out (a value it sent is never
//! overwritten; a `null` counts as left out, and so does a total it sent back
//! unchanged after changing the line it came from: see [`echo`]):
//! * a line with `quantity` and `unit_price/{kind}` gets `total_price/{kind}` =
//!   quantity x unit price, for each kind of `net_amount`, `total_amount`,
//!   `tax_amount`; `tax_rate` and `currency` are copied from the unit price;
//! * the record's `amount/{kind}` is the sum of the lines' `total_price/{kind}`, when
//!   every priced line has that kind (a partial sum would be a wrong total); lines
//!   without any `total_price` (comments, headings) are left out of the sum;
//! * `amount/currency` is taken from the lines when they all agree on one.
//!
//! Decimal text: a product keeps at least the unit price's scale and drops the zeros
//! beyond it (`1.000 x 0.99` is `0.99`, `2 x 0.50` is `1.00`, `2.5 x 1.99` is
//! `4.975`); a sum keeps the largest scale of its terms (`0.10 + 0.20` is `0.30`).

mod echo;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

pub use echo::forget_echoed_totals;

use crate::catalog::EntityDef;
use crate::schema::decimal_to_json;
use crate::FieldError;

/// The amount kinds computed from lines.
const KINDS: [&str; 3] = ["net_amount", "total_amount", "tax_amount"];

/// For entities with lines: fills each line's missing `total_price` amounts from
/// `quantity` x `unit_price`, then the record's missing `amount` totals from the sum
/// over the lines. Never overwrites a value the client sent. Values that are not
/// decimals are left alone (validation reports them).
///
/// A product or sum too large for a decimal is an error at its path rather
/// than a total silently left out.
pub fn fill_amounts(def: &EntityDef, record: &mut Value) -> Result<(), Vec<FieldError>> {
    if !def.lines {
        return Ok(());
    }
    let Some(lines) = record.get_mut("lines").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    if lines.is_empty() {
        return Ok(());
    }
    let mut errors = Vec::new();
    for (i, line) in lines.iter_mut().enumerate() {
        let Some(line) = line.as_object_mut() else { continue };
        if let Err(kind) = fill_line(line) {
            errors.push(FieldError::new(format!("lines/{i}/total_price/{kind}"), TOO_LARGE));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let totals = line_totals(lines).map_err(|kind| vec![FieldError::new(format!("amount/{kind}"), TOO_LARGE)])?;
    if let Some(record) = record.as_object_mut() {
        fill_amount(record, &totals);
    }
    Ok(())
}

const TOO_LARGE: &str =
    "the total of the lines is too large, or has too many decimal places, for an exact decimal number";

/// Sums over the lines, per kind, and the currency they agree on.
#[derive(Default)]
struct LineTotals {
    sums: Vec<(&'static str, Decimal)>,
    currency: Option<Value>,
}

/// Fills a line's `total_price`; fails with the amount kind that overflowed.
fn fill_line(line: &mut Map<String, Value>) -> Result<(), &'static str> {
    let Some(quantity) = line.get("quantity").and_then(decimal) else {
        return Ok(());
    };
    let Some(unit_price) = line.get("unit_price").and_then(Value::as_object).cloned() else {
        return Ok(());
    };
    let total_price = line.entry("total_price").or_insert_with(|| Value::Object(Map::new()));
    if total_price.is_null() {
        *total_price = Value::Object(Map::new());
    }
    let Some(total_price) = total_price.as_object_mut() else {
        return Ok(());
    };

    let mut computed = false;
    for kind in KINDS {
        if is_present(total_price.get(kind)) {
            continue;
        }
        let Some(unit) = unit_price.get(kind).and_then(decimal) else {
            continue;
        };
        let product = product(quantity, unit).and_then(decimal_to_json).ok_or(kind)?;
        total_price.insert(kind.to_owned(), product);
        computed = true;
    }
    if computed {
        for key in ["tax_rate", "currency"] {
            copy_if_missing(&unit_price, total_price, key);
        }
    }
    Ok(())
}

/// quantity x unit price, with at least the unit price's scale; `None` when
/// no decimal holds it exactly.
fn product(quantity: Decimal, unit: Decimal) -> Option<Decimal> {
    let exact_product = exact(quantity.mantissa().checked_mul(unit.mantissa())?, quantity.scale() + unit.scale())?;
    let result = exact_product.normalize();
    if result.scale() >= unit.scale() {
        return Some(result);
    }
    // Back to the unit price's scale when that still fits (2 x 0.50 is 1.00).
    let widened = 10i128.checked_pow(unit.scale() - result.scale()).and_then(|f| result.mantissa().checked_mul(f));
    Some(widened.and_then(|m| exact(m, unit.scale())).unwrap_or(result))
}

/// `a + b` with the larger scale of the two; `None` when no decimal holds it
/// exactly.
fn sum(a: Decimal, b: Decimal) -> Option<Decimal> {
    let scale = a.scale().max(b.scale());
    let widen = |d: Decimal| d.mantissa().checked_mul(10i128.checked_pow(scale - d.scale())?);
    exact(widen(a)?.checked_add(widen(b)?)?, scale)
}

/// The decimal `mantissa` x 10^-`scale`, dropping only trailing zeros to fit
/// (at most 28 digits after the point, a 96-bit mantissa). Money is never
/// rounded: a value that does not fit is refused instead.
fn exact(mut mantissa: i128, mut scale: u32) -> Option<Decimal> {
    const LIMIT: u128 = 1 << 96;
    while scale > 28 || mantissa.unsigned_abs() >= LIMIT {
        if scale == 0 || mantissa % 10 != 0 {
            return None;
        }
        mantissa /= 10;
        scale -= 1;
    }
    Decimal::try_from_i128_with_scale(mantissa, scale).ok()
}

/// Sums the lines' totals per kind; fails with the kind whose sum overflowed.
fn line_totals(lines: &[Value]) -> Result<LineTotals, &'static str> {
    let priced: Vec<&Map<String, Value>> =
        lines.iter().filter_map(|line| line.get("total_price").and_then(Value::as_object)).collect();
    let mut totals = LineTotals::default();
    if priced.is_empty() {
        return Ok(totals);
    }
    for kind in KINDS {
        let values: Option<Vec<Decimal>> = priced.iter().map(|price| price.get(kind).and_then(decimal)).collect();
        let Some(values) = values else { continue };
        let sum = values.into_iter().try_fold(Decimal::ZERO, sum).ok_or(kind)?;
        totals.sums.push((kind, sum));
    }
    totals.currency = common_currency(lines);
    Ok(totals)
}

/// The currency every line states (on its total or unit price), if they agree.
fn common_currency(lines: &[Value]) -> Option<Value> {
    let mut found: Option<&Value> = None;
    for line in lines {
        let currency = ["total_price", "unit_price"]
            .iter()
            .find_map(|block| line.get(block)?.get("currency").filter(|c| c.is_string()));
        match (found, currency) {
            (_, None) => {}
            (None, Some(currency)) => found = Some(currency),
            (Some(seen), Some(currency)) if seen == currency => {}
            (Some(_), Some(_)) => return None,
        }
    }
    found.cloned()
}

fn fill_amount(record: &mut Map<String, Value>, totals: &LineTotals) {
    if totals.sums.is_empty() {
        return;
    }
    let amount = record.entry("amount").or_insert_with(|| Value::Object(Map::new()));
    if amount.is_null() {
        *amount = Value::Object(Map::new());
    }
    let Some(amount) = amount.as_object_mut() else {
        return;
    };
    for (kind, sum) in &totals.sums {
        if !is_present(amount.get(*kind)) {
            if let Some(value) = decimal_to_json(*sum) {
                amount.insert((*kind).to_owned(), value);
            }
        }
    }
    if let Some(currency) = &totals.currency {
        if !is_present(amount.get("currency")) {
            amount.insert("currency".to_owned(), currency.clone());
        }
    }
}

fn copy_if_missing(from: &Map<String, Value>, to: &mut Map<String, Value>, key: &str) {
    if let Some(value) = from.get(key).filter(|v| !v.is_null()) {
        if !is_present(to.get(key)) {
            to.insert(key.to_owned(), value.clone());
        }
    }
}

fn is_present(value: Option<&Value>) -> bool {
    value.is_some_and(|v| !v.is_null())
}

/// A decimal from a JSON number or a decimal string (before normalisation).
fn decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(number) => crate::schema::parse_decimal(&number.to_string()),
        Value::String(text) => crate::schema::parse_decimal(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::entity;
    use serde_json::json;

    /// Parses JSON text: `json!` would turn 0.10 into the f64 text 0.1.
    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn filled(mut record: Value) -> Value {
        fill_amounts(entity("invoices").unwrap(), &mut record).unwrap();
        record
    }

    fn text(value: &Value) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn ten_and_twenty_cents_make_thirty_exactly() {
        let record = filled(parse(
            r#"{"lines": [{"quantity": 1, "unit_price": {"net_amount": 0.10}},
                          {"quantity": 1, "unit_price": {"net_amount": 0.20}}]}"#,
        ));
        assert_eq!(text(&record["amount"]["net_amount"]), "0.30");
        assert_eq!(text(&record["lines"][0]["total_price"]["net_amount"]), "0.10");
        assert!(record["amount"].get("total_amount").is_none());
    }

    #[test]
    fn chinook_lines_give_the_invoice_total() {
        let record = filled(json!({"lines": [
            {"quantity": 1, "unit_price": {"total_amount": 0.99, "currency": "USD"}},
            {"quantity": 1, "unit_price": {"total_amount": 0.99, "currency": "USD"}}
        ]}));
        assert_eq!(text(&record["amount"]), r#"{"total_amount":1.98,"currency":"USD"}"#);
        assert_eq!(record["lines"][1]["total_price"]["currency"], "USD");

        let record = filled(json!({"lines": [{"quantity": 3, "unit_price": {"total_amount": 0.99}}]}));
        assert_eq!(text(&record["amount"]["total_amount"]), "2.97");
    }

    #[test]
    fn totals_that_no_decimal_holds_exactly_are_refused_not_rounded() {
        let record = |q: &str, p: &str| {
            parse(&format!(r#"{{"lines": [{{"quantity": {q}, "unit_price": {{"net_amount": {p}}}}}]}}"#))
        };
        let mut tiny = record("0.0000000000000000000000000001", "0.0000000000000000000000000001");
        let errors = fill_amounts(entity("invoices").unwrap(), &mut tiny).unwrap_err();
        assert_eq!(errors[0].path, "lines/0/total_price/net_amount");
        let mut precise = record("0.1234567890123456789012345678", "7922816251426433759354395033.5");
        assert!(fill_amounts(entity("invoices").unwrap(), &mut precise).is_err());

        // Exact when trailing zeros can go: 28 places x 2 places of .5 x .2.
        let fine = filled(record("0.5000000000000000000000000000", "0.20"));
        assert_eq!(text(&fine["lines"][0]["total_price"]["net_amount"]), "0.10");
        assert_eq!(sum(Decimal::new(1, 28), Decimal::new(1, 0)).unwrap().to_string(), "1.0000000000000000000000000001");
        assert!(sum(Decimal::MAX, Decimal::new(1, 1)).is_none(), "MAX + 0.1 needs a 97th bit");
    }

    #[test]
    fn products_keep_the_unit_price_scale() {
        assert_eq!(product(Decimal::new(1000, 3), Decimal::new(99, 2)).unwrap().to_string(), "0.99");
        assert_eq!(product(Decimal::new(2, 0), Decimal::new(50, 2)).unwrap().to_string(), "1.00");
        assert_eq!(product(Decimal::new(25, 1), Decimal::new(199, 2)).unwrap().to_string(), "4.975");
    }

    #[test]
    fn values_the_client_sent_are_never_overwritten() {
        let record = filled(parse(
            r#"{"amount": {"total_amount": 5, "currency": "EUR"},
                "lines": [{"quantity": 2, "unit_price": {"total_amount": "0.99", "tax_amount": 0.10},
                           "total_price": {"total_amount": 1.5}},
                          {"description": "a comment line"}]}"#,
        ));
        assert_eq!(text(&record["lines"][0]["total_price"]), r#"{"total_amount":1.5,"tax_amount":0.20}"#);
        assert_eq!(text(&record["amount"]), r#"{"total_amount":5,"currency":"EUR","tax_amount":0.20}"#);
    }

    #[test]
    fn a_kind_missing_on_some_priced_line_is_not_summed() {
        let record = filled(json!({"lines": [
            {"total_price": {"net_amount": 1, "tax_amount": 0.1}},
            {"total_price": {"net_amount": 2}}
        ]}));
        assert_eq!(text(&record["amount"]), r#"{"net_amount":3}"#);
    }

    #[test]
    fn entities_without_lines_and_odd_values_are_left_alone() {
        let mut person = json!({"lines": [{"quantity": 1, "unit_price": {"net_amount": 1}}]});
        fill_amounts(entity("people").unwrap(), &mut person).unwrap();
        assert!(person.get("amount").is_none());

        let record = filled(json!({"lines": [{"quantity": "abc", "unit_price": {"net_amount": 1}}]}));
        assert_eq!(record, json!({"lines": [{"quantity": "abc", "unit_price": {"net_amount": 1}}]}));
        assert_eq!(filled(json!({"lines": []})), json!({"lines": []}));
    }
}
