//! meterpay's OpenAPI document against the contract: every upstream
//! operation keeps its method, path and operationId; exactly the additions
//! are marked as such; every documented operation is routed; every `$ref`
//! resolves; the typed results match the contract's schemas.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::Method;
use serde_json::{Value, json};

use crate::contract::contract;
use crate::harness::{Backend, TestApp};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

/// (METHOD, path) → operation.
fn operations(paths: &Value, prefix: &str) -> BTreeMap<(String, String), Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in paths.as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                ops.insert(
                    (method.to_uppercase(), format!("{prefix}{path}")),
                    op.clone(),
                );
            }
        }
    }
    ops
}

fn reference(file: &str) -> Value {
    contract(file)
}

fn schema_sets(schema: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let props = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties: {schema}"))
        .keys()
        .cloned()
        .collect();
    let required = schema["required"]
        .as_array()
        .map(|r| r.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    (props, required)
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_owned());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_contract_and_the_routes() {
    let app = TestApp::start(Backend::Sqlite).await;
    let resp = app.get("/api/openapi.json").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.content_type, "application/json");
    let doc = resp.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let ours = operations(&doc["paths"], "");

    // Upstream operations: same method, path and operationId; not additions.
    let mut upstream = operations(&reference("openmeter-v3-subset.yaml")["paths"], "/api/v3");
    upstream.extend(operations(
        &reference("openmeter-v1-subset.yaml")["paths"],
        "",
    ));
    upstream.extend(operations(
        &reference("openmeter-v1-invoicing-subset.yaml")["paths"],
        "",
    ));
    upstream.extend(operations(
        &reference("openmeter-v3-invoicing-subset.yaml")["paths"],
        "/api/v3",
    ));

    for (key, op) in &upstream {
        let mine = ours
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} is not documented"));
        assert_eq!(mine["operationId"], op["operationId"], "{key:?}");
        assert!(
            mine.get("x-meterpay-addition").is_none(),
            "{key:?} is upstream"
        );
    }
    // Exactly these are additions, and say so.
    let additions: BTreeSet<(String, String)> = ours
        .keys()
        .filter(|k| !upstream.contains_key(*k))
        .cloned()
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (
            "GET",
            "/api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions",
        ),
        (
            "GET",
            "/api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions/{sessionId}",
        ),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/api/openapi.json"),
        ("GET", "/api/v3/openapi.json"),
        ("GET", "/api/v1/openapi.json"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(additions, expected);
    for key in &additions {
        assert_eq!(
            ours[key]["x-meterpay-addition"],
            Value::Bool(true),
            "{key:?}"
        );
        assert_eq!(
            ours[key]["description"],
            "An addition beyond the upstream OpenMeter API."
        );
    }
    // Token auth everywhere but the webhook and the operations endpoints.
    for ((method, path), op) in &ours {
        let public = path == "/api/v1/apps/{id}/stripe/webhook"
            || !path.starts_with("/api/v")
            || path.ends_with("/openapi.json");
        assert_eq!(op.get("security").is_none(), public, "{method} {path}");
        // The bearer token's 401 wherever the token is needed, and every
        // error answer a problem.
        assert_eq!(
            op["responses"].get("401").is_some(),
            !public,
            "{method} {path}"
        );
        for (status, response) in op["responses"].as_object().unwrap() {
            if status.as_str() >= "400" {
                assert_eq!(
                    response["content"]["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
            }
        }
        // ULID path parameters carry the pattern the server enforces.
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap();
            if param["in"] == "path" && ["customerId", "appId", "id", "invoiceId"].contains(&name) {
                assert_eq!(
                    param["schema"]["pattern"], "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$",
                    "{method} {path} {name}"
                );
            }
        }
    }

    // Each API's own document holds exactly that API's operations.
    for (url, prefix) in [
        ("/api/v3/openapi.json", "/api/v3/openmeter/"),
        ("/api/v1/openapi.json", "/api/v1/"),
    ] {
        let resp = app.get(url).await;
        assert_eq!(resp.status, 200, "{url}: {}", resp.body);
        let part: BTreeSet<_> = operations(&resp.body["paths"], "").into_keys().collect();
        let want: BTreeSet<_> = ours
            .keys()
            .filter(|(_, p)| p.starts_with(prefix) && !p.ends_with("/openapi.json"))
            .cloned()
            .collect();
        assert_eq!(part, want, "{url}");
    }

    // Every documented operation is routed (the router's fallback answers
    // "No route for" and 405 for a method it lacks).
    for (method, path) in ours.keys() {
        let concrete = path
            .replace("{customerId}", "01J00000000000000000000000")
            .replace("{customerIdOrKey}", "nobody")
            .replace("{appId}", "01J00000000000000000000000")
            .replace("{id}", "01J00000000000000000000000")
            .replace("{invoiceId}", "01J00000000000000000000000")
            .replace("{sessionId}", "cs_test_unknown")
            .replace("{appType}", "stripe")
            .replace("{type}", "stripe");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let op = &ours[&(method.clone(), path.clone())];
        if op["responses"]["200"]["content"]
            .get("text/plain")
            .is_some()
        {
            // Not JSON (`/metrics`): routed when it answers 200.
            let resp = app
                .client
                .request(m, format!("{}{concrete}", app.base))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{method} {path}");
            continue;
        }
        let body = (m != Method::GET && m != Method::DELETE).then(|| serde_json::json!({}));
        let resp = app.request(m, &concrete, body.as_ref()).await;
        let detail = resp.body["detail"].as_str().unwrap_or_default();
        assert!(
            resp.status != 405 && !detail.starts_with("No route for"),
            "{method} {path} is documented but not routed: {} {}",
            resp.status,
            resp.body
        );
    }

    // Every $ref resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }

    // The typed results have the contract's properties and required lists.
    let schemas = &doc["components"]["schemas"];
    let checkout = contract("checkout-session-result.schema.json");
    assert_eq!(
        schema_sets(&schemas["BillingAppStripeCreateCheckoutSessionResult"]),
        schema_sets(&checkout)
    );
    let v3 = reference("openmeter-v3-subset.yaml");
    let v1 = reference("openmeter-v1-subset.yaml");
    for (name, contract) in [
        ("BillingAppStripeCreateCustomerPortalSessionResult", &v3),
        ("BillingAppStripeCreateCustomerPortalSessionOptions", &v3),
        (
            "BillingCustomerStripeCreateCustomerPortalSessionRequest",
            &v3,
        ),
        ("StripeCustomerPortalSession", &v1),
        ("CreateStripeCustomerPortalSessionParams", &v1),
    ] {
        assert_eq!(
            schema_sets(&schemas[name]),
            schema_sets(&contract["components"]["schemas"][name]),
            "{name}"
        );
    }
    // meterpay has no meters: a usage-based line's quantity is an addition.
    for schema in ["LineV1", "UpdateLine"] {
        assert_eq!(
            schemas[schema]["properties"]["quantity"]["x-meterpay-addition"],
            Value::Bool(true),
            "{schema}.quantity: {}",
            schemas[schema]
        );
    }
    // Where the customer sees and pays an issued invoice: additions to v1's
    // open `InvoiceAppExternalIds`, never required, URIs.
    let external = &schemas["ExternalIdsV1"];
    for member in ["hostedInvoiceUrl", "invoicePdfUrl"] {
        let property = &external["properties"][member];
        assert_eq!(
            (&property["x-meterpay-addition"], &property["format"]),
            (&Value::Bool(true), &json!("uri")),
            "ExternalIdsV1.{member}: {external}"
        );
    }
    assert!(external.get("required").is_none(), "{external}");
    assert!(external.get("additionalProperties").is_none(), "{external}");
    // The history entry: the creation result's fields but the client secret,
    // plus what happened since.
    let (history, required) = schema_sets(&schemas["MeterpayCheckoutSessionRecord"]);
    let (result, _) = schema_sets(&checkout);
    let extra: BTreeSet<String> = [
        "app_id",
        "ui_mode",
        "payment_method_id",
        "failure_reason",
        "updated_at",
    ]
    .map(str::to_owned)
    .into();
    let mut want = result.clone();
    want.remove("client_secret");
    want.extend(extra);
    assert_eq!(history, want);
    let want_required: BTreeSet<String> = [
        "session_id",
        "app_id",
        "customer_id",
        "stripe_customer_id",
        "status",
        "mode",
        "ui_mode",
        "created_at",
        "updated_at",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(required, want_required);
}

/// (METHOD, path) of every route the router declares, read from the
/// `.route(..)` calls of `src/http/` and the prefixes `src/http/mod.rs`
/// nests them under (axum cannot list a router's routes).
fn declared_routes() -> BTreeSet<(String, String)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let read = |name: &str| std::fs::read_to_string(format!("{root}/{name}.rs")).unwrap();
    // (module, router function) → prefix.
    let assembly = read("mod");
    let mut prefixes: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut prefix = String::new();
    for line in assembly.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('"') {
            prefix = rest.split('"').next().unwrap().to_owned();
        }
        if line.starts_with("Router::new()") && !line.contains("merge") {
            continue;
        }
        if let Some(call) = line.strip_prefix(".merge(") {
            let call = call.trim_end_matches([')', ',']);
            if let Some((module, function)) = call.split_once("::") {
                let function = function.trim_end_matches("()").trim_end_matches('(');
                prefixes.insert((module.to_owned(), function.to_owned()), prefix.clone());
            }
        }
        if line.starts_with(".layer(") || line.starts_with(".route_layer(") {
            prefix.clear();
        }
    }
    let mut routes = BTreeSet::new();
    for ((module, function), prefix) in &prefixes {
        let source = read(module);
        let start = source
            .find(&format!("pub fn {function}() -> Router<AppState>"))
            .unwrap_or_else(|| panic!("{module}::{function}"));
        let body = &source[start..];
        let body = &body[..body.find("\n}\n").unwrap()];
        for call in body.split(".route(").skip(1) {
            let first = call.split([',', ')']).next().unwrap().trim();
            let path = match first.strip_prefix('"') {
                Some(literal) => literal.trim_end_matches('"').to_owned(),
                // A constant of the same module.
                None => {
                    let decl = format!("const {first}: &str = \"");
                    let at = source.find(&decl).unwrap_or_else(|| panic!("{decl}"));
                    let rest = &source[at + decl.len()..];
                    rest[..rest.find('"').unwrap()].to_owned()
                }
            };
            let path = format!("{prefix}{path}");
            for method in ["get", "put", "post", "delete", "patch"] {
                if call.contains(&format!("{method}(")) {
                    routes.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented() {
    let app = TestApp::start(Backend::Sqlite).await;
    let doc = app.get("/api/openapi.json").await.body;
    let documented: BTreeSet<_> = operations(&doc["paths"], "").into_keys().collect();
    let routes = declared_routes();
    assert!(routes.len() > 50, "{routes:?}");
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "undocumented routes: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        unrouted.is_empty(),
        "documented but not declared: {unrouted:?}"
    );
}

/// The served document's request body schema of `method path`, rooted so
/// its `$ref`s resolve.
fn request_validator(doc: &Value, method: &str, path: &str) -> jsonschema::Validator {
    let schema =
        &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{method} {path} has no JSON body");
    let root = serde_json::json!({"allOf": [schema], "components": doc["components"]});
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// The invoicing request bodies (and the customers' subject keys, whose
/// component a same-named invoice type once replaced) state what the
/// handlers take: each sample is valid by the served document exactly when
/// the server does not refuse it as invalid — but for the one rule across
/// members no schema can state (`.ci/schemathesis.toml`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoicing_request_schemas_state_the_handlers_rules() {
    use serde_json::json;

    let app = TestApp::start(Backend::Sqlite).await;
    let s = crate::invoices_v1::setup(&app, json!({}), false).await;
    let doc = app.get("/api/openapi.json").await.body;
    let pending = "/api/v1/billing/customers/{customerId}/invoices/pending-lines";
    let pending_at = crate::invoices_v1::pending_path(&s.customer_id);
    let unknown = "01J00000000000000000000000";
    let period = json!({"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"});
    let line = |extra: Value| {
        let mut line =
            json!({"name": "Fee", "period": period, "invoiceAt": "2026-11-01T00:00:00Z"});
        for (k, v) in extra.as_object().unwrap() {
            line[k] = v.clone();
        }
        json!({"currency": "USD", "lines": [line]})
    };
    let flat = json!({"type": "flat", "amount": "10"});
    let unit = json!({"type": "unit", "amount": "0.5"});
    let void_ok = json!({"action": {"percentage": 100, "action": {"type": "discard"}}, "reason": "duplicate"});
    let void_with = |pointer: &str, value: Value| {
        let mut body = void_ok.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let v1_update = |workflow: Value| json!({"supplier": {"name": "Meter Co"}, "customer": {}, "lines": [], "workflow": workflow});
    let v3_update = |workflow: Value| {
        json!({"type": "standard", "supplier": {}, "customer": {"id": s.customer_id, "name": "ACME"},
               "workflow": {"workflow": workflow}})
    };
    let void_path = "/api/v1/billing/invoices/{invoiceId}/void";
    let v1_invoice = "/api/v1/billing/invoices/{invoiceId}";
    let v3_invoice = "/api/v3/openmeter/billing/invoices/{invoiceId}";
    let action = "/api/v1/billing/invoices/invoice";
    // (method, documented path, concrete path, body, valid by the document, status)
    let cases: Vec<(&str, &str, String, Value, bool, u16)> = vec![
        (
            "post",
            pending,
            pending_at.clone(),
            crate::invoices_v1::two_lines(),
            true,
            201,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({"rateCard": {"price": unit}, "quantity": "0"})),
            true,
            201,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({"price": flat})),
            true,
            201,
        ),
        // meterpay gives new lines their ids.
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({"id": unknown, "rateCard": {"price": flat}})),
            false,
            400,
        ),
        // A flat price takes no quantity; a usage-based one needs it.
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({"rateCard": {"price": flat}, "quantity": "1"})),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({"rateCard": {"price": unit}})),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({"rateCard": {"price": unit}, "quantity": "-1"})),
            false,
            400,
        ),
        // The price once.
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({"price": flat, "rateCard": {"price": flat}})),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({})),
            false,
            400,
        ),
        // What meterpay does not do.
        (
            "post",
            pending,
            pending_at.clone(),
            line(
                json!({"rateCard": {"price": {"type": "dynamic", "multiplier": "1"}}, "quantity": "1"}),
            ),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({"featureKey": "api", "rateCard": {"price": flat}})),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(
                json!({"rateCard": {"price": flat, "discounts": {"percentage": {"percentage": 10}}}}),
            ),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(
                json!({"rateCard": {"price": {"type": "flat", "amount": "10", "minimumAmount": "5"}}}),
            ),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(
                json!({"rateCard": {"price": {"type": "package", "amount": "1", "quantityPerPackage": "0"}}, "quantity": "3"}),
            ),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(
                json!({"rateCard": {"price": {"type": "tiered", "tiers": [{"unitPrice": unit}]}}, "quantity": "3"}),
            ),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(
                json!({"rateCard": {"price": {"type": "tiered", "mode": "volume", "tiers": [{"upToAmount": "5"}]}}, "quantity": "3"}),
            ),
            false,
            400,
        ),
        (
            "post",
            pending,
            pending_at.clone(),
            line(json!({"rateCard": {"price": flat, "taxConfig": {"stripe": {"code": "txcd_1"}}}})),
            false,
            400,
        ),
        // A period ending before it starts: a rule across two members.
        (
            "post",
            pending,
            pending_at.clone(),
            line(
                json!({"rateCard": {"price": flat}, "period": {"from": "2026-11-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"}}),
            ),
            true,
            400,
        ),
        // Invoicing pending lines: no progressive billing.
        (
            "post",
            action,
            action.to_owned(),
            json!({"customerId": s.customer_id, "progressiveBillingOverride": true}),
            false,
            400,
        ),
        (
            "post",
            action,
            action.to_owned(),
            json!({"customerId": s.customer_id, "filters": {"lineIds": []}}),
            false,
            400,
        ),
        (
            "post",
            action,
            action.to_owned(),
            json!({"customerId": "acme"}),
            false,
            400,
        ),
        (
            "post",
            action,
            action.to_owned(),
            json!({"customerId": s.customer_id, "asOf": "yesterday"}),
            false,
            400,
        ),
        (
            "post",
            action,
            action.to_owned(),
            json!({"customerId": s.customer_id, "asOf": "2030-01-01T00:00:00Z", "progressiveBillingOverride": false}),
            true,
            201,
        ),
        // Voiding: the whole invoice, its lines discarded, for a reason.
        (
            "post",
            void_path,
            format!("/api/v1/billing/invoices/{unknown}/void"),
            void_ok.clone(),
            true,
            404,
        ),
        (
            "post",
            void_path,
            format!("/api/v1/billing/invoices/{unknown}/void"),
            void_with("/action/percentage", json!(50)),
            false,
            400,
        ),
        (
            "post",
            void_path,
            format!("/api/v1/billing/invoices/{unknown}/void"),
            void_with("/action/action/type", json!("pending")),
            false,
            400,
        ),
        (
            "post",
            void_path,
            format!("/api/v1/billing/invoices/{unknown}/void"),
            void_with("/reason", json!(" \t")),
            false,
            400,
        ),
        (
            "post",
            void_path,
            format!("/api/v1/billing/invoices/{unknown}/void"),
            {
                let mut body = void_ok.clone();
                body["overrides"] = json!([{"lineId": unknown}]);
                body
            },
            false,
            400,
        ),
        // Updates: the payment settings' enum and v1's due period.
        (
            "put",
            v1_invoice,
            format!("/api/v1/billing/invoices/{unknown}"),
            v1_update(
                json!({"workflow": {"payment": {"collectionMethod": "send_invoice"}, "invoicing": {"dueAfter": "P14D"}}}),
            ),
            true,
            404,
        ),
        (
            "put",
            v1_invoice,
            format!("/api/v1/billing/invoices/{unknown}"),
            v1_update(json!({"workflow": {"invoicing": {"dueAfter": "whenever"}}})),
            true,
            404,
        ),
        (
            "put",
            v1_invoice,
            format!("/api/v1/billing/invoices/{unknown}"),
            v1_update(json!({"workflow": {"payment": {"collectionMethod": ""}}})),
            false,
            400,
        ),
        (
            "put",
            v1_invoice,
            format!("/api/v1/billing/invoices/{unknown}"),
            v1_update(
                json!({"workflow": {"payment": {"collectionMethod": "charge_automatically"}, "invoicing": {"dueAfter": "P14D"}}}),
            ),
            false,
            400,
        ),
        (
            "put",
            v3_invoice,
            format!("/api/v3/openmeter/billing/invoices/{unknown}"),
            v3_update(
                json!({"payment": {"collection_method": "send_invoice", "due_after": "P14D"}}),
            ),
            true,
            404,
        ),
        (
            "put",
            v3_invoice,
            format!("/api/v3/openmeter/billing/invoices/{unknown}"),
            v3_update(json!({"payment": {"collection_method": ""}})),
            false,
            400,
        ),
        // Subject keys: 1 to 256 characters, no duplicates.
        (
            "post",
            "/api/v1/customers",
            "/api/v1/customers".to_owned(),
            json!({"name": "Empty key", "usageAttribution": {"subjectKeys": [""]}}),
            false,
            400,
        ),
        (
            "post",
            "/api/v3/openmeter/customers",
            "/api/v3/openmeter/customers".to_owned(),
            json!({"name": "Twice", "key": "twice", "usage_attribution": {"subject_keys": ["a", "a"]}}),
            false,
            400,
        ),
    ];
    // List parameters: an empty item names nothing and is refused.
    for query in ["customers=", "statuses=draft,", "expand="] {
        let resp = app.get(&format!("/api/v1/billing/invoices?{query}")).await;
        assert_eq!(resp.status, 400, "{query}: {}", resp.body);
    }
    for (method, path, concrete, body, valid, status) in cases {
        let validator = request_validator(&doc, method, path);
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors.is_empty(),
            valid,
            "{method} {path} {body}: {errors:?}"
        );
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = app.request(m, &concrete, Some(&body)).await;
        assert_eq!(
            resp.status, status,
            "{method} {concrete} {body}: {}",
            resp.body
        );
    }
}
