//! Creating checkout sessions: v3
//! `POST /api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions`
//! and v1 `POST /api/v1/stripe/checkout/sessions`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::extract::{ApiJson, from_value, parse_ulid, path_ulid};
use super::openapi::UlidParam;
use super::problem::V1Error;
use super::schema_json::{CheckoutCustomerV1, CheckoutOptionsV1, CheckoutOptionsV3};
use super::tenancy::Namespace;
use super::v1_customers::{CustomerInputV1, create_customer_v1};
use super::v1_names::v1_option_field;
use crate::billing::checkout::{
    BillingAddressCollection, CheckoutOptions, ConsentCollection, CustomText, CustomerUpdate,
    Promotions, RedirectOnCompletion, ReuseAgreementPosition, TaxIdCollection, TaxIdRequired,
    TermsOfService, UiMode, UpdateBehavior,
};
use crate::error::{Error, Result, Rule};
use crate::service::checkout::{
    CheckoutRequest, CheckoutResult, create_checkout_session, create_checkout_session_for,
};

pub fn v3_router() -> Router<AppState> {
    Router::new().route(
        "/customers/{customerId}/billing/stripe/checkout-sessions",
        post(create_v3),
    )
}

pub fn v1_router() -> Router<AppState> {
    Router::new().route("/stripe/checkout/sessions", post(create_v1))
}

// ---- v3 -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomTextV3 {
    after_submit: Option<Message>,
    shipping_address: Option<Message>,
    submit: Option<Message>,
    terms_of_service_acceptance: Option<Message>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerUpdateV3 {
    address: Option<UpdateBehavior>,
    name: Option<UpdateBehavior>,
    shipping: Option<UpdateBehavior>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReuseAgreementV3 {
    position: Option<ReuseAgreementPosition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentV3 {
    payment_method_reuse_agreement: Option<ReuseAgreementV3>,
    promotions: Option<Promotions>,
    terms_of_service: Option<TermsOfService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxIdV3 {
    enabled: Option<bool>,
    required: Option<TaxIdRequired>,
}

/// `expires_at`: a whole number of Unix seconds. JSON (and the document's
/// `integer`) count `1700000000.0` as one, serde's `i64` does not.
fn unix_seconds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<i64>, D::Error> {
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    number
        .as_i64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && (i64::MIN as f64..i64::MAX as f64).contains(f))
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid type: number `{number}`, expected whole Unix seconds (an i64)"
            ))
        })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsV3 {
    billing_address_collection: Option<BillingAddressCollection>,
    cancel_url: Option<String>,
    client_reference_id: Option<String>,
    customer_update: Option<CustomerUpdateV3>,
    consent_collection: Option<ConsentV3>,
    currency: Option<String>,
    custom_text: Option<CustomTextV3>,
    #[serde(default, deserialize_with = "unix_seconds")]
    expires_at: Option<i64>,
    locale: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
    return_url: Option<String>,
    success_url: Option<String>,
    ui_mode: Option<UiMode>,
    payment_method_types: Option<Vec<String>>,
    redirect_on_completion: Option<RedirectOnCompletion>,
    tax_id_collection: Option<TaxIdV3>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = BillingCustomerStripeCreateCheckoutSessionRequest)]
#[serde(deny_unknown_fields)]
struct CreateV3 {
    #[schema(value_type = CheckoutOptionsV3)]
    stripe_options: OptionsV3,
}

fn message(m: Option<Message>) -> Option<String> {
    m.and_then(|m| m.message)
}

impl From<OptionsV3> for CheckoutOptions {
    fn from(o: OptionsV3) -> Self {
        CheckoutOptions {
            billing_address_collection: o.billing_address_collection,
            cancel_url: o.cancel_url,
            client_reference_id: o.client_reference_id,
            customer_update: o.customer_update.map(|u| CustomerUpdate {
                address: u.address,
                name: u.name,
                shipping: u.shipping,
            }),
            consent_collection: o.consent_collection.map(|c| ConsentCollection {
                payment_method_reuse_agreement: c
                    .payment_method_reuse_agreement
                    .and_then(|a| a.position),
                promotions: c.promotions,
                terms_of_service: c.terms_of_service,
            }),
            currency: o.currency,
            custom_text: o.custom_text.map(|t| CustomText {
                after_submit: message(t.after_submit),
                shipping_address: message(t.shipping_address),
                submit: message(t.submit),
                terms_of_service_acceptance: message(t.terms_of_service_acceptance),
            }),
            expires_at: o.expires_at,
            locale: o.locale,
            metadata: o.metadata,
            return_url: o.return_url,
            success_url: o.success_url,
            ui_mode: o.ui_mode,
            payment_method_types: o.payment_method_types,
            redirect_on_completion: o.redirect_on_completion,
            tax_id_collection: o.tax_id_collection.map(|t| TaxIdCollection {
                enabled: t.enabled.unwrap_or(false),
                required: t.required,
            }),
        }
    }
}

/// `BillingAppStripeCreateCheckoutSessionResult`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = BillingAppStripeCreateCheckoutSessionResult)]
pub struct ResultV3 {
    pub customer_id: String,
    pub stripe_customer_id: String,
    pub session_id: String,
    pub setup_intent_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_reference_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: time::OffsetDateTime,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub expires_at: Option<time::OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[schema(value_type = String, pattern = "^setup$")]
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

impl From<CheckoutResult> for ResultV3 {
    fn from(r: CheckoutResult) -> Self {
        ResultV3 {
            customer_id: r.customer_id.to_string(),
            stripe_customer_id: r.stripe_customer_id.into(),
            session_id: r.session_id,
            setup_intent_id: r.setup_intent_id,
            client_secret: r.client_secret,
            client_reference_id: r.client_reference_id,
            customer_email: r.customer_email,
            currency: r.currency,
            created_at: r.created_at,
            expires_at: r.expires_at,
            metadata: r.metadata,
            status: r.status.map(|s| s.as_str().to_owned()),
            url: r.url,
            mode: "setup",
            cancel_url: r.cancel_url,
            success_url: r.success_url,
            return_url: r.return_url,
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions",
    operation_id = "create-customer-stripe-checkout-session",
    summary = "Create Stripe Checkout Session (setup mode)",
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
    let result =
        create_checkout_session_for(&state.ctx, &ns, id, body.stripe_options.into()).await?;
    Ok((StatusCode::CREATED, Json(result.into())))
}

// ---- v1 -------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomTextV1 {
    after_submit: Option<Message>,
    shipping_address: Option<Message>,
    submit: Option<Message>,
    terms_of_service_acceptance: Option<Message>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReuseAgreementV1 {
    position: Option<ReuseAgreementPosition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsentV1 {
    payment_method_reuse_agreement: Option<ReuseAgreementV1>,
    promotions: Option<Promotions>,
    terms_of_service: Option<TermsOfService>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OptionsV1 {
    billing_address_collection: Option<BillingAddressCollection>,
    #[serde(rename = "cancelURL")]
    cancel_url: Option<String>,
    #[serde(rename = "clientReferenceID")]
    client_reference_id: Option<String>,
    customer_update: Option<CustomerUpdateV3>,
    consent_collection: Option<ConsentV1>,
    currency: Option<String>,
    custom_text: Option<CustomTextV1>,
    #[serde(default, deserialize_with = "unix_seconds")]
    expires_at: Option<i64>,
    locale: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
    #[serde(rename = "returnURL")]
    return_url: Option<String>,
    #[serde(rename = "successURL")]
    success_url: Option<String>,
    ui_mode: Option<UiMode>,
    payment_method_types: Option<Vec<String>>,
    redirect_on_completion: Option<RedirectOnCompletion>,
    tax_id_collection: Option<TaxIdV3>,
}

impl From<OptionsV1> for CheckoutOptions {
    fn from(o: OptionsV1) -> Self {
        OptionsV3 {
            billing_address_collection: o.billing_address_collection,
            cancel_url: o.cancel_url,
            client_reference_id: o.client_reference_id,
            customer_update: o.customer_update,
            consent_collection: o.consent_collection.map(|c| ConsentV3 {
                payment_method_reuse_agreement: c.payment_method_reuse_agreement.map(|a| {
                    ReuseAgreementV3 {
                        position: a.position,
                    }
                }),
                promotions: c.promotions,
                terms_of_service: c.terms_of_service,
            }),
            currency: o.currency,
            custom_text: o.custom_text.map(|t| CustomTextV3 {
                after_submit: t.after_submit,
                shipping_address: t.shipping_address,
                submit: t.submit,
                terms_of_service_acceptance: t.terms_of_service_acceptance,
            }),
            expires_at: o.expires_at,
            locale: o.locale,
            metadata: o.metadata,
            return_url: o.return_url,
            success_url: o.success_url,
            ui_mode: o.ui_mode,
            payment_method_types: o.payment_method_types,
            redirect_on_completion: o.redirect_on_completion,
            tax_id_collection: o.tax_id_collection,
        }
        .into()
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = CreateStripeCheckoutSessionRequest)]
#[serde(rename_all = "camelCase")]
struct CreateV1 {
    #[schema(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    app_id: Option<String>,
    #[schema(value_type = CheckoutCustomerV1)]
    customer: Value,
    #[schema(pattern = "^cus_[A-Za-z0-9]{1,255}$")]
    stripe_customer_id: Option<String>,
    #[schema(value_type = CheckoutOptionsV1)]
    options: OptionsV1,
}

/// `CreateStripeCheckoutSessionResult`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = CreateStripeCheckoutSessionResult)]
#[serde(rename_all = "camelCase")]
pub struct ResultV1 {
    pub customer_id: String,
    pub stripe_customer_id: String,
    pub session_id: String,
    pub setup_intent_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_reference_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: time::OffsetDateTime,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub expires_at: Option<time::OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub mode: &'static str,
    #[serde(rename = "cancelURL", skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    #[serde(rename = "successURL", skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    #[serde(rename = "returnURL", skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

impl From<CheckoutResult> for ResultV1 {
    fn from(r: CheckoutResult) -> Self {
        let v3 = ResultV3::from(r);
        ResultV1 {
            customer_id: v3.customer_id,
            stripe_customer_id: v3.stripe_customer_id,
            session_id: v3.session_id,
            setup_intent_id: v3.setup_intent_id,
            client_secret: v3.client_secret,
            client_reference_id: v3.client_reference_id,
            customer_email: v3.customer_email,
            currency: v3.currency,
            created_at: v3.created_at,
            expires_at: v3.expires_at,
            metadata: v3.metadata,
            status: v3.status,
            url: v3.url,
            mode: v3.mode,
            cancel_url: v3.cancel_url,
            success_url: v3.success_url,
            return_url: v3.return_url,
        }
    }
}

/// v3 field names → v1 (`stripe_options.x` → `options.x`, `app_id` → `appId`).
fn v1_errors(err: Error) -> V1Error {
    match err {
        Error::Invalid(errors) => V1Error(Error::Invalid(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = match e.field.as_str() {
                        "app_id" => "appId".to_owned(),
                        "stripe_customer_id" => "stripeCustomerId".to_owned(),
                        f if f.starts_with("stripe_options.") => v1_option_field(f),
                        f => f.to_owned(),
                    };
                    e
                })
                .collect(),
        )),
        Error::Conflict { field, detail } => V1Error(Error::Conflict {
            field: field.map(|f| match f.as_str() {
                "stripe_customer_id" => "stripeCustomerId".to_owned(),
                _ => f,
            }),
            detail,
        }),
        other => V1Error(other),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/stripe/checkout/sessions",
    operation_id = "createStripeCheckoutSession",
    summary = "Create Stripe Checkout Session (setup mode)",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    request_body = CreateV1,
    responses((status = 201, body = ResultV1), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn create_v1(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiJson(body): ApiJson<CreateV1>,
) -> std::result::Result<(StatusCode, Json<ResultV1>), V1Error> {
    let app_id = match &body.app_id {
        Some(id) => Some(parse_ulid(id).map(crate::ids::AppId::from).ok_or_else(|| {
            Error::field("appId", Rule::MatchesRegex, format!("[{id}] is not a ULID"))
        })?),
        None => None,
    };
    let customer = match &body.customer {
        Value::Object(map) if map.contains_key("name") => {
            let input: CustomerInputV1 =
                from_value(body.customer.clone()).map_err(|e| prefix(e, "customer"))?;
            create_customer_v1(&state.ctx, &ns, input)
                .await
                .map_err(|e| V1Error(prefix(e.0, "customer")))?
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("id") => {
            let id = map["id"].as_str().and_then(parse_ulid).ok_or_else(|| {
                Error::field("customer.id", Rule::MatchesRegex, "must be a customer ULID")
            })?;
            state.ctx.store.require_customer(&ns, id.into()).await?
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("key") => {
            let key = map["key"]
                .as_str()
                .ok_or_else(|| Error::field("customer.key", Rule::Type, "must be a string"))?;
            state
                .ctx
                .store
                .get_customer_by_key(&ns, key)
                .await?
                .ok_or_else(|| Error::not_found("customer", key))?
        }
        _ => {
            return Err(Error::field(
                "customer",
                Rule::Invalid,
                "must be {\"id\": …}, {\"key\": …}, or a customer to create (with name)",
            )
            .into());
        }
    };
    let result = create_checkout_session(
        &state.ctx,
        &ns,
        &customer,
        CheckoutRequest {
            app_id,
            stripe_customer_id: body.stripe_customer_id,
            options: body.options.into(),
        },
    )
    .await
    .map_err(v1_errors)?;
    Ok((StatusCode::CREATED, Json(result.into())))
}

fn prefix(err: Error, prefix: &str) -> Error {
    match err {
        Error::Invalid(errors) => Error::Invalid(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = format!("{prefix}.{}", e.field);
                    e
                })
                .collect(),
        ),
        Error::Conflict { field, detail } => Error::Conflict {
            field: field.map(|f| format!("{prefix}.{f}")),
            detail,
        },
        other => other,
    }
}
