//! The contract: asserts that a response is what the OpenMeter v1 / v3 specs
//! (OpenAPI 3.0) and the checkout result JSON Schema say it must be.
//!
//! The specs are read from `tests/contract/`, a structural extract of
//! `../shared/reference/` (paths, methods, parameters, schemas, statuses; no
//! prose), so the tests run from any fresh clone. When `../shared` is beside
//! the clone, `committed_extract_is_current` checks the extract against it;
//! `tools/regenerate-contract` rewrites it.
//!
//! OpenAPI 3.0 schemas are not JSON Schema, so each one is converted first:
//! `nullable: true` becomes "or null", annotations (`readOnly`, `example`,
//! `x-*`, …) are dropped, and `$ref`s resolve against the spec's own
//! `components`. Formats (`date-time`, `uri`, …) are asserted, not annotated.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spec {
    V1,
    V3,
    /// `openmeter-v1-invoicing-subset.yaml`: pending lines and invoices.
    V1Invoicing,
    /// `openmeter-v3-invoicing-subset.yaml`: invoices.
    V3Invoicing,
}

/// The reference files the extract is made from, and their extract's name.
const REFERENCES: &[(&str, &str)] = &[
    ("openmeter-v1-subset.yaml", "openmeter-v1-subset.json"),
    ("openmeter-v3-subset.yaml", "openmeter-v3-subset.json"),
    (
        "openmeter-v1-invoicing-subset.yaml",
        "openmeter-v1-invoicing-subset.json",
    ),
    (
        "openmeter-v3-invoicing-subset.yaml",
        "openmeter-v3-invoicing-subset.json",
    ),
    (
        "checkout-session-result.schema.json",
        "checkout-session-result.schema.json",
    ),
];

/// `../shared/reference/` (or `$METERPAY_SHARED_DIR/reference`), where present.
fn reference_dir() -> PathBuf {
    std::env::var_os("METERPAY_SHARED_DIR")
        .map(|dir| PathBuf::from(dir).join("reference"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference"))
}

fn extract_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contract")
}

/// The committed extract of a reference file, by the reference's name.
pub fn contract(reference: &str) -> Value {
    let (_, extract) = REFERENCES
        .iter()
        .find(|(name, _)| *name == reference)
        .unwrap_or_else(|| panic!("{reference} is not a known reference file"));
    let path = extract_dir().join(extract);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the contract {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load_yaml(file: &str) -> Value {
    contract(file)
}

/// Keys that carry prose (or sample data), never structure.
const PROSE: &[&str] = &[
    "description",
    "summary",
    "title",
    "example",
    "examples",
    "externalDocs",
    "x-go-type",
    "x-omitzero",
    "x-speakeasy-name-override",
    "x-speakeasy-deprecation-message",
    "x-internal",
    "x-unstable",
    "x-private",
    "x-enum-varnames",
    "x-enumNames",
    "$comment",
];

/// The structure of a reference document: every key except prose, except
/// where the key is a name (a property, path, schema or response code).
pub fn extract(value: &Value) -> Value {
    extract_at(value, false)
}

fn extract_at(value: &Value, keys_are_names: bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| keys_are_names || !PROSE.contains(&key.as_str()))
                .map(|(key, inner)| {
                    // The members of these maps are named by the document's author.
                    let names = !keys_are_names
                        && matches!(
                            key.as_str(),
                            "properties"
                                | "patternProperties"
                                | "paths"
                                | "schemas"
                                | "parameters"
                                | "responses"
                                | "requestBodies"
                                | "headers"
                                | "securitySchemes"
                                | "content"
                                | "mapping"
                                | "callbacks"
                                | "links"
                                | "variables"
                                | "encoding"
                                | "$defs"
                                | "definitions"
                        )
                        && inner.is_object();
                    (key.clone(), extract_at(inner, names))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|i| extract_at(i, false)).collect()),
        other => other.clone(),
    }
}

/// The committed extract equals what the reference files say today, when
/// they are here to compare with; `METERPAY_REGENERATE_CONTRACT=1` rewrites it.
#[test]
fn committed_extract_is_current() {
    let dir = reference_dir();
    if !dir.is_dir() {
        eprintln!(
            "{} is not here: the committed extract is used as it is",
            dir.display()
        );
        return;
    }
    let regenerate = std::env::var_os("METERPAY_REGENERATE_CONTRACT").is_some();
    let mut stale = Vec::new();
    for (reference, extract_name) in REFERENCES {
        let path = dir.join(reference);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let raw: Value = if reference.ends_with(".json") {
            serde_json::from_str(&text).expect("reference is JSON")
        } else {
            serde_yaml_ng::from_str(&text).expect("reference is YAML")
        };
        let fresh = serde_json::to_string_pretty(&extract(&raw)).expect("serialise") + "\n";
        let target = extract_dir().join(extract_name);
        if regenerate {
            std::fs::create_dir_all(extract_dir()).expect("create tests/contract");
            std::fs::write(&target, fresh).expect("write the extract");
        } else if std::fs::read_to_string(&target).ok().as_deref() != Some(fresh.as_str()) {
            stale.push(extract_name.to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "tests/contract is older than {}: {stale:?}; run tools/regenerate-contract and commit",
        dir.display()
    );
}

#[test]
fn the_extract_keeps_names_and_drops_prose() {
    let raw = json!({
        "description": "prose",
        "properties": {
            "description": {"type": "string", "description": "prose", "example": "x"},
            "title": {"type": "string", "title": "Title"}
        },
        "required": ["description"]
    });
    assert_eq!(
        extract(&raw),
        json!({
            "properties": {
                "description": {"type": "string"},
                "title": {"type": "string"}
            },
            "required": ["description"]
        })
    );
}

struct Document {
    raw: Value,
    /// `components` with every schema converted to JSON Schema.
    components: Value,
}

static V1: LazyLock<Document> =
    LazyLock::new(|| Document::new(load_yaml("openmeter-v1-subset.yaml")));
static V3: LazyLock<Document> =
    LazyLock::new(|| Document::new(load_yaml("openmeter-v3-subset.yaml")));
static V1_INVOICING: LazyLock<Document> =
    LazyLock::new(|| Document::new(load_yaml("openmeter-v1-invoicing-subset.yaml")));
static V3_INVOICING: LazyLock<Document> =
    LazyLock::new(|| Document::new(load_yaml("openmeter-v3-invoicing-subset.yaml")));
static CACHE: LazyLock<Mutex<HashMap<String, Arc<Validator>>>> = LazyLock::new(Default::default);

impl Document {
    fn new(raw: Value) -> Self {
        let mut schemas = Map::new();
        if let Some(all) = raw["components"]["schemas"].as_object() {
            for (name, schema) in all {
                schemas.insert(name.clone(), convert(schema));
            }
        }
        Document {
            components: json!({"schemas": schemas}),
            raw,
        }
    }
}

fn doc(spec: Spec) -> &'static Document {
    match spec {
        Spec::V1 => &V1,
        Spec::V3 => &V3,
        Spec::V1Invoicing => &V1_INVOICING,
        Spec::V3Invoicing => &V3_INVOICING,
    }
}

const ANNOTATIONS: &[&str] = &[
    "readOnly",
    "writeOnly",
    "example",
    "examples",
    "discriminator",
    "xml",
    "externalDocs",
    "deprecated",
    "nullable",
];

/// OpenAPI 3.0 schema object → JSON Schema (draft 4, whose `$ref` semantics
/// OpenAPI 3.0 shares).
fn convert(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in obj {
        if ANNOTATIONS.contains(&key.as_str()) || key.starts_with("x-") {
            continue;
        }
        let converted = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => Value::Object(
                value
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" if value.is_object() => convert(value),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .map(|a| a.iter().map(convert).collect())
                    .unwrap_or_default(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        json!({"anyOf": [Value::Object(out), {"type": "null"}]})
    } else {
        Value::Object(out)
    }
}

fn compile(key: String, build: impl FnOnce() -> Value) -> Arc<Validator> {
    if let Some(v) = CACHE.lock().unwrap().get(&key) {
        return v.clone();
    }
    let schema = build();
    let validator = jsonschema::options()
        .with_draft(Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("contract schema for {key} does not compile: {e}"));
    let validator = Arc::new(validator);
    CACHE.lock().unwrap().insert(key, validator.clone());
    validator
}

/// A schema (inline or `$ref`) rooted so its refs resolve in `spec`.
fn rooted(spec: Spec, schema: &Value) -> Value {
    let mut root = convert(schema).as_object().cloned().unwrap_or_default();
    root.insert("components".into(), doc(spec).components.clone());
    Value::Object(root)
}

fn check(validator: &Validator, value: &Value) -> Result<(), Vec<String>> {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("at [{}]: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn fail(what: &str, errors: Vec<String>, value: &Value) -> ! {
    panic!(
        "{what} does not match the contract:\n  {}\nbody:\n{}",
        errors.join("\n  "),
        serde_json::to_string_pretty(value).unwrap_or_default()
    )
}

fn operation(spec: Spec, operation_id: &str) -> &'static Value {
    let paths = doc(spec).raw["paths"].as_object().expect("spec has paths");
    for item in paths.values() {
        for op in item.as_object().into_iter().flat_map(|o| o.values()) {
            if op["operationId"] == operation_id {
                return op;
            }
        }
    }
    panic!("no operation {operation_id} in the {spec:?} contract")
}

fn deref(spec: Spec, value: &Value) -> &Value {
    match value["$ref"].as_str() {
        Some(r) => {
            let mut node = &doc(spec).raw;
            for part in r.trim_start_matches("#/").split('/') {
                node = &node[part];
            }
            node
        }
        None => value,
    }
}

/// Non-panicking form of [`assert_response`].
pub fn validate_response(
    spec: Spec,
    operation_id: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) -> Result<(), Vec<String>> {
    let responses = &operation(spec, operation_id)["responses"];
    let listed = &responses[status.to_string()];
    let response = if listed.is_null() {
        &responses["default"]
    } else {
        listed
    };
    if response.is_null() {
        return Err(vec![format!(
            "status {status} is not a response of {operation_id}"
        )]);
    }
    let response = deref(spec, response);
    let Some(content) = response["content"].as_object() else {
        return if body.is_null() {
            Ok(())
        } else {
            Err(vec![format!(
                "{operation_id} {status} has no body in the contract"
            )])
        };
    };
    let media = content_type.split(';').next().unwrap_or("").trim();
    let Some(entry) = content.get(media) else {
        return Err(vec![format!(
            "content type [{media}] is not one of {:?}",
            content.keys().collect::<Vec<_>>()
        )]);
    };
    let key = format!("{spec:?}/{operation_id}/{status}/{media}");
    let validator = compile(key, || rooted(spec, &entry["schema"]));
    check(&validator, body)
}

/// Asserts the response is one the contract allows for `operation_id`.
pub fn assert_response(
    spec: Spec,
    operation_id: &str,
    status: u16,
    content_type: &str,
    body: &Value,
) {
    if let Err(errors) = validate_response(spec, operation_id, status, content_type, body) {
        fail(&format!("{spec:?} {operation_id} {status}"), errors, body);
    }
}

pub fn validate_schema(spec: Spec, schema_name: &str, value: &Value) -> Result<(), Vec<String>> {
    assert!(
        doc(spec).raw["components"]["schemas"][schema_name].is_object(),
        "no schema {schema_name} in the {spec:?} contract"
    );
    let key = format!("{spec:?}/schema/{schema_name}");
    let validator = compile(key, || {
        rooted(
            spec,
            &json!({"$ref": format!("#/components/schemas/{schema_name}")}),
        )
    });
    check(&validator, value)
}

pub fn assert_schema(spec: Spec, schema_name: &str, value: &Value) {
    if let Err(errors) = validate_schema(spec, schema_name, value) {
        fail(&format!("{spec:?} {schema_name}"), errors, value);
    }
}

/// Asserts a request body is what the contract accepts for `operation_id`,
/// so a test's input is known to be contract-valid.
pub fn assert_request(spec: Spec, operation_id: &str, body: &Value) {
    let request = deref(spec, &operation(spec, operation_id)["requestBody"]);
    let schema = &request["content"]["application/json"]["schema"];
    assert!(!schema.is_null(), "{operation_id} takes no JSON body");
    let validator = compile(format!("{spec:?}/{operation_id}/request"), || {
        rooted(spec, schema)
    });
    if let Err(errors) = check(&validator, body) {
        fail(&format!("{spec:?} {operation_id} request"), errors, body);
    }
}

pub fn validate_checkout_result(value: &Value) -> Result<(), Vec<String>> {
    let validator = compile("checkout-session-result".into(), || {
        let mut schema = contract("checkout-session-result.schema.json");
        // Its `$id` is a bare fragment naming the component, not a base URI.
        if let Some(obj) = schema.as_object_mut() {
            obj.remove("$id");
        }
        schema
    });
    check(&validator, value)
}

/// Asserts `value` validates against `checkout-session-result.schema.json`.
pub fn assert_checkout_result(value: &Value) {
    if let Err(errors) = validate_checkout_result(value) {
        fail("checkout session result", errors, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer() -> Value {
        json!({
            "id": "01G65Z755AFWAKHE12NY0CQ9FH", "name": "ACME", "key": "acme",
            "created_at": "2024-01-01T01:01:01.001Z", "updated_at": "2024-01-01T01:01:01.001Z",
            "currency": "USD", "usage_attribution": {"subject_keys": []}
        })
    }

    #[test]
    fn contract_validator_bites() {
        assert_eq!(
            validate_schema(Spec::V3, "BillingCustomer", &customer()),
            Ok(())
        );
        for (field, value) in [
            ("unknown", json!(1)),
            ("id", json!("not-a-ulid")),
            ("created_at", json!("yesterday")),
            ("currency", json!("usd")),
        ] {
            let mut c = customer();
            c[field] = value;
            assert!(
                validate_schema(Spec::V3, "BillingCustomer", &c).is_err(),
                "{field} should fail"
            );
        }
        let problem = json!({"status": 400, "title": "Bad Request", "detail": "d", "instance": "urn:request:1",
            "invalid_parameters": [{"field": "name", "reason": "is required", "rule": "required", "source": "body"}]});
        assert_eq!(
            validate_response(
                Spec::V3,
                "create-customer",
                400,
                "application/problem+json",
                &problem
            ),
            Ok(())
        );
        let mut no_params = problem.clone();
        no_params["invalid_parameters"] = json!([]);
        assert!(
            validate_response(
                Spec::V3,
                "create-customer",
                400,
                "application/problem+json",
                &no_params
            )
            .is_err()
        );
        assert!(
            validate_response(Spec::V3, "create-customer", 201, "text/plain", &customer()).is_err()
        );
        let v1 = json!({"id": "01G65Z755AFWAKHE12NY0CQ9FH", "name": "n", "metadata": null,
            "createdAt": "2024-01-01T01:01:01Z", "updatedAt": "2024-01-01T01:01:01Z"});
        assert_eq!(
            validate_response(Spec::V1, "getCustomer", 200, "application/json", &v1),
            Ok(())
        );
    }

    #[test]
    fn checkout_result_schema_bites() {
        let good = json!({"customer_id": "01G65Z755AFWAKHE12NY0CQ9FH", "stripe_customer_id": "cus_1",
            "session_id": "cs_test_1", "setup_intent_id": "seti_1", "created_at": "2024-01-01T01:01:01Z",
            "mode": "setup", "currency": "USD"});
        assert_eq!(validate_checkout_result(&good), Ok(()));
        for (field, value) in [
            ("mode", json!("payment")),
            ("currency", json!("usd")),
            ("created_at", json!("now")),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            assert!(
                validate_checkout_result(&bad).is_err(),
                "{field} should fail"
            );
        }
    }

    /// Every response schema of every operation compiles, so no later test
    /// fails on a conversion bug.
    #[test]
    fn every_contract_schema_compiles() {
        for spec in [Spec::V1, Spec::V3, Spec::V1Invoicing, Spec::V3Invoicing] {
            for item in doc(spec).raw["paths"].as_object().unwrap().values() {
                for op in item.as_object().unwrap().values() {
                    let Some(id) = op["operationId"].as_str() else {
                        continue;
                    };
                    for (status, response) in op["responses"].as_object().unwrap() {
                        let response = deref(spec, response);
                        for (media, entry) in response["content"].as_object().into_iter().flatten()
                        {
                            compile(format!("{spec:?}/{id}/{status}/{media}"), || {
                                rooted(spec, &entry["schema"])
                            });
                        }
                    }
                }
            }
        }
    }
}
