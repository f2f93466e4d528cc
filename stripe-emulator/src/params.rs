//! Reading request parameters (Stripe's form encoding decoded into a JSON tree whose leaves are
//! strings, see `form.rs`) and the value rules several resources share: URLs, addresses and
//! metadata updates.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};

/// A string parameter, as sent (possibly empty).
pub fn string<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}

/// A non-empty string parameter (Stripe reads `key=` as "unset").
pub fn non_empty<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    string(params, key).filter(|value| !value.is_empty())
}

/// A string parameter as an object field: its value, or null when absent or empty.
pub fn nullable_string(params: &Value, key: &str) -> Value {
    non_empty(params, key)
        .map(Value::from)
        .unwrap_or(Value::Null)
}

/// An integer parameter (absent, empty or unparsable gives None; specs reject the unparsable).
pub fn integer(params: &Value, key: &str) -> Option<i64> {
    non_empty(params, key).and_then(|value| value.parse().ok())
}

/// Whether a parameter was sent with a value (an empty string counts as not sent).
pub fn is_present(params: &Value, key: &str) -> bool {
    match params.get(key) {
        None => false,
        Some(Value::String(value)) => !value.is_empty(),
        Some(_) => true,
    }
}

/// The strings of an array parameter (`key[]=a&key[]=b`); None when absent or not an array.
pub fn string_array(params: &Value, key: &str) -> Option<Vec<String>> {
    params.get(key).and_then(Value::as_array).map(|items| {
        items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    })
}

/// Stripe's check of URL parameters: http(s) with a host.
pub fn check_url(url: &str, param: &str) -> ApiResult<()> {
    let valid = (url.starts_with("http://") || url.starts_with("https://"))
        && url
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid("Not a valid URL".to_string(), param).code("url_invalid"))
    }
}

/// An address object with every field null.
pub fn null_address() -> Value {
    json!({"city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null})
}

/// An address object from `address[...]` parameters (empty values become null).
pub fn address(params: &Value) -> Value {
    let mut address = null_address();
    if let Some(fields) = params.as_object() {
        for (field, value) in fields {
            address[field] = value
                .as_str()
                .filter(|text| !text.is_empty())
                .map(Value::from)
                .unwrap_or(Value::Null);
        }
    }
    address
}

/// Applies a `metadata` parameter to an object's metadata, as Stripe does: `metadata=` clears it,
/// `metadata[k]=` removes k, other keys are set.
pub fn merge_metadata(current: &Value, update: &Value) -> Value {
    match update {
        Value::String(text) if text.is_empty() => json!({}),
        Value::Object(entries) => {
            let mut merged = current.as_object().cloned().unwrap_or_default();
            for (key, value) in entries {
                match value.as_str() {
                    Some("") | None => {
                        merged.remove(key);
                    }
                    Some(text) => {
                        merged.insert(key.clone(), Value::from(text));
                    }
                }
            }
            Value::Object(merged)
        }
        _ => current.clone(),
    }
}
