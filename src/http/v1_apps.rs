//! v1 apps and marketplace: `/api/v1/apps…`, `/api/v1/marketplace/listings…`
//! — the shapes the official OpenMeter SDKs speak.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::apps::{CapabilityBody, discriminator};
use super::extract::{ApiJson, from_value, path_ulid};
use super::openapi::UlidParam;
use super::page::{V1Page, V1PageQuery};
use super::problem::V1Error;
use super::query::ApiQuery;
use super::schema::{Labels, StripeApiKey, SupportedAppType, V1AppType};
use super::tenancy::Namespace;
use super::v1_names::{API_KEY_FIELDS, rename_fields};
use crate::billing::app::{self, App, CatalogItem};
use crate::error::{Error, Source};
use crate::service::apps::{self as service, AppNaming, InstallStripe};

type Result<T> = std::result::Result<T, V1Error>;

/// The app types the v1 contract knows.
pub const V1_TYPES: &[&str] = &["stripe", "sandbox", "custom_invoicing"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/marketplace/listings", get(list_listings))
        .route("/marketplace/listings/{type}", get(get_listing))
        .route(
            "/marketplace/listings/{type}/install/apikey",
            post(install_with_api_key),
        )
        .route("/apps", get(list))
        .route("/apps/{id}", get(fetch).put(update).delete(uninstall))
        .route("/apps/{id}/stripe/api-key", put(update_api_key))
}

/// `MarketplaceListing`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListingBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub capabilities: Vec<CapabilityBody>,
    pub install_methods: Vec<&'static str>,
}

impl From<&CatalogItem> for ListingBody {
    fn from(item: &CatalogItem) -> Self {
        ListingBody {
            kind: item.kind,
            name: item.name,
            description: item.description,
            capabilities: item
                .capabilities
                .iter()
                .map(|c| CapabilityBody {
                    kind: v1_capability(c.kind),
                    key: c.key,
                    name: c.name,
                    description: c.description,
                })
                .collect(),
            install_methods: item.install_methods.to_vec(),
        }
    }
}

/// v1 spells capability types in camelCase (`calculate_tax` → `calculateTax`).
pub fn v1_capability(kind: &'static str) -> &'static str {
    match kind {
        "report_usage" => "reportUsage",
        "report_events" => "reportEvents",
        "calculate_tax" => "calculateTax",
        "invoice_customers" => "invoiceCustomers",
        "collect_payments" => "collectPayments",
        other => other,
    }
}

/// `StripeApp`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeAppV1 {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub updated_at: time::OffsetDateTime,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub deleted_at: Option<time::OffsetDateTime>,
    pub listing: ListingBody,
    pub status: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub stripe_account_id: String,
    pub livemode: bool,
    #[serde(rename = "maskedAPIKey")]
    pub masked_api_key: String,
}

impl From<App> for StripeAppV1 {
    fn from(a: App) -> Self {
        StripeAppV1 {
            id: a.id.to_string(),
            name: a.name,
            description: a.description,
            metadata: a.labels,
            created_at: a.created_at,
            updated_at: a.updated_at,
            deleted_at: a.deleted_at,
            listing: (&app::STRIPE).into(),
            status: a.status.as_str(),
            kind: app::STRIPE.kind,
            stripe_account_id: a.stripe_account_id,
            livemode: a.livemode,
            masked_api_key: a.masked_api_key,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstallResponseV1 {
    pub app: StripeAppV1,
    pub default_for_capability_types: Vec<&'static str>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct InstallRequest {
    #[schema(min_length = 1, max_length = 256)]
    name: Option<String>,
    create_billing_profile: Option<bool>,
    #[schema(value_type = StripeApiKey)]
    api_key: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ReplaceStripeRequest {
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    #[schema(max_length = 1024)]
    description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(rename = "type")]
    #[schema(value_type = SupportedAppType)]
    _kind: String,
    #[serde(rename = "secretAPIKey")]
    #[schema(value_type = Option<StripeApiKey>)]
    secret_api_key: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct ApiKeyRequest {
    #[serde(rename = "secretAPIKey")]
    #[schema(value_type = StripeApiKey)]
    secret_api_key: String,
}

fn listing(kind: &str) -> std::result::Result<&'static CatalogItem, Error> {
    app::catalog_item("type", kind, V1_TYPES).map_err(|err| match err {
        Error::Invalid(errors) => Error::Invalid(
            errors
                .into_iter()
                .map(|e| e.in_source(Source::Path))
                .collect(),
        ),
        other => other,
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/marketplace/listings",
    operation_id = "listMarketplaceListings",
    summary = "List marketplace listings",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(V1PageQuery),
    responses((status = 200, body = V1Page<ListingBody>), (status = 400))
)]
async fn list_listings(
    ApiQuery(query): ApiQuery<V1PageQuery>,
) -> Result<Json<V1Page<ListingBody>>> {
    let page = query.page();
    let items = app::CATALOG
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.size).unwrap_or(usize::MAX))
        .map(Into::into)
        .collect();
    Ok(Json(V1Page::new(page, app::CATALOG.len() as u64, items)))
}

#[utoipa::path(
    get,
    path = "/api/v1/marketplace/listings/{type}",
    operation_id = "getMarketplaceListing",
    summary = "Get marketplace listing",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("type" = inline(V1AppType), Path, description = "The app type; meterpay offers stripe (the other types answer 404)")),
    responses((status = 200, body = ListingBody), (status = 400), (status = 404))
)]
async fn get_listing(Path(kind): Path<String>) -> Result<Json<ListingBody>> {
    Ok(Json(listing(&kind)?.into()))
}

#[utoipa::path(
    post,
    path = "/api/v1/marketplace/listings/{type}/install/apikey",
    operation_id = "marketplaceAppAPIKeyInstall",
    summary = "Install an app with an API key",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("type" = inline(V1AppType), Path, description = "The app type; meterpay offers stripe (the other types answer 404)")),
    request_body = InstallRequest,
    responses((status = 201, body = InstallResponseV1), (status = 400), (status = 404), (status = 409), (status = 503))
)]
async fn install_with_api_key(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(kind): Path<String>,
    ApiJson(body): ApiJson<InstallRequest>,
) -> Result<Json<InstallResponseV1>> {
    let item = listing(&kind)?;
    let installed = service::install_stripe(
        &state.ctx,
        &ns,
        InstallStripe {
            name: body.name.unwrap_or_else(|| item.name.to_owned()),
            description: None,
            labels: None,
            api_key: body.api_key,
            create_billing_profile: body.create_billing_profile.unwrap_or(true),
        },
    )
    .await?;
    Ok(Json(InstallResponseV1 {
        app: installed.app.into(),
        default_for_capability_types: installed
            .default_for_capability_types
            .into_iter()
            .map(v1_capability)
            .collect(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/apps",
    operation_id = "listApps",
    summary = "List apps",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(V1PageQuery),
    responses((status = 200, body = V1Page<StripeAppV1>), (status = 400), (status = 503))
)]
async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiQuery(query): ApiQuery<V1PageQuery>,
) -> Result<Json<V1Page<StripeAppV1>>> {
    let page = query.page();
    let (apps, total) = state.ctx.store.list_apps(&ns, page).await?;
    Ok(Json(V1Page::new(
        page,
        total,
        apps.into_iter().map(Into::into).collect(),
    )))
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{id}",
    operation_id = "getApp",
    summary = "Get app",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("id" = inline(UlidParam), Path)),
    responses((status = 200, body = StripeAppV1), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<StripeAppV1>> {
    let id: crate::ids::AppId = path_ulid("id", &id)?;
    let app = state.ctx.store.require_app(&ns, id).await?;
    Ok(Json(app.into()))
}

#[utoipa::path(
    put,
    path = "/api/v1/apps/{id}",
    operation_id = "updateApp",
    summary = "Update app",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("id" = inline(UlidParam), Path)),
    request_body = ReplaceStripeRequest,
    responses((status = 200, body = StripeAppV1), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn update(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<StripeAppV1>> {
    let id: crate::ids::AppId = path_ulid("id", &id)?;
    discriminator(&body, "type", V1_TYPES)?;
    let req: ReplaceStripeRequest = from_value(body)?;
    let app = service::update_stripe(
        &state.ctx,
        &ns,
        id,
        Some(AppNaming {
            name: &req.name,
            description: req.description.as_deref(),
            labels: req.metadata.as_ref(),
        }),
        req.secret_api_key.as_deref(),
    )
    .await
    .map_err(|e| rename_fields(e, API_KEY_FIELDS))?;
    Ok(Json(app.into()))
}

#[utoipa::path(
    put,
    path = "/api/v1/apps/{id}/stripe/api-key",
    operation_id = "updateStripeAPIKey",
    summary = "Update the Stripe API key",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("id" = inline(UlidParam), Path)),
    request_body = ApiKeyRequest,
    responses((status = 204), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn update_api_key(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApiKeyRequest>,
) -> Result<StatusCode> {
    let id: crate::ids::AppId = path_ulid("id", &id)?;
    service::update_stripe(&state.ctx, &ns, id, None, Some(&body.secret_api_key))
        .await
        .map_err(|e| rename_fields(e, API_KEY_FIELDS))?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/v1/apps/{id}",
    operation_id = "uninstallApp",
    summary = "Uninstall app",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("id" = inline(UlidParam), Path)),
    responses((status = 204), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn uninstall(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: crate::ids::AppId = path_ulid("id", &id)?;
    service::uninstall(&state.ctx, &ns, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
