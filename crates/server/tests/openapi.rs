//! The OpenAPI document (`src/openapi.json`): it is OpenAPI 3.1, the server
//! serves it, and it and the routers do not drift apart.

mod common;

use std::collections::BTreeSet;

use common::{TestApp, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::Value;
use sharehub_server::openapi::OPENAPI_JSON;

/// Every route the routers register (`api/mod.rs`, `platform/mod.rs`), in
/// axum `{param}` syntax. Add a line here when you add a route, and document it.
const ROUTES: &[(&str, &str)] = &[
    // api/mod.rs
    ("GET", "/version"),
    ("GET", "/openapi.json"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("POST", "/batch"),
    ("GET", "/api/v2/json_schema/{entity}"),
    ("GET", "/api/v2/{group}"),
    ("GET", "/api/v2/{group}/changes"),
    ("GET", "/api/v2/{group}/{entity}"),
    ("POST", "/api/v2/{group}/{entity}"),
    ("PUT", "/api/v2/{group}/{entity}"),
    ("GET", "/api/v2/{group}/{entity}/{id}"),
    ("PUT", "/api/v2/{group}/{entity}/{id}"),
    ("DELETE", "/api/v2/{group}/{entity}/{id}"),
    // platform/mod.rs
    ("GET", "/platform/v1/orgs"),
    ("POST", "/platform/v1/orgs"),
    ("GET", "/platform/v1/apps"),
    ("POST", "/platform/v1/apps"),
    ("GET", "/platform/v1/apps/{app}"),
    ("PATCH", "/platform/v1/apps/{app}"),
    ("POST", "/platform/v1/apps/{app}/api-key"),
    ("POST", "/platform/v1/apps/{app}/webhook-secret"),
    ("GET", "/platform/v1/apps/{app}/groups"),
    ("GET", "/platform/v1/apps/{app}/deliveries"),
    ("GET", "/platform/v1/apps/{app}/dead-letters"),
    ("POST", "/platform/v1/apps/{app}/dead-letters/{webhook_id}/resend"),
    ("POST", "/platform/v1/groups"),
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn doc() -> Value {
    serde_json::from_str(OPENAPI_JSON).expect("openapi.json is JSON")
}

/// Every (METHOD, path) operation of the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(*method).is_some() {
                ops.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops
}

/// A concrete URL path for a templated one.
fn sample(path: &str) -> String {
    path.replace("{group}", "no-such-group")
        .replace("{entity}", "people")
        .replace("{id}", "00000000-0000-0000-0000-000000000000")
        .replace("{app}", "no-such-app")
        .replace("{webhook_id}", "no-such-webhook")
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => node,
    }
}

#[test]
fn the_document_is_openapi_3_1_with_the_shared_error_body() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["connecBasic"]["scheme"], "basic");
    assert_eq!(schemes["adminBearer"]["scheme"], "bearer");

    // `{entity}` is an enum of exactly the catalogue's 31 names.
    let names: BTreeSet<&str> = sharehub_model::catalog::all().iter().map(|d| d.name).collect();
    let documented: BTreeSet<&str> = doc["components"]["parameters"]["Entity"]["schema"]["enum"]
        .as_array()
        .expect("entity enum")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(documented, names);
    assert_eq!(documented.len(), 31);

    // Every error response of every operation is the one error body.
    let mut error_codes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else { continue };
            assert!(op["operationId"].is_string(), "{method} {path} has no operationId");
            for (code, response) in
                op["responses"].as_object().unwrap_or_else(|| panic!("{method} {path} has no responses"))
            {
                if !(code.starts_with('4') || code.starts_with('5')) {
                    continue;
                }
                error_codes.insert(code.clone());
                let response = resolve(&doc, response);
                let schema = &response["content"]["application/vnd.api+json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {code}");
            }
        }
    }
    for code in ["400", "401", "403", "404", "409", "412", "413", "415", "422", "503"] {
        assert!(error_codes.contains(code), "no operation documents {code}");
    }
    let error = &doc["components"]["schemas"]["Error"]["properties"];
    for field in ["id", "status", "code", "title", "detail", "source"] {
        assert!(error.get(field).is_some(), "Error lacks {field}");
    }
    assert!(error["source"]["properties"]["pointer"].is_object());

    // The webhook POST, with its headers.
    let webhook = &doc["webhooks"]["records"]["post"];
    let headers: BTreeSet<&str> =
        webhook["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(headers, BTreeSet::from(["webhook-id", "webhook-timestamp", "webhook-signature"]));
}

#[test]
fn every_route_is_documented_and_the_document_has_no_other() {
    let documented = operations(&doc());
    let routed: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(undocumented.is_empty(), "routes missing from openapi.json: {undocumented:?}");
    assert!(unrouted.is_empty(), "openapi.json documents operations the routers lack: {unrouted:?}");
}

#[tokio::test]
async fn the_server_serves_the_document() {
    let hub = TestApp::spawn().await;
    let response = hub.client.get(format!("{}/openapi.json", hub.base)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let served: Value = response.json().await.unwrap();
    assert_eq!(served, doc());
}

#[tokio::test]
async fn every_documented_operation_is_routed_on_the_real_server() {
    let hub = TestApp::spawn().await;

    // Without credentials a routed operation answers 401 (or its answer);
    // only a path the server lacks gets 404, a method it lacks 405.
    for (method, path) in operations(&doc()) {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}{}", hub.base, sample(&path));
        let response = hub.client.request(method.clone(), &url).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status != 404 && status != 405, "{method} {path} is documented but answers {status}: {body}");
    }

    // Documented GETs without parameters answer 200 (platform ones with the admin token).
    for (method, path) in operations(&doc()) {
        if method != "GET" || path.contains('{') {
            continue;
        }
        let mut request = hub.client.get(format!("{}{path}", hub.base));
        if path.starts_with("/platform/") {
            request = request.bearer_auth(ADMIN_TOKEN);
        }
        let status = request.send().await.unwrap().status();
        assert_eq!(status, 200, "GET {path}");
    }

    // The check can fail: a path the server lacks answers 404.
    let status = hub.client.get(format!("{}/api/v2/no-such-group/people/x/y", hub.base)).send().await.unwrap().status();
    assert_eq!(status, 404);
    let status = hub.client.request(Method::PATCH, format!("{}/version", hub.base)).send().await.unwrap().status();
    assert_eq!(status, 405, "a method the path lacks");
}
