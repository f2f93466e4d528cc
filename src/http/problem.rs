//! `application/problem+json` rendering (RFC 9457), in the shape both
//! contracts accept: v3 `BaseError` / `BadRequestError` (with
//! `invalid_parameters`) and v1 `UnexpectedProblemResponse` (which allows the
//! extra members). The v1 layer only re-spells field names.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{Error, FieldError, Rule};

tokio::task_local! {
    /// The id of the request being served, set by the request middleware and
    /// returned as the problem's `instance` and the `x-request-id` header.
    pub static REQUEST_ID: String;
}

pub fn request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| ulid::Ulid::generate().to_string())
}

/// The problem document for `status` with `detail`.
pub fn problem(status: StatusCode, detail: &str) -> Value {
    json!({
        "type": format!("https://httpstatuses.com/{}", status.as_u16()),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "instance": format!("urn:request:{}", request_id()),
    })
}

pub fn problem_response(status: StatusCode, body: Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

fn invalid_parameter(e: &FieldError) -> Value {
    let mut item = json!({
        "field": e.field,
        "source": e.source.as_str(),
        "reason": e.reason,
    });
    let (rule, extra): (&str, Option<(&str, Value)>) = match &e.rule {
        Rule::Required => ("required", None),
        Rule::UnknownProperty => ("unknown_property", None),
        Rule::Type => ("type", None),
        Rule::MatchesRegex => ("matches_regex", None),
        Rule::IsDateTime => ("is_date_time", None),
        Rule::Invalid => ("invalid", None),
        Rule::MinLength(n) => ("min_length", Some(("minimum", json!(n)))),
        Rule::MaxLength(n) => ("max_length", Some(("maximum", json!(n)))),
        Rule::MinItems(n) => ("min_items", Some(("minimum", json!(n)))),
        Rule::MaxItems(n) => ("max_items", Some(("maximum", json!(n)))),
        Rule::Min(n) => ("min", Some(("minimum", json!(n)))),
        Rule::Max(n) => ("max", Some(("maximum", json!(n)))),
        Rule::Enum(choices) => ("enum", Some(("choices", json!(choices)))),
    };
    item["rule"] = json!(rule);
    if let Some((name, value)) = extra {
        item[name] = value;
    }
    item
}

fn describe_invalid(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!(
            "Invalid {} [{}]: {}",
            one.source.as_str(),
            one.field,
            one.reason
        ),
        many => format!(
            "{} invalid parameters: {}",
            many.len(),
            many.iter()
                .map(|e| format!("[{}] {}", e.field, e.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, mut body) = match &self {
            Error::Invalid(errors) => {
                let mut errors = errors.clone();
                errors.dedup();
                let mut body = problem(StatusCode::BAD_REQUEST, &describe_invalid(&errors));
                body["invalid_parameters"] = errors.iter().map(invalid_parameter).collect();
                (StatusCode::BAD_REQUEST, body)
            }
            Error::NotFound(detail) => (
                StatusCode::NOT_FOUND,
                problem(StatusCode::NOT_FOUND, detail),
            ),
            Error::Gone(detail) => (StatusCode::GONE, problem(StatusCode::GONE, detail)),
            Error::Conflict { field, detail } => {
                let mut body = problem(StatusCode::CONFLICT, detail);
                if let Some(field) = field {
                    body["field"] = json!(field);
                }
                (StatusCode::CONFLICT, body)
            }
            Error::UnsupportedMediaType(detail) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, detail),
            ),
            Error::PayloadTooLarge(detail) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                problem(StatusCode::PAYLOAD_TOO_LARGE, detail),
            ),
            Error::Unauthorized(detail) => (
                StatusCode::UNAUTHORIZED,
                problem(StatusCode::UNAUTHORIZED, detail),
            ),
            Error::Unavailable { detail, .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                problem(StatusCode::SERVICE_UNAVAILABLE, detail),
            ),
            Error::Internal(err) => {
                tracing::error!(error = ?err, request_id = %request_id(), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal error; quote the instance id when reporting it",
                    ),
                )
            }
        };
        if body.get("detail").is_none() {
            body["detail"] = json!(self.to_string());
        }
        let mut response = problem_response(status, body);
        if let Error::Unavailable {
            retry_after_secs: Some(secs),
            ..
        } = self
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// v1 spells fields in camelCase and calls labels `metadata`.
pub fn v1_field_name(field: &str) -> String {
    let field = field
        .strip_prefix("labels")
        .map(|rest| format!("metadata{rest}"))
        .unwrap_or_else(|| field.to_owned());
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for ch in field.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// The v1 view of an error: same problem document, v1 field names.
#[derive(Debug)]
pub struct V1Error(pub Error);

impl<E: Into<Error>> From<E> for V1Error {
    fn from(err: E) -> Self {
        V1Error(err.into())
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        let respell = |text: &str| v1_field_name(text);
        match self.0 {
            Error::Invalid(errors) => Error::Invalid(
                errors
                    .into_iter()
                    .map(|mut e| {
                        // Labels keys are user data: keep them as given.
                        e.field = match e.field.split_once("labels.") {
                            Some(("", key)) => format!("metadata.{key}"),
                            _ => respell(&e.field),
                        };
                        e
                    })
                    .collect(),
            ),
            Error::Conflict { field, detail } => Error::Conflict {
                field: field.as_deref().map(respell),
                detail,
            },
            other => other,
        }
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_names_are_camel_case() {
        assert_eq!(
            v1_field_name("billing_address.postal_code"),
            "billingAddress.postalCode"
        );
        assert_eq!(
            v1_field_name("usage_attribution.subject_keys[0]"),
            "usageAttribution.subjectKeys[0]"
        );
        assert_eq!(v1_field_name("labels"), "metadata");
        assert_eq!(v1_field_name("name"), "name");
    }
}
