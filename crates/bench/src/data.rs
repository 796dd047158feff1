//! The records the import scenarios write: the Chinook sample mapped onto
//! Connec! entities, and generated people. Every record carries the writing
//! app's own id (`"id": [{"provider", "id"}]`), and references use the same
//! form, so the hub resolves them through its id map. Numbers keep their
//! text (serde_json's arbitrary_precision), so money stays decimal.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

/// One record to import.
pub struct Row {
    pub entity: &'static str,
    /// The app's own id, unique across entities (also the raw table's key).
    pub ext_id: String,
    /// The record as sent, `id` array included.
    pub record: Value,
}

fn ext_ref(provider: &str, id: &str) -> Value {
    json!([{ "provider": provider, "id": id }])
}

/// Sets `key` when `value` is neither null nor missing.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        map.insert(key.to_string(), v.clone());
    }
}

fn object(pairs: &[(&str, Option<&Value>)]) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        put(&mut map, k, *v);
    }
    Value::Object(map)
}

fn row(provider: &str, entity: &'static str, ext_id: String, mut record: Value) -> Row {
    record["id"] = ext_ref(provider, &ext_id);
    Row { entity, ext_id, record }
}

/// The Chinook set in write order: organizations (customers' companies),
/// people (customers), employees, items (tracks), invoices with lines.
pub fn chinook(path: &Path, provider: &str) -> Result<Vec<Row>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let set: Value = serde_json::from_str(&text)?;
    let list = |k: &str| set[k].as_array().cloned().unwrap_or_default();
    let mut rows = Vec::new();

    let mut companies = BTreeMap::new();
    for c in list("customers") {
        if let Some(name) = c["company"].as_str() {
            let n = companies.len();
            companies.entry(name.to_string()).or_insert_with(|| format!("company-{n}"));
        }
    }
    for (name, id) in &companies {
        rows.push(row(provider, "organizations", id.clone(), json!({ "name": name, "is_customer": true })));
    }
    for c in list("customers") {
        let address = object(&[
            ("line1", c.get("address")),
            ("city", c.get("city")),
            ("region", c.get("state")),
            ("postal_code", c.get("postalcode")),
            ("country", c.get("country")),
        ]);
        let mut p = object(&[("first_name", c.get("firstname")), ("last_name", c.get("lastname"))]);
        p["is_customer"] = json!(true);
        p["email"] = object(&[("address", c.get("email"))]);
        p["phone_work"] = object(&[("landline", c.get("phone")), ("fax", c.get("fax"))]);
        p["address_work"] = json!({ "billing": address });
        if let Some(company) = c["company"].as_str() {
            p["organization_id"] = ext_ref(provider, &companies[company]);
            p["company_name"] = json!(company);
        }
        rows.push(row(provider, "people", format!("customer-{}", c["id"]), p));
    }
    for e in list("employees") {
        let date = |k: &str| e[k].as_str().map(|s| json!(&s[..10.min(s.len())]));
        let mut p = object(&[
            ("first_name", e.get("firstname")),
            ("last_name", e.get("lastname")),
            ("job_title", e.get("title")),
            ("birth_date", date("birthdate").as_ref()),
            ("hired_date", date("hiredate").as_ref()),
        ]);
        p["employee_id"] = json!(format!("E{}", e["id"]));
        p["email"] = object(&[("address", e.get("email"))]);
        p["phone"] = object(&[("landline", e.get("phone")), ("fax", e.get("fax"))]);
        p["address"] = json!({ "shipping": object(&[
            ("line1", e.get("address")), ("city", e.get("city")), ("region", e.get("state")),
            ("postal_code", e.get("postalcode")), ("country", e.get("country")),
        ]) });
        rows.push(row(provider, "employees", format!("employee-{}", e["id"]), p));
    }
    for t in list("tracks") {
        let mut item = object(&[("name", t.get("name")), ("description", t.get("composer"))]);
        item["reference"] = json!(format!("TRK-{}", t["id"]));
        item["type"] = json!("SERVICE");
        item["status"] = json!("ACTIVE");
        item["sale_price"] = json!({ "net_amount": t["unit_price"], "currency": "USD" });
        rows.push(row(provider, "items", format!("track-{}", t["id"]), item));
    }
    let mut lines: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for l in list("invoice_lines") {
        let invoice = l["invoice"].to_string();
        let n = lines.get(&invoice).map_or(0, Vec::len) + 1;
        lines.entry(invoice).or_default().push(json!({
            "line_number": n,
            "quantity": l["quantity"],
            "unit_price": { "net_amount": l["unit_price"], "currency": "USD" },
            "item_id": ext_ref(provider, &format!("track-{}", l["track"])),
        }));
    }
    for i in list("invoices") {
        let mut inv = json!({
            "type": "CUSTOMER",
            "status": "PAID",
            "transaction_number": format!("INV-{}", i["id"]),
            "transaction_date": i["invoicedate"],
            "person_id": ext_ref(provider, &format!("customer-{}", i["customer"])),
            "amount": { "total_amount": i["total"], "currency": "USD" },
        });
        inv["billing_address"] = object(&[
            ("line1", i.get("billingaddress")),
            ("city", i.get("billingcity")),
            ("region", i.get("billingstate")),
            ("postal_code", i.get("billingpostalcode")),
            ("country", i.get("billingcountry")),
        ]);
        inv["lines"] = Value::Array(lines.remove(&i["id"].to_string()).unwrap_or_default());
        rows.push(row(provider, "invoices", format!("invoice-{}", i["id"]), inv));
    }
    Ok(rows)
}

const FIRST: &[&str] = &[
    "Léa",
    "Noah",
    "Zoë",
    "Jürgen",
    "Chloé",
    "Mateo",
    "Søren",
    "Inès",
    "Oliver",
    "Amélie",
    "José",
    "Ana",
    "Björn",
    "Élodie",
    "Łukasz",
    "Maria",
    "Kenji",
    "Aïcha",
    "François",
    "Olga",
];
const LAST: &[&str] = &[
    "Müller",
    "García",
    "Dubois",
    "Smith",
    "Nowak",
    "Rossi",
    "Ødegaard",
    "Lefèvre",
    "Kowalski",
    "Sánchez",
    "Novák",
    "Öztürk",
    "Brown",
    "Fernández",
    "Jensen",
    "Tanaka",
    "Côté",
    "Schäfer",
    "Wilson",
    "Martín",
];
const CITIES: &[(&str, &str)] = &[
    ("Paris", "France"),
    ("München", "Germany"),
    ("São Paulo", "Brazil"),
    ("Kraków", "Poland"),
    ("Zürich", "Switzerland"),
    ("Montréal", "Canada"),
    ("Sevilla", "Spain"),
    ("Århus", "Denmark"),
    ("Toronto", "Canada"),
    ("Brno", "Czechia"),
];

/// A small deterministic generator (splitmix64), so every run writes the same rows.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[(self.next() % list.len() as u64) as usize]
    }
}

/// Generated person number `n` (the same `n` always gives the same person).
pub fn person(provider: &str, n: u64) -> Row {
    let mut mix = Mix(n.wrapping_mul(7919) ^ 0x5EED);
    let (first, last) = (mix.pick(FIRST), mix.pick(LAST));
    let (city, country) = CITIES[(mix.next() % CITIES.len() as u64) as usize];
    let street = mix.next() % 300 + 1;
    let record = json!({
        "first_name": first,
        "last_name": last,
        "job_title": if n.is_multiple_of(3) { "Buyer" } else { "Accountant" },
        "is_customer": n.is_multiple_of(2),
        "is_lead": n.is_multiple_of(5),
        "email": { "address": format!("{}.{}{}@example.com", ascii(first), ascii(last), n) },
        "phone_work": { "landline": format!("+33 1 {:02} {:02} {:02} {:02}", n % 100, (n / 100) % 100, mix.next() % 100, mix.next() % 100),
                        "mobile": format!("+49 151 {:08}", mix.next() % 100_000_000) },
        "address_work": { "billing": { "line1": format!("{street} Rue de l'Église"), "city": city,
                                       "postal_code": format!("{:05}", mix.next() % 100_000), "country": country } },
    });
    row(provider, "people", format!("person-{n}"), record)
}

/// People `from..to`.
pub fn people(provider: &str, from: u64, to: u64) -> Vec<Row> {
    (from..to).map(|n| person(provider, n)).collect()
}

/// Lower-case ASCII for e-mail local parts.
fn ascii(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'å' | 'Å' => Some('a'),
            'é' | 'è' | 'ê' | 'ë' | 'É' => Some('e'),
            'í' | 'ï' | 'î' => Some('i'),
            'ó' | 'ö' | 'ø' | 'ô' | 'Ø' | 'Ö' => Some('o'),
            'ú' | 'ü' | 'û' => Some('u'),
            'ç' => Some('c'),
            'ñ' => Some('n'),
            'ł' | 'Ł' => Some('l'),
            'š' => Some('s'),
            c if c.is_ascii_alphabetic() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}
