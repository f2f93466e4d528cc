//! v1 customer app data: `/api/v1/customers/{customerIdOrKey}/stripe` and
//! `/api/v1/customers/{customerIdOrKey}/apps…`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::AppState;
use super::extract::{ApiJson, from_value, parse_ulid, path_ulid};
use super::openapi::UlidParam;
use super::page::{Page, PageExt, PageNumber, PageSize, V1_DEFAULT_SIZE, V1Page};
use super::problem::V1Error;
use super::query::{ApiQuery, QueryParams, fault};
use super::schema::{SupportedAppType, V1AppType};
use super::tenancy::Namespace;
use super::v1_apps::{StripeAppV1, V1_TYPES};
use super::v1_customers::resolve;
use crate::billing::app::{self, App};
use crate::billing::customer::Customer;
use crate::error::{Error, Rule};
use crate::service::Context;
use crate::service::customer_billing::{self as service, StripeDataInput, no_app_error};
use crate::store::customer_stripe::CustomerStripe;

use super::v1_names::{STRIPE_DATA_FIELDS, rename_fields};

type Result<T> = std::result::Result<T, V1Error>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/customers/{customerIdOrKey}/stripe",
            get(get_stripe).put(put_stripe),
        )
        .route(
            "/customers/{customerIdOrKey}/apps",
            get(list_app_data).put(put_app_data),
        )
        .route(
            "/customers/{customerIdOrKey}/apps/{appId}",
            delete(delete_app_data),
        )
}

/// `StripeCustomerAppData`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StripeCustomerAppData {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub stripe_customer_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_default_payment_method_id: Option<String>,
    pub app: StripeAppV1,
}

impl StripeCustomerAppData {
    fn new(data: CustomerStripe, app: App) -> Self {
        StripeCustomerAppData {
            id: app.id.to_string(),
            kind: app::STRIPE.kind,
            stripe_customer_id: data.stripe_customer_id.into(),
            stripe_default_payment_method_id: data.default_payment_method_id,
            app: app.into(),
        }
    }
}

/// `StripeCustomerAppDataBase`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct StripeBase {
    #[schema(pattern = "^cus_[A-Za-z0-9]{1,255}$")]
    stripe_customer_id: String,
    #[schema(pattern = "^(pm|card|src)_[A-Za-z0-9]{1,255}$")]
    stripe_default_payment_method_id: Option<String>,
}

/// `StripeCustomerAppDataCreateOrUpdateItem`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct StripeItem {
    #[schema(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    id: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = SupportedAppType)]
    _kind: String,
    #[schema(pattern = "^cus_[A-Za-z0-9]{1,255}$")]
    stripe_customer_id: String,
    #[schema(pattern = "^(pm|card|src)_[A-Za-z0-9]{1,255}$")]
    stripe_default_payment_method_id: Option<String>,
}

async fn default_app(ctx: &Context, ns: &str, customer: &Customer) -> Result<App> {
    Ok(service::resolve_stripe_app(ctx, ns, customer, None)
        .await?
        .ok_or_else(|| no_app_error("id", Rule::Invalid, false))?)
}

#[utoipa::path(
    get,
    path = "/api/v1/customers/{customerIdOrKey}/stripe",
    operation_id = "getCustomerStripeAppData",
    summary = "Get customer Stripe app data",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerIdOrKey" = String, Path, min_length = 1, description = "The customer's id or key")),
    responses((status = 200, body = StripeCustomerAppData), (status = 400), (status = 404), (status = 503))
)]
async fn get_stripe(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
) -> Result<Json<StripeCustomerAppData>> {
    let customer = resolve(&state.ctx.store, &ns, &id_or_key).await?;
    let app = default_app(&state.ctx, &ns, &customer).await?;
    let data = state
        .ctx
        .store
        .get_customer_stripe(&ns, app.id, customer.id)
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "customer [{id_or_key}] has no Stripe data for app [{}]",
                app.id
            ))
        })?;
    Ok(Json(StripeCustomerAppData::new(data, app)))
}

#[utoipa::path(
    put,
    path = "/api/v1/customers/{customerIdOrKey}/stripe",
    operation_id = "upsertCustomerStripeAppData",
    summary = "Upsert customer Stripe app data",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerIdOrKey" = String, Path, min_length = 1, description = "The customer's id or key")),
    request_body = StripeBase,
    responses((status = 200, body = StripeCustomerAppData), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn put_stripe(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
    ApiJson(body): ApiJson<StripeBase>,
) -> Result<Json<StripeCustomerAppData>> {
    let customer = resolve(&state.ctx.store, &ns, &id_or_key).await?;
    customer.ensure_live()?;
    let app = default_app(&state.ctx, &ns, &customer).await?;
    let data = service::set_stripe_data(
        &state.ctx,
        &ns,
        &customer,
        &app,
        StripeDataInput {
            customer_id: Some(body.stripe_customer_id),
            default_payment_method_id: body.stripe_default_payment_method_id,
            labels: None,
        },
    )
    .await
    .map_err(|e| rename_fields(e, STRIPE_DATA_FIELDS))?;
    Ok(Json(StripeCustomerAppData::new(data, app)))
}

#[utoipa::path(
    get,
    path = "/api/v1/customers/{customerIdOrKey}/apps",
    operation_id = "listCustomerAppData",
    summary = "List customer app data",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerIdOrKey" = String, Path, min_length = 1, description = "The customer's id or key"), AppDataQuery),
    responses((status = 200, body = V1Page<StripeCustomerAppData>), (status = 400), (status = 404), (status = 503))
)]
async fn list_app_data(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
    ApiQuery(query): ApiQuery<AppDataQuery>,
) -> Result<Json<V1Page<StripeCustomerAppData>>> {
    let page = Page::of(query.page, query.page_size, V1_DEFAULT_SIZE);
    let kind_filter = query.kind.map(|k| k.0);
    let customer = resolve(&state.ctx.store, &ns, &id_or_key).await?;
    let mut items = Vec::new();
    if kind_filter.as_deref().is_none_or(|k| k == "stripe") {
        for data in state
            .ctx
            .store
            .list_customer_stripe(&ns, customer.id)
            .await?
        {
            if let Some(app) = state.ctx.store.get_app(&ns, data.app_id).await? {
                items.push(StripeCustomerAppData::new(data, app));
            }
        }
    }
    let total = items.len() as u64;
    let items = items
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.size).unwrap_or(usize::MAX))
        .collect();
    Ok(Json(V1Page::new(page, total, items)))
}

/// Upserts each item: Stripe is checked for every item first, then the rows
/// are written, so one bad item leaves everything unchanged.
#[utoipa::path(
    put,
    path = "/api/v1/customers/{customerIdOrKey}/apps",
    operation_id = "upsertCustomerAppData",
    summary = "Upsert customer app data",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerIdOrKey" = String, Path, min_length = 1, description = "The customer's id or key")),
    request_body = Vec<StripeItem>,
    responses((status = 200, body = Vec<StripeCustomerAppData>), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn put_app_data(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
    ApiJson(body): ApiJson<Vec<Value>>,
) -> Result<Json<Vec<StripeCustomerAppData>>> {
    let customer = resolve(&state.ctx.store, &ns, &id_or_key).await?;
    customer.ensure_live()?;
    let mut prepared = Vec::new();
    for (i, raw) in body.into_iter().enumerate() {
        let at = |e: Error| prefix_fields(e, &format!("[{i}]"));
        super::apps::discriminator(&raw, "type", V1_TYPES).map_err(at)?;
        let item: StripeItem = from_value(raw).map_err(at)?;
        let app = match &item.id {
            Some(id) => {
                let app_id = parse_ulid(id).map(crate::ids::AppId::from).ok_or_else(|| {
                    at(Error::field(
                        "id",
                        Rule::MatchesRegex,
                        format!("[{id}] is not a ULID"),
                    ))
                })?;
                state.ctx.store.live_app(&ns, app_id).await?
            }
            None => default_app(&state.ctx, &ns, &customer)
                .await
                .map_err(|e| V1Error(at(e.0)))?,
        };
        let row = service::prepare_stripe_data(
            &state.ctx,
            &ns,
            &customer,
            &app,
            StripeDataInput {
                customer_id: Some(item.stripe_customer_id),
                default_payment_method_id: item.stripe_default_payment_method_id,
                labels: None,
            },
        )
        .await
        .map_err(|e| at(rename_fields(e, STRIPE_DATA_FIELDS)))?;
        prepared.push((row, app));
    }
    let mut out = Vec::new();
    for (row, app) in prepared {
        let stored = state
            .ctx
            .store
            .upsert_customer_stripe(&ns, &row)
            .await
            .map_err(|e| rename_fields(service::name_conflict(e), STRIPE_DATA_FIELDS))?;
        out.push(StripeCustomerAppData::new(stored, app));
    }
    Ok(Json(out))
}

fn prefix_fields(err: Error, prefix: &str) -> Error {
    match err {
        Error::Invalid(errors) => Error::Invalid(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = if e.field == "body" {
                        prefix.to_owned()
                    } else {
                        format!("{prefix}.{}", e.field)
                    };
                    e
                })
                .collect(),
        ),
        other => other,
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/customers/{customerIdOrKey}/apps/{appId}",
    operation_id = "deleteCustomerAppData",
    summary = "Delete customer app data",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerIdOrKey" = String, Path, min_length = 1, description = "The customer's id or key"), ("appId" = inline(UlidParam), Path)),
    responses((status = 204), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn delete_app_data(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path((id_or_key, app_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let customer = resolve(&state.ctx.store, &ns, &id_or_key).await?;
    customer.ensure_live()?;
    let app_id: crate::ids::AppId = path_ulid("appId", &app_id)?;
    if !state
        .ctx
        .store
        .delete_customer_stripe(&ns, app_id, customer.id)
        .await?
    {
        return Err(Error::NotFound(format!(
            "customer [{id_or_key}] has no data for app [{app_id}]"
        ))
        .into());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `page`, `pageSize` and `type`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AppDataQuery {
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295u64)]
    page: Option<PageNumber>,
    #[serde(rename = "pageSize")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    page_size: Option<PageSize>,
    #[serde(rename = "type")]
    #[param(value_type = Option<V1AppType>, inline)]
    kind: Option<AppType>,
}

impl QueryParams for AppDataQuery {
    const KNOWN: &'static str = "page, pageSize or type";
}

/// One of the v1 app types.
#[derive(Debug)]
struct AppType(String);

impl<'de> Deserialize<'de> for AppType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if V1_TYPES.contains(&value.as_str()) {
            Ok(AppType(value))
        } else {
            Err(fault(
                Rule::Enum(V1_TYPES.iter().map(|s| (*s).to_owned()).collect()),
                format!("[{value}] is not an app type"),
            ))
        }
    }
}
