//! v3 apps and the app catalog: `/api/v3/openmeter/apps…`,
//! `/api/v3/openmeter/app-catalog…`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AppState;
use super::extract::{ApiJson, from_value, path_ulid};
use super::openapi::UlidParam;
use super::page::{PageExt, V3Page, V3PageQuery};
use super::query::ApiQuery;
use super::schema::{Labels, StripeApiKey, SupportedAppType, V3AppType};
use super::tenancy::Namespace;
use crate::billing::app::{self, App, CatalogItem};
use crate::error::{Error, Result, Rule};
use crate::service::apps::{self as service, AppNaming, InstallStripe};

/// The app types the v3 contract knows.
pub const V3_TYPES: &[&str] = &["sandbox", "stripe", "external_invoicing"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app-catalog", get(list_catalog))
        .route("/app-catalog/install", post(install))
        .route("/app-catalog/{appType}", get(get_catalog_item))
        .route("/apps", get(list))
        .route("/apps/{appId}", get(fetch).put(update).delete(uninstall))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CapabilityBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

/// `BillingAppCatalogItem`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CatalogItemBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub capabilities: Vec<CapabilityBody>,
    pub install_methods: Vec<&'static str>,
}

impl From<&CatalogItem> for CatalogItemBody {
    fn from(item: &CatalogItem) -> Self {
        CatalogItemBody {
            kind: item.kind,
            name: item.name,
            description: item.description,
            capabilities: item
                .capabilities
                .iter()
                .map(|c| CapabilityBody {
                    kind: c.kind,
                    key: c.key,
                    name: c.name,
                    description: c.description,
                })
                .collect(),
            install_methods: item.install_methods.to_vec(),
        }
    }
}

/// `BillingAppStripe`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppBody {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub updated_at: time::OffsetDateTime,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub deleted_at: Option<time::OffsetDateTime>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub definition: CatalogItemBody,
    pub status: &'static str,
    pub account_id: String,
    pub livemode: bool,
    pub masked_api_key: String,
}

impl From<App> for AppBody {
    fn from(a: App) -> Self {
        AppBody {
            id: a.id.to_string(),
            name: a.name,
            description: a.description,
            labels: a.labels,
            created_at: a.created_at,
            updated_at: a.updated_at,
            deleted_at: a.deleted_at,
            kind: app::STRIPE.kind,
            definition: (&app::STRIPE).into(),
            status: a.status.as_str(),
            account_id: a.stripe_account_id,
            livemode: a.livemode,
            masked_api_key: a.masked_api_key,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstallResponse {
    pub app: AppBody,
    pub default_for_capability_types: Vec<&'static str>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct InstallStripeRequest {
    #[serde(rename = "type")]
    #[schema(value_type = SupportedAppType)]
    _kind: String,
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    create_billing_profile: bool,
    #[schema(value_type = StripeApiKey)]
    api_key: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateStripeRequest {
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    #[schema(max_length = 1024)]
    description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "type")]
    #[schema(value_type = SupportedAppType)]
    _kind: String,
    #[schema(value_type = Option<StripeApiKey>)]
    secret_api_key: Option<String>,
}

/// Reads the discriminator of a `oneOf` body: must be a known type and one
/// meterpay implements.
pub fn discriminator(body: &Value, field: &str, known: &[&str]) -> Result<()> {
    let kind = match body.get(field) {
        None if body.is_object() => {
            return Err(Error::field(field, Rule::Required, "is a required field"));
        }
        None => {
            return Err(Error::field("body", Rule::Type, "must be a JSON object"));
        }
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(Error::field(field, Rule::Type, "must be a string")),
    };
    if app::SUPPORTED_TYPES.contains(&kind) {
        return Ok(());
    }
    if known.contains(&kind) {
        return Err(Error::field(
            field,
            Rule::Enum(
                app::SUPPORTED_TYPES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
            ),
            format!(
                "meterpay does not support [{kind}] apps; supported types: {}",
                app::SUPPORTED_TYPES.join(", ")
            ),
        ));
    }
    Err(Error::field(
        field,
        Rule::Enum(known.iter().map(|s| (*s).to_owned()).collect()),
        format!(
            "[{kind}] is not an app type; use one of {}",
            known.join(", ")
        ),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/app-catalog",
    operation_id = "list-app-catalog",
    summary = "List app catalog",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(V3PageQuery),
    responses((status = 200, body = V3Page<CatalogItemBody>), (status = 400))
)]
async fn list_catalog(
    ApiQuery(query): ApiQuery<V3PageQuery>,
) -> Result<Json<V3Page<CatalogItemBody>>> {
    let page = query.page();
    let items: Vec<CatalogItemBody> = app::CATALOG
        .iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.size).unwrap_or(usize::MAX))
        .map(Into::into)
        .collect();
    Ok(Json(V3Page {
        data: items,
        meta: page.v3_meta(app::CATALOG.len() as u64),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/app-catalog/{appType}",
    operation_id = "get-app-catalog-item",
    summary = "Get app catalog item",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("appType" = inline(V3AppType), Path, description = "The app type; meterpay offers stripe (the other types answer 404)")),
    responses((status = 200, body = CatalogItemBody), (status = 400), (status = 404))
)]
async fn get_catalog_item(Path(kind): Path<String>) -> Result<Json<CatalogItemBody>> {
    let item = app::catalog_item("appType", &kind, V3_TYPES).map_err(in_path)?;
    Ok(Json(item.into()))
}

/// Field errors about path parameters say so.
fn in_path(err: Error) -> Error {
    match err {
        Error::Invalid(errors) => Error::Invalid(
            errors
                .into_iter()
                .map(|e| e.in_source(crate::error::Source::Path))
                .collect(),
        ),
        other => other,
    }
}

#[utoipa::path(
    post,
    path = "/api/v3/openmeter/app-catalog/install",
    operation_id = "install-app",
    summary = "Install app",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    request_body = InstallStripeRequest,
    responses((status = 201, body = InstallResponse), (status = 400), (status = 409), (status = 503))
)]
async fn install(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<InstallResponse>)> {
    discriminator(&body, "type", V3_TYPES)?;
    let req: InstallStripeRequest = from_value(body)?;
    let installed = service::install_stripe(
        &state.ctx,
        &ns,
        InstallStripe {
            name: req.name,
            description: None,
            labels: None,
            api_key: req.api_key,
            create_billing_profile: req.create_billing_profile,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(InstallResponse {
            app: installed.app.into(),
            default_for_capability_types: installed.default_for_capability_types,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/apps",
    operation_id = "list-apps",
    summary = "List apps",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(V3PageQuery),
    responses((status = 200, body = V3Page<AppBody>), (status = 400), (status = 503))
)]
async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiQuery(query): ApiQuery<V3PageQuery>,
) -> Result<Json<V3Page<AppBody>>> {
    let page = query.page();
    let (apps, total) = state.ctx.store.list_apps(&ns, page).await?;
    Ok(Json(V3Page {
        data: apps.into_iter().map(Into::into).collect(),
        meta: page.v3_meta(total),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/apps/{appId}",
    operation_id = "get-app",
    summary = "Get app",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("appId" = inline(UlidParam), Path)),
    responses((status = 200, body = AppBody), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<AppBody>> {
    let id: crate::ids::AppId = path_ulid("appId", &id)?;
    let app = state.ctx.store.require_app(&ns, id).await?;
    Ok(Json(app.into()))
}

#[utoipa::path(
    put,
    path = "/api/v3/openmeter/apps/{appId}",
    operation_id = "update-app",
    summary = "Update app",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("appId" = inline(UlidParam), Path)),
    request_body = UpdateStripeRequest,
    responses((status = 200, body = AppBody), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn update(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<AppBody>> {
    let id: crate::ids::AppId = path_ulid("appId", &id)?;
    discriminator(&body, "type", V3_TYPES)?;
    let req: UpdateStripeRequest = from_value(body)?;
    let app = service::update_stripe(
        &state.ctx,
        &ns,
        id,
        Some(AppNaming {
            name: &req.name,
            description: req.description.as_deref(),
            labels: req.labels.as_ref(),
        }),
        req.secret_api_key.as_deref(),
    )
    .await?;
    Ok(Json(app.into()))
}

#[utoipa::path(
    delete,
    path = "/api/v3/openmeter/apps/{appId}",
    operation_id = "uninstall-app",
    summary = "Uninstall app",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("appId" = inline(UlidParam), Path)),
    responses((status = 204), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn uninstall(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: crate::ids::AppId = path_ulid("appId", &id)?;
    service::uninstall(&state.ctx, &ns, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
