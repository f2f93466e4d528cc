//! The floor: the Stripe calls meterpay made, as recorded by the emulator's
//! request log, turned back into requests wrk sends straight to the emulator.

use anyhow::Context;
use serde::Deserialize;
use serde_json::Value;

use crate::wrk::{CUSTOMER, Request, UNIQUE};

/// An entry of `GET /_emulator/requests`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoggedCall {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub params: Value,
    #[serde(default)]
    pub stripe_version: Option<String>,
    #[serde(default)]
    pub status: u16,
}

#[derive(Debug, Deserialize)]
pub struct RequestLog {
    pub data: Vec<LoggedCall>,
    pub last_seq: u64,
}

/// Encodes decoded params (objects and arrays of string leaves) back into
/// Stripe's bracket form: `metadata[k]=v`, `expand[0]=x`.
pub fn form_encode(params: &Value) -> String {
    let mut pairs = Vec::new();
    flatten(params, None, &mut pairs);
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(&k, &v);
    }
    out.finish()
}

fn flatten(value: &Value, prefix: Option<&str>, out: &mut Vec<(String, String)>) {
    let key = |k: &str| match prefix {
        Some(p) => format!("{p}[{k}]"),
        None => k.to_owned(),
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(v, Some(&key(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(v, Some(&key(&i.to_string())), out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push((prefix.unwrap_or_default().to_owned(), s.clone())),
        other => out.push((prefix.unwrap_or_default().to_owned(), other.to_string())),
    }
}

/// [`form_encode`], with the wrk script's placeholders left literal (form
/// encoding escapes their braces; the ids that replace them need no escaping).
pub fn form_encode_template(params: &Value) -> String {
    let mut body = form_encode(params);
    for placeholder in [CUSTOMER, UNIQUE] {
        let escaped: String = form_urlencoded::byte_serialize(placeholder.as_bytes()).collect();
        body = body.replace(&escaped, placeholder);
    }
    body
}

/// The last successful call to `method path` in `log`.
pub fn last_call<'a>(log: &'a [LoggedCall], method: &str, path: &str) -> Option<&'a LoggedCall> {
    log.iter()
        .rev()
        .find(|c| c.method == method && c.path == path && (200..300).contains(&c.status))
}

/// The same call as `call`, authenticated with `api_key`, with a fresh
/// idempotency key per request (meterpay sends one with every create).
pub fn replay(call: &LoggedCall, api_key: &str, params: &Value) -> Request {
    let mut headers = vec![
        ("Authorization".to_owned(), format!("Bearer {api_key}")),
        (
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("Idempotency-Key".to_owned(), format!("bench-{UNIQUE}")),
    ];
    if let Some(version) = &call.stripe_version {
        headers.push(("Stripe-Version".to_owned(), version.clone()));
    }
    Request {
        method: "POST",
        path: call.path.clone(),
        headers,
        body: Some(form_encode_template(params)),
    }
}

/// `params` with the `customer` parameter replaced by the `{{CUSTOMER}}` placeholder.
pub fn with_customer_placeholder(params: &Value) -> anyhow::Result<Value> {
    let mut params = params.clone();
    let slot = params
        .get_mut("customer")
        .context("the recorded checkout session call has no `customer` parameter")?;
    *slot = Value::String(CUSTOMER.to_owned());
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_brackets_and_escapes() {
        let params = json!({
            "customer": "cus_1",
            "metadata": {"meterpay_namespace": "bench", "note": "a b&c"},
            "expand": ["setup_intent"],
            "mode": "setup",
            "success_url": "https://example.com/done?session={CHECKOUT_SESSION_ID}",
        });
        let encoded = form_encode(&params);
        let decoded: Vec<(String, String)> = form_urlencoded::parse(encoded.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            decoded,
            vec![
                ("customer".into(), "cus_1".into()),
                ("expand[0]".into(), "setup_intent".into()),
                ("metadata[meterpay_namespace]".into(), "bench".into()),
                ("metadata[note]".into(), "a b&c".into()),
                ("mode".into(), "setup".into()),
                (
                    "success_url".into(),
                    "https://example.com/done?session={CHECKOUT_SESSION_ID}".into()
                ),
            ]
        );
        assert!(encoded.contains("metadata%5Bnote%5D=a+b%26c"), "{encoded}");
    }

    #[test]
    fn the_customer_placeholder_survives_encoding_for_lua_to_fill() {
        let params =
            with_customer_placeholder(&json!({"customer": "cus_1", "mode": "setup"})).unwrap();
        assert_eq!(
            form_encode(&params),
            "customer=%7B%7BCUSTOMER%7D%7D&mode=setup"
        );
        // Lua replaces the placeholder in the body, so it stays literal there.
        assert_eq!(
            form_encode_template(&params),
            "customer={{CUSTOMER}}&mode=setup"
        );
        assert!(with_customer_placeholder(&json!({"mode": "setup"})).is_err());
    }

    #[test]
    fn finds_the_last_successful_call() {
        let log: RequestLog = serde_json::from_value(json!({
            "last_seq": 3,
            "data": [
                {"seq": 1, "method": "POST", "path": "/v1/customers", "params": {"email": "a"}, "status": 200},
                {"seq": 2, "method": "POST", "path": "/v1/customers", "params": {"email": "b"}, "status": 200, "stripe_version": "2026-09-30.endive"},
                {"seq": 3, "method": "POST", "path": "/v1/customers", "params": {"email": "c"}, "status": 400},
            ]
        }))
        .unwrap();
        let call = last_call(&log.data, "POST", "/v1/customers").unwrap();
        assert_eq!(call.params, json!({"email": "b"}));
        assert!(last_call(&log.data, "POST", "/v1/checkout/sessions").is_none());
        let req = replay(call, "sk_test_x", &call.params);
        assert_eq!(req.body.as_deref(), Some("email=b"));
        assert!(
            req.headers
                .contains(&("Stripe-Version".into(), "2026-09-30.endive".into()))
        );
        assert!(
            req.headers
                .contains(&("Authorization".into(), "Bearer sk_test_x".into()))
        );
    }
}
