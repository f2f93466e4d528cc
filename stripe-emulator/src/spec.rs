//! Declarative request parameter specs, checked the way Stripe checks them: unknown names are a
//! 400 naming the param, scalars must parse, enums must be one of their values, metadata must
//! respect Stripe's limits. Parameter names follow async-stripe 1.0.0-rc.10's request types
//! (generated from Stripe's OpenAPI specification at API version 2026-09-30.endive).

use crate::error::{ApiError, ApiResult};
use serde_json::Value;

// Specs of create/update endpoints, generated from async-stripe's request types.
pub use crate::spec_gen::{
    CHARGE_LIST, CHECKOUT_CREATE, CUSTOMER_CREATE, CUSTOMER_UPDATE, INVOICE_ADD_LINES,
    INVOICE_CREATE, INVOICE_FINALIZE, INVOICE_LINE_UPDATE, INVOICE_LINES_LIST, INVOICE_LIST,
    INVOICE_PAY, INVOICE_PAYMENT_LIST, INVOICE_REMOVE_LINES, INVOICE_UPDATE, INVOICE_UPDATE_LINES,
    INVOICEITEM_CREATE, INVOICEITEM_LIST, INVOICEITEM_UPDATE, PAYMENT_INTENT_LIST, PM_ATTACH,
    PORTAL_CREATE, WEBHOOK_CREATE, WEBHOOK_UPDATE,
};

#[derive(Debug)]
pub enum P {
    Str,
    Int,
    Bool,
    Enum(&'static [&'static str]),
    /// Stripe metadata: string keys and values, with Stripe's limits.
    Meta,
    Obj(&'static [(&'static str, P)]),
    Arr(&'static P),
    /// Accepted and not interpreted by the emulator.
    Any,
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}[{key}]")
    }
}

fn describe(vals: &[&str]) -> String {
    match vals {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{}, or {}", init.join(", "), last),
    }
}

/// Checks metadata against Stripe's limits: 50 keys, 40-character keys, 500-character values.
pub fn check_metadata(v: &Value, param: &str) -> ApiResult<()> {
    let entries = match v {
        Value::String(text) if text.is_empty() => return Ok(()),
        Value::Object(entries) => entries,
        _ => {
            return Err(ApiError::invalid(
                format!("Invalid object: {param} must be a hash"),
                param,
            ));
        }
    };
    if entries.len() > 50 {
        return Err(ApiError::invalid(
            format!(
                "Invalid {param}: metadata can have at most 50 keys, but you passed {}.",
                entries.len()
            ),
            param,
        ));
    }
    for (key, value) in entries {
        let key_param = join(param, key);
        if key.chars().count() > 40 {
            return Err(ApiError::invalid(
                format!(
                    "Metadata keys can have up to 40 characters, but you passed in a key that is {} characters. Invalid key: '{key}'",
                    key.chars().count()
                ),
                key_param,
            ));
        }
        let text = match value {
            Value::String(text) => text,
            _ => {
                return Err(ApiError::invalid(
                    format!("Invalid string: {key_param} must be a string"),
                    key_param,
                ));
            }
        };
        if text.chars().count() > 500 {
            return Err(ApiError::invalid(
                format!(
                    "Metadata values can have up to 500 characters, but you passed in a value that is {} characters.",
                    text.chars().count()
                ),
                key_param,
            ));
        }
    }
    Ok(())
}

/// Validates `v` against `spec`, reporting the first problem with Stripe's message and `param`.
pub fn check(spec: &P, v: &Value, param: &str) -> ApiResult<()> {
    match spec {
        P::Any => Ok(()),
        P::Meta => check_metadata(v, param),
        P::Str => match v {
            Value::String(_) => Ok(()),
            _ => Err(ApiError::invalid(
                format!("Invalid string: {param} must be a string"),
                param,
            )),
        },
        P::Int => match v {
            Value::String(s) if s.is_empty() || s.parse::<i64>().is_ok() => Ok(()),
            Value::String(s) => Err(ApiError::invalid(format!("Invalid integer: {s}"), param)),
            _ => Err(ApiError::invalid(
                format!("Invalid integer: {param} must be an integer"),
                param,
            )),
        },
        P::Bool => match v {
            Value::String(s) if s == "true" || s == "false" || s.is_empty() => Ok(()),
            Value::String(s) => Err(ApiError::invalid(format!("Invalid boolean: {s}"), param)),
            _ => Err(ApiError::invalid(
                format!("Invalid boolean: {param} must be a boolean"),
                param,
            )),
        },
        P::Enum(vals) => match v {
            Value::String(s) if vals.contains(&s.as_str()) || s.is_empty() => Ok(()),
            _ => Err(ApiError::invalid(
                format!("Invalid {param}: must be one of {}", describe(vals)),
                param,
            )),
        },
        P::Arr(item) => match v {
            Value::Array(items) => {
                for (index, element) in items.iter().enumerate() {
                    check(item, element, &format!("{param}[{index}]"))?;
                }
                Ok(())
            }
            Value::String(s) if s.is_empty() => Ok(()),
            _ => Err(ApiError::invalid(
                format!("Invalid array: {param} must be an array"),
                param,
            )),
        },
        P::Obj(fields) => match v {
            Value::Object(entries) => {
                for (key, value) in entries {
                    match fields.iter().find(|(name, _)| name == key) {
                        Some((_, field_spec)) => check(field_spec, value, &join(param, key))?,
                        None => {
                            let mut error = ApiError::unknown_param(&join(param, key));
                            if let Some(hint) = renamed(key) {
                                error.message = format!("{}. Did you mean {hint}?", error.message);
                            }
                            return Err(error);
                        }
                    }
                }
                Ok(())
            }
            Value::String(s) if s.is_empty() => Ok(()),
            _ => Err(ApiError::invalid(
                format!("Invalid object: {param} must be a hash"),
                param,
            )),
        },
    }
}

/// Parameters renamed in Stripe's 2026 API versions.
fn renamed(k: &str) -> Option<&'static str> {
    match k {
        "payment_method_types" => Some("allowed_payment_method_types"),
        _ => None,
    }
}

const EXPAND: P = P::Arr(&P::Str);

const RANGE: P = P::Obj(&[
    ("gt", P::Int),
    ("gte", P::Int),
    ("lt", P::Int),
    ("lte", P::Int),
]);
const CREATED: P = P::Any;

pub const CUSTOMER_LIST: P = P::Obj(&[
    ("created", CREATED),
    ("email", P::Str),
    ("ending_before", P::Str),
    ("expand", EXPAND),
    ("limit", P::Int),
    ("starting_after", P::Str),
    ("test_clock", P::Str),
]);

pub const RETRIEVE: P = P::Obj(&[("expand", EXPAND)]);
pub const DELETE: P = P::Obj(&[]);

pub const CHECKOUT_LIST: P = P::Obj(&[
    ("created", RANGE),
    ("customer", P::Str),
    ("customer_account", P::Str),
    ("customer_details", P::Obj(&[("email", P::Str)])),
    ("ending_before", P::Str),
    ("expand", EXPAND),
    ("limit", P::Int),
    ("payment_intent", P::Str),
    ("payment_link", P::Str),
    ("starting_after", P::Str),
    ("status", P::Enum(&["complete", "expired", "open"])),
    ("subscription", P::Str),
]);

pub const SETUP_INTENT_RETRIEVE: P = P::Obj(&[("client_secret", P::Str), ("expand", EXPAND)]);
pub const SETUP_INTENT_LIST: P = P::Obj(&[
    ("attach_to_self", P::Bool),
    ("created", CREATED),
    ("customer", P::Str),
    ("customer_account", P::Str),
    ("ending_before", P::Str),
    ("expand", EXPAND),
    ("limit", P::Int),
    ("payment_method", P::Str),
    ("starting_after", P::Str),
]);

pub const PM_LIST: P = P::Obj(&[
    (
        "allow_redisplay",
        P::Enum(&["always", "limited", "unspecified"]),
    ),
    ("customer", P::Str),
    ("customer_account", P::Str),
    ("ending_before", P::Str),
    ("expand", EXPAND),
    ("limit", P::Int),
    ("starting_after", P::Str),
    ("type", P::Str),
]);

pub const PLAIN_LIST: P = P::Obj(&[
    ("ending_before", P::Str),
    ("expand", EXPAND),
    ("limit", P::Int),
    ("starting_after", P::Str),
]);
pub const EVENT_LIST: P = P::Obj(&[
    ("created", CREATED),
    ("delivery_success", P::Bool),
    ("ending_before", P::Str),
    ("expand", EXPAND),
    ("limit", P::Int),
    ("starting_after", P::Str),
    ("type", P::Str),
    ("types", P::Arr(&P::Str)),
]);
