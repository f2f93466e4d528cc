//! `application/problem+json` rendering (RFC 9457), in the shape both
//! contracts accept: v3 `BaseError` / `BadRequestError` (with
//! `invalid_parameters`) and v1 `UnexpectedProblemResponse` (which allows the
//! extra members). The v1 layer only re-spells field names.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::{Error, FieldError, Remedy, Rule};

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

/// Which API's routes a remedy names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V1,
    V3,
}

/// The reasons with their remedies spelled out in `api`'s routes and names.
pub fn spell_out_remedies(errors: &mut [FieldError], api: Api) {
    for e in errors {
        if let Some(remedy) = e.remedy.take() {
            e.reason.push_str(&remedy_text(&remedy, api));
        }
    }
}

fn remedy_text(remedy: &Remedy, api: Api) -> String {
    match (remedy, api) {
        (Remedy::SetUpStripeApp { .. }, Api::V3) => {
            ": install one (POST /api/v3/openmeter/app-catalog/install with \
             create_billing_profile: true), or make a billing profile with a Stripe payment app \
             the default"
                .to_owned()
        }
        (Remedy::SetUpStripeApp { or_name_app }, Api::V1) => format!(
            ": install one (POST /api/v1/marketplace/listings/stripe/install/apikey with \
             createBillingProfile: true), make a billing profile with a Stripe payment app the \
             default{}",
            if *or_name_app {
                ", or name the app with appId"
            } else {
                ""
            }
        ),
        (Remedy::RotateApiKey { app_id }, api) => {
            let id = app_id.map_or_else(|| "{id}".to_owned(), |id| id.to_string());
            match api {
                Api::V3 => format!(
                    "; rotate it with PUT /api/v3/openmeter/apps/{id} giving secret_api_key"
                ),
                Api::V1 => format!("; rotate it with PUT /api/v1/apps/{id}/stripe/api-key"),
            }
        }
        (Remedy::LinkStripeCustomer { customer_id }, Api::V3) => format!(
            ", or link an existing one with PUT /api/v3/openmeter/customers/{customer_id}/billing/app-data"
        ),
        (Remedy::LinkStripeCustomer { customer_id }, Api::V1) => {
            format!(", or link an existing one with PUT /api/v1/customers/{customer_id}/stripe")
        }
    }
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
                spell_out_remedies(&mut errors, Api::V3);
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

/// Renames the fields an error names by `table` (prefix → new name): a
/// handler whose request nests fields differently from the service's names
/// (v1 spellings, v3's `app-data` route without the `app_data.` level).
pub fn rename_fields(err: Error, table: &[(&str, &str)]) -> Error {
    let rename = |field: &str| -> String {
        for (v3, v1) in table {
            if let Some(rest) = field.strip_prefix(v3)
                && (rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
            {
                return format!("{v1}{rest}");
            }
        }
        field.to_owned()
    };
    match err {
        Error::Invalid(errors) => Error::Invalid(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = rename(&e.field);
                    e
                })
                .collect(),
        ),
        Error::Conflict {
            field: Some(field),
            detail,
        } => Error::Conflict {
            field: Some(rename(&field)),
            detail,
        },
        other => other,
    }
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
        let respell = |text: &str| super::v1_names::v1_field_name(text);
        match self.0 {
            Error::Invalid(mut errors) => {
                spell_out_remedies(&mut errors, Api::V1);
                Error::Invalid(
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
                )
            }
            Error::Conflict { field, detail } => Error::Conflict {
                field: field.as_deref().map(respell),
                detail,
            },
            other => other,
        }
        .into_response()
    }
}
