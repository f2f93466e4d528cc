//! v3 customer billing data: `/api/v3/openmeter/customers/{customerId}/billing…`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, path_ulid};
use super::openapi::UlidParam;
use super::problem::rename_fields;
use super::schema::{Labels, NullOnly};
use super::tenancy::Namespace;
use crate::billing::customer::Customer;
use crate::error::{Error, Result, Rule};
use crate::service::Context;
use crate::service::customer_billing::{self as service, StripeDataInput, no_app_error};
use crate::store::customer_stripe::CustomerStripe;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers/{customerId}/billing", get(fetch).put(upsert))
        .route(
            "/customers/{customerId}/billing/app-data",
            put(upsert_app_data),
        )
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileReference {
    #[schema(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    pub id: String,
}

/// `BillingAppCustomerDataStripe`.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StripeData {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^cus_[A-Za-z0-9]{1,255}$")]
    pub customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(pm|card|src)_[A-Za-z0-9]{1,255}$")]
    pub default_payment_method_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Labels>)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalInvoicingData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// `BillingAppCustomerData` / `UpsertAppCustomerDataRequest`.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe: Option<StripeData>,
    /// meterpay keeps no external-invoicing data: absent or null only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = NullOnly)]
    pub external_invoicing: Option<ExternalInvoicingData>,
}

/// `BillingCustomerData` / `UpsertCustomerBillingDataRequest`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_profile: Option<ProfileReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_data: Option<AppData>,
}

impl From<CustomerStripe> for StripeData {
    fn from(s: CustomerStripe) -> Self {
        StripeData {
            customer_id: Some(s.stripe_customer_id.into()),
            default_payment_method_id: s.default_payment_method_id,
            labels: s.labels,
        }
    }
}

async fn load_customer(ctx: &Context, ns: &str, id: &str) -> Result<Customer> {
    let id: crate::ids::CustomerId = path_ulid("customerId", id)?;
    ctx.store
        .get_customer(ns, id)
        .await?
        .ok_or_else(|| Error::not_found("customer", id))
}

async fn stripe_data(ctx: &Context, ns: &str, customer: &Customer) -> Result<Option<StripeData>> {
    let Some(app) = service::resolve_stripe_app(ctx, ns, customer, None).await? else {
        return Ok(None);
    };
    Ok(ctx
        .store
        .get_customer_stripe(ns, app.id, customer.id)
        .await?
        .map(Into::into))
}

async fn current(ctx: &Context, ns: &str, customer: &Customer) -> Result<BillingData> {
    let profile = ctx.store.customer_billing_profile(ns, customer.id).await?;
    Ok(BillingData {
        billing_profile: profile.map(|id| ProfileReference { id: id.to_string() }),
        app_data: Some(AppData {
            stripe: stripe_data(ctx, ns, customer).await?,
            external_invoicing: None,
        }),
    })
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/customers/{customerId}/billing",
    operation_id = "get-customer-billing",
    summary = "Get customer billing data",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    responses((status = 200, body = BillingData), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<BillingData>> {
    let customer = load_customer(&state.ctx, &ns, &id).await?;
    Ok(Json(current(&state.ctx, &ns, &customer).await?))
}

fn refuse_external_invoicing(app_data: &AppData, field: &str) -> Result<()> {
    if app_data.external_invoicing.is_some() {
        return Err(Error::field(
            field,
            Rule::Invalid,
            "meterpay supports Stripe apps only; external invoicing data cannot be set",
        ));
    }
    Ok(())
}

/// Validates the Stripe data for the app the customer resolves to under
/// `profile_override` and returns the row to store (nothing written yet).
async fn prepare_stripe(
    ctx: &Context,
    ns: &str,
    customer: &Customer,
    profile_override: Option<crate::ids::ProfileId>,
    stripe: StripeData,
) -> Result<CustomerStripe> {
    let app = service::resolve_with_profile(ctx, ns, profile_override)
        .await?
        .ok_or_else(|| no_app_error("app_data.stripe", Rule::Invalid, false))?;
    service::prepare_stripe_data(
        ctx,
        ns,
        customer,
        &app,
        StripeDataInput {
            customer_id: stripe.customer_id,
            default_payment_method_id: stripe.default_payment_method_id,
            labels: stripe.labels,
        },
    )
    .await
}

/// Sets the billing profile override (absent: the namespace default applies)
/// and, when given, the Stripe data for the customer's resolved Stripe app.
/// Absent `app_data` leaves the Stripe data as it is.
#[utoipa::path(
    put,
    path = "/api/v3/openmeter/customers/{customerId}/billing",
    operation_id = "update-customer-billing",
    summary = "Update customer billing data",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    request_body = BillingData,
    responses((status = 200, body = BillingData), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn upsert(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<BillingData>,
) -> Result<Json<BillingData>> {
    let customer = load_customer(&state.ctx, &ns, &id).await?;
    customer.ensure_live()?;
    if let Some(app_data) = &body.app_data {
        refuse_external_invoicing(app_data, "app_data.external_invoicing")?;
    }
    let profile = match &body.billing_profile {
        Some(reference) => {
            let field = "billing_profile.id";
            let id = super::extract::parse_ulid(&reference.id).ok_or_else(|| {
                Error::field(
                    field,
                    Rule::MatchesRegex,
                    format!("[{}] is not a ULID", reference.id),
                )
            })?;
            let id = crate::ids::ProfileId::from(id);
            service::check_profile(&state.ctx, &ns, field, id).await?;
            Some(id)
        }
        None => None,
    };
    // Stripe is checked first; then the override and the Stripe data are
    // written together, so a refusal leaves both as they were.
    let stripe = match body.app_data.and_then(|a| a.stripe) {
        Some(stripe) => Some(prepare_stripe(&state.ctx, &ns, &customer, profile, stripe).await?),
        None => None,
    };
    state
        .ctx
        .store
        .set_customer_billing(&ns, customer.id, profile, stripe.as_ref())
        .await
        .map_err(service::name_conflict)?;
    Ok(Json(current(&state.ctx, &ns, &customer).await?))
}

#[utoipa::path(
    put,
    path = "/api/v3/openmeter/customers/{customerId}/billing/app-data",
    operation_id = "update-customer-billing-app-data",
    summary = "Update customer billing app data",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    request_body = AppData,
    responses((status = 200, body = AppData), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn upsert_app_data(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AppData>,
) -> Result<Json<AppData>> {
    let customer = load_customer(&state.ctx, &ns, &id).await?;
    customer.ensure_live()?;
    refuse_external_invoicing(&body, "external_invoicing")?;
    if let Some(stripe) = body.stripe {
        let profile = state
            .ctx
            .store
            .customer_billing_profile(&ns, customer.id)
            .await?;
        let row = prepare_stripe(&state.ctx, &ns, &customer, profile, stripe)
            .await
            .map_err(|e| rename_fields(e, APP_DATA_FIELDS))?;
        state
            .ctx
            .store
            .upsert_customer_stripe(&ns, &row)
            .await
            .map_err(|e| rename_fields(service::name_conflict(e), APP_DATA_FIELDS))?;
    }
    Ok(Json(AppData {
        stripe: stripe_data(&state.ctx, &ns, &customer).await?,
        external_invoicing: None,
    }))
}

/// `…/billing/app-data` takes the Stripe data one level up from `…/billing`.
const APP_DATA_FIELDS: &[(&str, &str)] = &[("app_data.stripe", "stripe")];
