//! v3 billing profiles: `/api/v3/openmeter/profiles…`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, parse_ulid, path_ulid};
use super::openapi::UlidParam;
use super::page::{PageExt, V3Page, V3PageQuery};
use super::query::ApiQuery;
use super::schema::{Labels, NullOnly};
use super::schema_json::{PartySchemaV3, WorkflowSchemaV3};
use super::tenancy::Namespace;
use crate::billing::profile::{
    AppRefs, BillingProfile, Party, ProfileFields, Workflow, WorkflowInput, app_ref_error,
};
use crate::error::{Error, FieldError, Result, Rule, Violations};
use crate::ids::{AppId, ProfileId};
use crate::store::Store;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/profiles", get(list).post(create))
        .route("/profiles/{id}", get(fetch).put(upsert).delete(remove))
}

/// `BillingAppReference` in a request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppReferenceInput {
    #[schema(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    pub id: String,
}

/// `BillingProfileAppReferences` in a request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppReferencesInput {
    pub tax: AppReferenceInput,
    pub invoicing: AppReferenceInput,
    pub payment: AppReferenceInput,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBillingProfileRequest {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    pub labels: Option<BTreeMap<String, String>>,
    #[schema(value_type = PartySchemaV3)]
    pub supplier: Party,
    #[schema(value_type = WorkflowSchemaV3)]
    pub workflow: WorkflowInput,
    pub apps: AppReferencesInput,
    #[serde(rename = "default")]
    pub is_default: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertBillingProfileRequest {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    pub labels: Option<BTreeMap<String, String>>,
    #[schema(value_type = PartySchemaV3)]
    pub supplier: Party,
    #[schema(value_type = WorkflowSchemaV3)]
    pub workflow: WorkflowInput,
    #[serde(rename = "default")]
    pub is_default: bool,
    /// Not part of the upsert request: named in a clear refusal below
    /// rather than as just another unknown property (null reads as absent).
    #[schema(value_type = Option<NullOnly>)]
    pub apps: Option<IgnoredAny>,
}

/// `BillingAppReference`. (`deny_unknown_fields` only closes the schema:
/// a reference is not an expanded app, which v1's `oneOf` tells apart.)
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppReference {
    pub id: String,
}

/// `BillingProfileAppReferences`: the contract's `apps` member holds
/// references, not expanded apps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppReferences {
    pub tax: AppReference,
    pub invoicing: AppReference,
    pub payment: AppReference,
}

/// `BillingProfile`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BillingProfileBody {
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
    #[schema(value_type = PartySchemaV3)]
    pub supplier: Party,
    #[schema(value_type = WorkflowSchemaV3)]
    pub workflow: Workflow,
    pub apps: AppReferences,
    pub default: bool,
}

impl From<BillingProfile> for BillingProfileBody {
    fn from(p: BillingProfile) -> Self {
        let reference = |id: AppId| AppReference { id: id.to_string() };
        Self {
            id: p.id.to_string(),
            name: p.name,
            description: p.description,
            labels: p.labels,
            created_at: p.created_at,
            updated_at: p.updated_at,
            deleted_at: p.deleted_at,
            supplier: p.supplier,
            workflow: p.workflow,
            apps: AppReferences {
                tax: reference(p.tax_app_id),
                invoicing: reference(p.invoicing_app_id),
                payment: reference(p.payment_app_id),
            },
            default: p.is_default,
        }
    }
}

#[utoipa::path(
    post,
    path = "/api/v3/openmeter/profiles",
    operation_id = "create-billing-profile",
    summary = "Create billing profile",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    request_body = CreateBillingProfileRequest,
    responses((status = 201, body = BillingProfileBody), (status = 400), (status = 404), (status = 409), (status = 503))
)]
async fn create(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiJson(body): ApiJson<CreateBillingProfileRequest>,
) -> Result<(StatusCode, Json<BillingProfileBody>)> {
    let mut v = Violations::default();
    let valid = ProfileFields {
        name: body.name,
        description: body.description,
        labels: body.labels,
        supplier: body.supplier,
        workflow: body.workflow,
        is_default: body.is_default,
    }
    .check(&mut v, None);
    let apps = check_app_refs(&state.ctx.store, &ns, &mut v, &body.apps).await?;
    v.into_result()?;
    let apps = apps.ok_or_else(|| Error::Internal(anyhow::anyhow!("app references unchecked")))?;
    let profile = state.ctx.store.insert_profile(&ns, valid, apps).await?;
    Ok((StatusCode::CREATED, Json(profile.into())))
}

/// Parses the three references and checks each names a live app of the
/// namespace, reporting every bad one by its field (`apps.payment.id`).
pub async fn check_app_refs(
    store: &Store,
    namespace: &str,
    v: &mut Violations,
    refs: &AppReferencesInput,
) -> Result<Option<AppRefs>> {
    let mut ids = Vec::with_capacity(3);
    for (field, given) in [
        ("apps.tax.id", &refs.tax.id),
        ("apps.invoicing.id", &refs.invoicing.id),
        ("apps.payment.id", &refs.payment.id),
    ] {
        let Some(id) = parse_ulid(given).map(AppId::from) else {
            v.push(
                field,
                Rule::MatchesRegex,
                format!("[{given}] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)"),
            );
            ids.push(None);
            continue;
        };
        match store.live_app(namespace, id).await {
            Ok(_) => {}
            Err(Error::NotFound(_)) => push(v, app_ref_error(field, id, false)),
            Err(Error::Gone(_)) => push(v, app_ref_error(field, id, true)),
            Err(other) => return Err(other),
        }
        ids.push(Some(id));
    }
    Ok(match ids[..] {
        [Some(tax), Some(invoicing), Some(payment)] => Some(AppRefs {
            tax,
            invoicing,
            payment,
        }),
        _ => None,
    })
}

fn push(v: &mut Violations, e: FieldError) {
    v.push(e.field, e.rule, e.reason);
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/profiles/{id}",
    operation_id = "get-billing-profile",
    summary = "Get billing profile",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("id" = inline(UlidParam), Path)),
    responses((status = 200, body = BillingProfileBody), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<BillingProfileBody>> {
    let id: ProfileId = path_ulid("id", &id)?;
    let profile = state.ctx.store.require_profile(&ns, id).await?;
    Ok(Json(profile.into()))
}

#[utoipa::path(
    put,
    path = "/api/v3/openmeter/profiles/{id}",
    operation_id = "update-billing-profile",
    summary = "Update billing profile",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("id" = inline(UlidParam), Path)),
    request_body = UpsertBillingProfileRequest,
    responses((status = 200, body = BillingProfileBody), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn upsert(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpsertBillingProfileRequest>,
) -> Result<Json<BillingProfileBody>> {
    let id: ProfileId = path_ulid("id", &id)?;
    let current = state.ctx.store.require_profile(&ns, id).await?;
    current.ensure_live()?;
    let mut v = Violations::default();
    if body.apps.is_some() {
        v.push(
            "apps",
            Rule::UnknownProperty,
            "is not a known property of an update: a billing profile's apps are fixed when it is created; create another profile to use other apps",
        );
    }
    let valid = ProfileFields {
        name: body.name,
        description: body.description,
        labels: body.labels,
        supplier: body.supplier,
        workflow: body.workflow,
        is_default: body.is_default,
    }
    .check(&mut v, current.workflow.tax.default_tax_config.as_ref());
    if current.is_default && !body.is_default {
        push(&mut v, BillingProfile::cannot_unset_default(id));
    }
    v.into_result()?;
    let profile = state.ctx.store.update_profile(&ns, id, valid).await?;
    Ok(Json(profile.into()))
}

#[utoipa::path(
    delete,
    path = "/api/v3/openmeter/profiles/{id}",
    operation_id = "delete-billing-profile",
    summary = "Delete billing profile",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("id" = inline(UlidParam), Path)),
    responses((status = 204), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn remove(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: ProfileId = path_ulid("id", &id)?;
    state.ctx.store.delete_profile(&ns, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/profiles",
    operation_id = "list-billing-profiles",
    summary = "List billing profiles",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(V3PageQuery),
    responses((status = 200, body = V3Page<BillingProfileBody>), (status = 400), (status = 503))
)]
async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiQuery(query): ApiQuery<V3PageQuery>,
) -> Result<Json<V3Page<BillingProfileBody>>> {
    let page = query.page();
    let (profiles, total) = state.ctx.store.list_profiles(&ns, page).await?;
    Ok(Json(V3Page {
        data: profiles.into_iter().map(Into::into).collect(),
        meta: page.v3_meta(total),
    }))
}
