//! Checkout session history — an addition beyond the upstream OpenMeter API
//! (documented as such in the OpenAPI document):
//! `GET /api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions`
//! and `…/checkout-sessions/{sessionId}`. Every session meterpay created (or
//! learned of from a webhook), with its current status and, once complete,
//! the payment method the customer saved.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use super::AppState;
use super::extract::path_ulid;
use super::openapi::UlidParam;
use super::page::{Page, PageExt, PageNumber, PageSize, V3_DEFAULT_SIZE, V3Page};
use super::query::{QueryParams, fault, from_query};
use super::tenancy::Namespace;
use crate::billing::checkout::CheckoutSessionStatus;
use crate::error::{Error, Result, Rule};
use crate::store::checkout_sessions::CheckoutSessionRecord;

/// The statuses a recorded session can have: Stripe's three, plus `failed`
/// after `setup_intent.setup_failed` and `requires_action` after
/// `setup_intent.requires_action` (the session itself stays open in Stripe
/// and may still complete or expire).
pub const STATUSES: [&str; 5] = [
    CheckoutSessionStatus::ALL[0].as_str(),
    CheckoutSessionStatus::ALL[1].as_str(),
    CheckoutSessionStatus::ALL[2].as_str(),
    CheckoutSessionStatus::ALL[3].as_str(),
    CheckoutSessionStatus::ALL[4].as_str(),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/customers/{customerId}/billing/stripe/checkout-sessions",
            get(list),
        )
        .route(
            "/customers/{customerId}/billing/stripe/checkout-sessions/{sessionId}",
            get(fetch),
        )
}

/// A recorded checkout session: the creation result's fields (without the
/// client secret, which meterpay never stores) plus what happened since.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = MeterpayCheckoutSessionRecord)]
pub struct CheckoutSessionBody {
    pub session_id: String,
    pub app_id: String,
    pub customer_id: String,
    pub stripe_customer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub setup_intent_id: Option<String>,
    /// `open`, `complete`, `expired`, `failed` (the last attempt was
    /// declined), or `requires_action` (the customer must authenticate the
    /// card with their bank to finish).
    #[schema(pattern = "^(open|complete|expired|failed|requires_action)$")]
    pub status: String,
    #[schema(value_type = String, pattern = "^setup$")]
    pub mode: &'static str,
    /// `hosted` or `embedded`.
    #[schema(pattern = "^(hosted|embedded)$")]
    pub ui_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_reference_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub updated_at: OffsetDateTime,
}

impl From<CheckoutSessionRecord> for CheckoutSessionBody {
    fn from(r: CheckoutSessionRecord) -> Self {
        CheckoutSessionBody {
            session_id: r.id,
            app_id: r.app_id.to_string(),
            customer_id: r.customer_id.to_string(),
            stripe_customer_id: r.stripe_customer_id.into(),
            setup_intent_id: r.setup_intent_id,
            status: r.status.as_str().to_owned(),
            mode: "setup",
            ui_mode: r.ui_mode,
            currency: r.currency,
            url: r.url,
            success_url: r.success_url,
            cancel_url: r.cancel_url,
            return_url: r.return_url,
            client_reference_id: r.client_reference_id,
            customer_email: r.customer_email,
            metadata: r.metadata,
            payment_method_id: r.payment_method_id,
            failure_reason: r.failure_reason,
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions",
    operation_id = "list-customer-stripe-checkout-sessions",
    summary = "List the customer's checkout sessions, newest first",
    tag = "OpenMeter v3",
    extensions(("x-meterpay-addition" = json!(true))),
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path), HistoryQuery),
    responses((status = 200, body = V3Page<CheckoutSessionBody>), (status = 400), (status = 404), (status = 503))
)]
async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(customer_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<V3Page<CheckoutSessionBody>>> {
    let customer_id: crate::ids::CustomerId = path_ulid("customerId", &customer_id)?;
    let query: HistoryQuery = from_query(raw.as_deref())?;
    let page = Page::of(query.number, query.size, V3_DEFAULT_SIZE);
    let mut statuses: Vec<CheckoutSessionStatus> = [query.status, query.status_eq]
        .into_iter()
        .flatten()
        .flat_map(|s| s.0)
        .chain(query.status_oeq.into_iter().flat_map(|s| s.0))
        .collect();
    statuses.sort();
    statuses.dedup();
    state.ctx.store.require_customer(&ns, customer_id).await?;
    let (items, total) = state
        .ctx
        .store
        .list_checkout_sessions(&ns, customer_id, &statuses, page.size, page.offset())
        .await?;
    Ok(Json(V3Page {
        data: items.into_iter().map(Into::into).collect(),
        meta: page.v3_meta(total),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions/{sessionId}",
    operation_id = "get-customer-stripe-checkout-session",
    summary = "Get one of the customer's checkout sessions",
    tag = "OpenMeter v3",
    extensions(("x-meterpay-addition" = json!(true))),
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path), ("sessionId" = String, Path, description = "The Stripe checkout session id")),
    responses((status = 200, body = CheckoutSessionBody), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path((customer_id, session_id)): Path<(String, String)>,
) -> Result<Json<CheckoutSessionBody>> {
    let customer_id: crate::ids::CustomerId = path_ulid("customerId", &customer_id)?;
    state.ctx.store.require_customer(&ns, customer_id).await?;
    let session = state
        .ctx
        .store
        .get_checkout_session(&ns, &session_id)
        .await?
        .filter(|s| s.customer_id == customer_id)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "checkout session [{session_id}] of customer [{customer_id}] not found"
            ))
        })?;
    Ok(Json(session.into()))
}

/// `page[number]`, `page[size]`, `filter[status]` (also spelt
/// `filter[status][eq]`) and `filter[status][oeq]` (comma-separated).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    #[serde(rename = "page[number]")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295u64)]
    number: Option<PageNumber>,
    #[serde(rename = "page[size]")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    size: Option<PageSize>,
    #[serde(rename = "filter[status]")]
    #[param(value_type = Option<String>, pattern = "^(open|complete|expired|failed)$")]
    status: Option<Statuses<false>>,
    #[serde(rename = "filter[status][eq]")]
    #[param(value_type = Option<String>, pattern = "^(open|complete|expired|failed)$")]
    status_eq: Option<Statuses<false>>,
    #[serde(rename = "filter[status][oeq]")]
    #[param(value_type = Option<String>, pattern = "^(open|complete|expired|failed)( *, *(open|complete|expired|failed))*$")]
    status_oeq: Option<Statuses<true>>,
}

impl QueryParams for HistoryQuery {
    const KNOWN: &'static str = "page[number], page[size] or filter[status]";
}

/// One status, or (`MANY`, for `oeq`) a comma-separated list of them.
#[derive(Debug)]
struct Statuses<const MANY: bool>(Vec<CheckoutSessionStatus>);

impl<'de, const MANY: bool> Deserialize<'de> for Statuses<MANY> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        let parts: Vec<&str> = if MANY {
            value.split(',').map(str::trim).collect()
        } else {
            vec![value.as_str()]
        };
        parts
            .into_iter()
            .map(|s| {
                CheckoutSessionStatus::parse(s).ok_or_else(|| {
                    fault(
                        Rule::Enum(STATUSES.iter().map(|s| (*s).to_owned()).collect()),
                        format!("[{s}] is not a checkout session status; use one of {STATUSES:?}"),
                    )
                })
            })
            .collect::<std::result::Result<_, _>>()
            .map(Statuses)
    }
}
