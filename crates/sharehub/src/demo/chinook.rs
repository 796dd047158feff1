//! The Chinook sample database mapped to Connec! records, as the "store" app
//! would push them: every record carries the store's own id
//! (`[{"provider": "store", "id": "customer:1"}]`) and refers to others by
//! the store's ids, so the hub resolves references through its id map.
//!
//! Numbers are read with serde_json's `arbitrary_precision`, so a price
//! written `0.99` becomes the exact decimal 0.99: money never passes through
//! a float.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use anyhow::Context;
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

/// The provider name of the app that imports Chinook.
pub const PROVIDER: &str = "store";

/// The sample database, built into the binary so the demo needs no files.
const CHINOOK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/chinook.json"));

/// Records to import, entity by entity in an order where references point
/// backwards, and what the verification expects.
pub struct Plan {
    pub entities: Vec<(&'static str, Vec<Value>)>,
    /// Chinook's own invoice totals, by the store's invoice id.
    pub invoice_totals: BTreeMap<String, Decimal>,
}

impl Plan {
    /// Records of every entity.
    pub fn len(&self) -> usize {
        self.entities.iter().map(|(_, records)| records.len()).sum()
    }
}

/// Maps the built-in Chinook database.
pub fn plan() -> anyhow::Result<Plan> {
    let db: Value = serde_json::from_str(CHINOOK).context("reading the built-in chinook.json")?;
    let table = |name: &str| db.get(name).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();

    let customers = table("customers");
    let names = Names::new(table("albums"), table("artists"), table("genres"));
    let (invoices, invoice_totals) = invoices(table("invoices"), table("invoice_lines"))?;
    let entities = vec![
        ("organizations", organizations(customers)),
        ("people", customers.iter().map(person).collect()),
        ("employees", table("employees").iter().map(employee).collect()),
        ("items", table("tracks").iter().map(|t| item(t, &names)).collect::<anyhow::Result<_>>()?),
        ("invoices", invoices),
    ];
    Ok(Plan { entities, invoice_totals })
}

/// `[{"provider": "store", "id": ...}]`: an id or a reference in the store's terms.
pub fn store_id(id: impl std::fmt::Display) -> Value {
    json!([{ "provider": PROVIDER, "id": id.to_string() }])
}

fn company_id(name: &str) -> Value {
    store_id(format!("company:{name}"))
}

/// Customers' companies, once per name, with the first customer's contact details.
fn organizations(customers: &[Value]) -> Vec<Value> {
    let mut seen = std::collections::HashSet::new();
    customers
        .iter()
        .filter_map(|c| Some((c.get("company")?.as_str()?, c)))
        .filter(|(name, _)| seen.insert(*name))
        .map(|(name, c)| {
            compact(json!({
                "id": company_id(name),
                "name": name,
                "is_customer": true,
                "address": { "billing": address(c, "") },
                "phone": { "landline": c["phone"], "fax": c["fax"] },
                "email": { "address": c["email"] },
            }))
        })
        .collect()
}

fn person(c: &Value) -> Value {
    let organization = c["company"].as_str().map(company_id);
    compact(json!({
        "id": store_id(format!("customer:{}", c["id"])),
        "first_name": c["firstname"],
        "last_name": c["lastname"],
        "company_name": c["company"],
        "is_customer": true,
        "organization_id": organization,
        "email": { "address": c["email"] },
        "phone_work": { "landline": c["phone"], "fax": c["fax"] },
        "address_work": { "billing": address(c, "") },
    }))
}

fn employee(e: &Value) -> Value {
    compact(json!({
        "id": store_id(format!("employee:{}", e["id"])),
        "employee_id": e["id"].to_string(),
        "first_name": e["firstname"],
        "last_name": e["lastname"],
        "job_title": e["title"],
        "birth_date": date(&e["birthdate"]),
        "hired_date": date(&e["hiredate"]),
        "email": { "address": e["email"] },
        "phone": { "landline": e["phone"], "fax": e["fax"] },
        "address": { "shipping": address(e, "") },
    }))
}

fn item(track: &Value, names: &Names) -> anyhow::Result<Value> {
    let price = decimal(&track["unit_price"]).with_context(|| format!("price of track {}", track["id"]))?;
    Ok(compact(json!({
        "id": store_id(format!("track:{}", track["id"])),
        "code": track["id"].to_string(),
        "name": track["name"],
        "description": names.describe(track),
        "type": "SERVICE",
        "sale_price": { "net_amount": money(price), "total_amount": money(price), "currency": "USD" },
    })))
}

/// Invoices with their lines, and Chinook's total of each.
fn invoices(invoices: &[Value], lines: &[Value]) -> anyhow::Result<(Vec<Value>, BTreeMap<String, Decimal>)> {
    let mut by_invoice: HashMap<String, Vec<&Value>> = HashMap::new();
    for line in lines {
        by_invoice.entry(line["invoice"].to_string()).or_default().push(line);
    }
    let mut records = Vec::with_capacity(invoices.len());
    let mut totals = BTreeMap::new();
    for invoice in invoices {
        let id = format!("invoice:{}", invoice["id"]);
        let lines = by_invoice.remove(&invoice["id"].to_string()).unwrap_or_default();
        let total = decimal(&invoice["total"]).with_context(|| format!("total of {id}"))?;
        records.push(invoice_record(&id, invoice, &lines)?);
        totals.insert(id, total);
    }
    Ok((records, totals))
}

/// An invoice without `amount`: the hub computes it from the lines.
fn invoice_record(id: &str, invoice: &Value, lines: &[&Value]) -> anyhow::Result<Value> {
    let lines =
        lines.iter().enumerate().map(|(i, line)| invoice_line(i + 1, line)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(compact(json!({
        "id": store_id(id),
        "type": "CUSTOMER",
        "status": "PAID",
        "transaction_number": invoice["id"].to_string(),
        "transaction_date": invoice["invoicedate"],
        "person_id": store_id(format!("customer:{}", invoice["customer"])),
        "billing_address": address(invoice, "billing"),
        "lines": lines,
    })))
}

fn invoice_line(number: usize, line: &Value) -> anyhow::Result<Value> {
    let what = || format!("invoice line {}", line["id"]);
    let quantity = decimal(&line["quantity"]).with_context(what)?;
    let unit = decimal(&line["unit_price"]).with_context(what)?;
    let total = quantity.checked_mul(unit).with_context(what)?;
    Ok(json!({
        "line_number": number,
        "item_id": store_id(format!("track:{}", line["track"])),
        "quantity": money(quantity),
        "unit_price": { "net_amount": money(unit), "total_amount": money(unit), "currency": "USD" },
        "total_price": { "net_amount": money(total), "total_amount": money(total), "currency": "USD" },
    }))
}

/// An address block from Chinook's `{prefix}address`, `{prefix}city`, ... columns.
fn address(row: &Value, prefix: &str) -> Value {
    let field = |name: &str| row[format!("{prefix}{name}")].clone();
    json!({
        "line1": field("address"),
        "city": field("city"),
        "region": field("state"),
        "postal_code": field("postalcode"),
        "country": field("country"),
    })
}

/// Album, artist and genre names by id, to describe tracks.
struct Names {
    albums: HashMap<String, (String, String)>,
    artists: HashMap<String, String>,
    genres: HashMap<String, String>,
}

impl Names {
    fn new(albums: &[Value], artists: &[Value], genres: &[Value]) -> Self {
        let by_id = |rows: &[Value], field: &str| -> HashMap<String, String> {
            rows.iter().map(|r| (r["id"].to_string(), r[field].as_str().unwrap_or_default().to_string())).collect()
        };
        let albums = albums
            .iter()
            .map(|a| {
                (a["id"].to_string(), (a["title"].as_str().unwrap_or_default().to_string(), a["artist"].to_string()))
            })
            .collect();
        Self { albums, artists: by_id(artists, "name"), genres: by_id(genres, "name") }
    }

    /// "Album, by Artist (Genre)".
    fn describe(&self, track: &Value) -> String {
        let (album, artist) = self.albums.get(&track["album"].to_string()).cloned().unwrap_or_default();
        let artist = self.artists.get(&artist).map(String::as_str).unwrap_or("unknown artist");
        let genre = self.genres.get(&track["genre"].to_string()).map(String::as_str).unwrap_or("unknown genre");
        format!("{album}, by {artist} ({genre})")
    }
}

/// The exact decimal of a JSON number (its text, thanks to `arbitrary_precision`).
pub fn decimal(value: &Value) -> anyhow::Result<Decimal> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => anyhow::bail!("expected a number, got {other}"),
    };
    Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_str(&text))
        .with_context(|| format!("{text} is not a decimal"))
}

/// A decimal as a JSON number with exactly its text (`0.99`, never `0.9899999`).
fn money(value: Decimal) -> Value {
    serde_json::from_str(&value.to_string()).unwrap_or_else(|_| Value::String(value.to_string()))
}

/// `YYYY-MM-DD` of a Chinook date-time (`1962-02-18T00:00:00Z`).
fn date(value: &Value) -> Value {
    match value.as_str() {
        Some(s) if s.len() >= 10 => Value::String(s[..10].to_string()),
        _ => Value::Null,
    }
}

/// Drops nulls and the objects left empty by that, recursively: Chinook has
/// many empty columns, and a `null` would clear a field on an update.
fn compact(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let kept: Map<String, Value> = map
                .into_iter()
                .map(|(k, v)| (k, compact(v)))
                .filter(|(_, v)| !v.is_null() && !v.as_object().is_some_and(Map::is_empty))
                .collect();
            Value::Object(kept)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(compact).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_keep_their_decimal_text() {
        let price: Value = serde_json::from_str("0.99").expect("json");
        assert_eq!(money(decimal(&price).expect("decimal")).to_string(), "0.99");
        assert_eq!(money(Decimal::from(3) * Decimal::new(99, 2)).to_string(), "2.97");
    }

    #[test]
    fn the_planned_lines_add_up_to_chinook_totals() {
        let plan = plan().expect("plan");
        assert_eq!(plan.len(), 10 + 59 + 8 + 3503 + 412);
        let (_, invoices) = plan.entities.iter().find(|(e, _)| *e == "invoices").expect("invoices");
        for invoice in invoices {
            let id = invoice.pointer("/id/0/id").and_then(Value::as_str).expect("store id");
            let lines = invoice["lines"].as_array().expect("lines");
            let sum: Decimal = lines.iter().map(|l| decimal(&l["total_price"]["total_amount"]).expect("total")).sum();
            assert_eq!(sum, plan.invoice_totals[id], "{id}");
        }
    }
}
