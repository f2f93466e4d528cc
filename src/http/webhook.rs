//! `POST /api/v1/apps/{id}/stripe/webhook`: authenticated by Stripe's
//! signature, not by an API token.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::AppState;
use super::extract::{MAX_BODY_BYTES, path_ulid};
use super::openapi::UlidParam;
use super::problem::V1Error;
use crate::error::Error;
use crate::ids::namespace_ulid;
use crate::service::webhooks::{Outcome, receive};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/apps/{id}/stripe/webhook", post(webhook))
}

/// `StripeWebhookResponse`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookResponse {
    pub namespace_id: String,
    pub app_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{id}/stripe/webhook",
    operation_id = "appStripeWebhook",
    summary = "Stripe webhook (verified by its Stripe-Signature, not by API token)",
    tag = "OpenMeter v1",
    params(
        ("id" = inline(UlidParam), Path),
        ("Stripe-Signature" = String, Header, description = "Stripe's signature of the body with the app's webhook endpoint secret (`t=…,v1=…`); a missing, malformed, stale or wrong one answers 400")
    ),
    request_body = Object,
    responses((status = 200, body = WebhookResponse), (status = 400, description = "A missing or wrong Stripe-Signature, or a body that is not a Stripe event"), (status = 404), (status = 413), (status = 503))
)]
async fn webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    req: Request,
) -> Result<(StatusCode, Json<WebhookResponse>), V1Error> {
    let app_id: crate::ids::AppId = path_ulid("id", &id)?;
    let body = Bytes::from_request(req, &state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge(format!(
                    "The request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            } else {
                Error::field("body", crate::error::Rule::Invalid, rejection.body_text())
            }
        })?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let (app, outcome) = receive(&state.ctx, app_id, signature, &body).await?;
    let (customer_id, message) = match outcome {
        Outcome::Processed(customer) => (customer, "event processed".to_owned()),
        Outcome::AlreadyProcessed => (None, "event already processed".to_owned()),
        Outcome::Ignored(why) => (None, format!("ignored: {why}")),
    };
    Ok((
        StatusCode::OK,
        Json(WebhookResponse {
            namespace_id: namespace_ulid(&app.namespace).to_string(),
            app_id: app_id.to_string(),
            customer_id: customer_id.map(|c| c.to_string()),
            message: Some(message),
        }),
    ))
}
