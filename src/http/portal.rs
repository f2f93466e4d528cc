//! Stripe customer portal sessions: v3
//! `POST /api/v3/openmeter/customers/{customerId}/billing/stripe/portal-sessions`
//! and v1 `POST /api/v1/customers/{customerIdOrKey}/stripe/portal`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::AppState;
use super::extract::{ApiJson, path_ulid};
use super::openapi::UlidParam;
use super::problem::V1Error;
use super::schema::RedirectUrl;
use super::schema_json::PortalLocale;
use super::tenancy::Namespace;
use super::v1_customers::resolve;
use crate::error::{Error, Result};
use crate::service::portal::{
    CONFIGURATION_ID, CUSTOMER_ID, LOCALE, PortalOptions, PortalResult, RETURN_URL,
    create_portal_session,
};

pub fn v3_router() -> Router<AppState> {
    Router::new().route(
        "/customers/{customerId}/billing/stripe/portal-sessions",
        post(create_v3),
    )
}

pub fn v1_router() -> Router<AppState> {
    Router::new().route(
        "/customers/{customerIdOrKey}/stripe/portal",
        post(create_v1),
    )
}

/// `BillingCustomerStripeCreateCustomerPortalSessionRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BillingCustomerStripeCreateCustomerPortalSessionRequest)]
pub(crate) struct CreateV3 {
    stripe_options: OptionsV3,
}

/// `BillingAppStripeCreateCustomerPortalSessionOptions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BillingAppStripeCreateCustomerPortalSessionOptions)]
pub(crate) struct OptionsV3 {
    #[schema(pattern = "^bpc_[A-Za-z0-9]{1,255}$")]
    configuration_id: Option<String>,
    #[schema(value_type = Option<PortalLocale>)]
    locale: Option<String>,
    #[schema(value_type = Option<RedirectUrl>)]
    return_url: Option<String>,
}

/// `BillingAppStripeCreateCustomerPortalSessionResult`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = BillingAppStripeCreateCustomerPortalSessionResult)]
pub(crate) struct ResultV3 {
    id: String,
    stripe_customer_id: String,
    configuration_id: String,
    livemode: bool,
    #[serde(with = "crate::timestamp::serde")]
    created_at: OffsetDateTime,
    return_url: String,
    locale: String,
    url: String,
}

impl From<PortalResult> for ResultV3 {
    fn from(r: PortalResult) -> Self {
        ResultV3 {
            id: r.id,
            stripe_customer_id: r.stripe_customer_id.into(),
            configuration_id: r.configuration_id,
            livemode: r.livemode,
            created_at: r.created_at,
            return_url: r.return_url,
            locale: r.locale,
            url: r.url,
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v3/openmeter/customers/{customerId}/billing/stripe/portal-sessions",
    operation_id = "create-customer-stripe-portal-session",
    summary = "Create Stripe customer portal session",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    request_body = CreateV3,
    responses((status = 201, body = ResultV3), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn create_v3(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateV3>,
) -> Result<(StatusCode, Json<ResultV3>)> {
    let id: crate::ids::CustomerId = path_ulid("customerId", &id)?;
    let customer = state.ctx.store.require_customer(&ns, id).await?;
    let o = body.stripe_options;
    let options = PortalOptions {
        configuration_id: o.configuration_id,
        locale: o.locale,
        return_url: o.return_url,
    };
    let result = create_portal_session(&state.ctx, &ns, &customer, &options).await?;
    Ok((StatusCode::CREATED, Json(result.into())))
}

/// `CreateStripeCustomerPortalSessionParams`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = CreateStripeCustomerPortalSessionParams)]
pub(crate) struct CreateV1 {
    #[schema(pattern = "^bpc_[A-Za-z0-9]{1,255}$")]
    configuration_id: Option<String>,
    #[schema(value_type = Option<PortalLocale>)]
    locale: Option<String>,
    #[schema(value_type = Option<RedirectUrl>)]
    return_url: Option<String>,
}

/// `StripeCustomerPortalSession`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = StripeCustomerPortalSession)]
pub(crate) struct ResultV1 {
    id: String,
    stripe_customer_id: String,
    configuration_id: String,
    livemode: bool,
    #[serde(with = "crate::timestamp::serde")]
    created_at: OffsetDateTime,
    return_url: String,
    locale: String,
    url: String,
}

impl From<PortalResult> for ResultV1 {
    fn from(r: PortalResult) -> Self {
        ResultV1 {
            id: r.id,
            stripe_customer_id: r.stripe_customer_id.into(),
            configuration_id: r.configuration_id,
            livemode: r.livemode,
            created_at: r.created_at,
            return_url: r.return_url,
            locale: r.locale,
            url: r.url,
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/customers/{customerIdOrKey}/stripe/portal",
    operation_id = "createCustomerStripePortalSession",
    summary = "Create Stripe customer portal session",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerIdOrKey" = String, Path, min_length = 1, description = "The customer's id or key")),
    request_body = CreateV1,
    responses((status = 201, body = ResultV1), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn create_v1(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
    ApiJson(body): ApiJson<CreateV1>,
) -> std::result::Result<(StatusCode, Json<ResultV1>), V1Error> {
    let customer = resolve(&state.ctx.store, &ns, &id_or_key).await?;
    let options = PortalOptions {
        configuration_id: body.configuration_id,
        locale: body.locale,
        return_url: body.return_url,
    };
    let result = create_portal_session(&state.ctx, &ns, &customer, &options)
        .await
        .map_err(v1_fields)?;
    Ok((StatusCode::CREATED, Json(result.into())))
}

/// v3 field names → v1's (the options are top level in v1).
fn v1_fields(err: Error) -> V1Error {
    match err {
        Error::Invalid(errors) => V1Error(Error::Invalid(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = match e.field.as_str() {
                        CONFIGURATION_ID => "configurationId",
                        LOCALE => "locale",
                        RETURN_URL => "returnUrl",
                        "app_id" => "appId",
                        CUSTOMER_ID => "customerIdOrKey",
                        f => f,
                    }
                    .to_owned();
                    e
                })
                .collect(),
        )),
        other => V1Error(other),
    }
}
