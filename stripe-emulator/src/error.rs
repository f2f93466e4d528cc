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
        let mut error = Self::new(400, "invalid_request_error", message);
        error.param = Some(param.into());
        error
    }
    pub fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_string(), value);
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
        let mut error = Self::new(
            404,
            "invalid_request_error",
            format!("No such {what}: '{id}'"),
        )
        .code("resource_missing");
        error.param = Some(param.unwrap_or("id").to_string());
        error
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
        let mut error = Map::new();
        if let Some(code) = &self.code {
            error.insert("code".into(), json!(code));
            error.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    code.replace('_', "-")
                )),
            );
        }
        error.insert("message".into(), json!(self.message));
        if let Some(param) = &self.param {
            error.insert("param".into(), json!(param));
        }
        error.insert("type".into(), json!(self.kind));
        for (key, value) in &self.extra {
            error.insert(key.clone(), value.clone());
        }
        json!({ "error": error })
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
