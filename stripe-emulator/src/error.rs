//! Stripe's error shape: `{"error": {"type", "code", "message", "param", "doc_url", ...}}`.

use serde_json::{Map, Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// Extra fields merged into the error object (e.g. `decline_code`, `setup_intent`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            code: None,
            message: message.into(),
            param: None,
            extra: Map::new(),
        }
    }
    pub fn invalid(message: impl Into<String>, param: impl Into<String>) -> Self {
        let mut e = Self::new(400, "invalid_request_error", message);
        e.param = Some(param.into());
        e
    }
    pub fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }
    pub fn with(mut self, k: &str, v: Value) -> Self {
        self.extra.insert(k.to_string(), v);
        self
    }
    pub fn unknown_param(param: &str) -> Self {
        Self::invalid(format!("Received unknown parameter: {param}"), param)
            .code("parameter_unknown")
    }
    pub fn missing_param(param: &str) -> Self {
        Self::invalid(format!("Missing required param: {param}."), param).code("parameter_missing")
    }
    pub fn no_such(what: &str, id: &str, param: Option<&str>) -> Self {
        let mut e = Self::new(
            404,
            "invalid_request_error",
            format!("No such {what}: '{id}'"),
        )
        .code("resource_missing");
        e.param = Some(param.unwrap_or("id").to_string());
        e
    }
    pub fn not_found_url(method: &str, path: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
            ),
        )
    }
    pub fn body(&self) -> Value {
        let mut e = Map::new();
        if let Some(c) = &self.code {
            e.insert("code".into(), json!(c));
            e.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    c.replace('_', "-")
                )),
            );
        }
        e.insert("message".into(), json!(self.message));
        if let Some(p) = &self.param {
            e.insert("param".into(), json!(p));
        }
        e.insert("type".into(), json!(self.kind));
        for (k, v) in &self.extra {
            e.insert(k.clone(), v.clone());
        }
        json!({ "error": e })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
