//! v1 customers: `/api/v1/customers…`, the shapes the official OpenMeter SDKs
//! speak (camelCase, `customerIdOrKey`). The same table as v3.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, parse_ulid, query_error, query_int, query_pairs};
use super::problem::V1Error;
use super::tenancy::Namespace;
use crate::billing::customer::{Address, Customer, CustomerFields};
use crate::error::{Error, FieldError, Rule};
use crate::service::Context;
use crate::store::Store;
use crate::store::customers::{CustomerQuery, Direction, FilterField, SortField, StringFilter};

type Result<T> = std::result::Result<T, V1Error>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers", get(list).post(create))
        .route(
            "/customers/{customerIdOrKey}",
            get(fetch).put(replace).delete(remove),
        )
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressV1 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

impl From<AddressV1> for Address {
    fn from(a: AddressV1) -> Self {
        Address {
            country: a.country,
            postal_code: a.postal_code,
            state: a.state,
            city: a.city,
            line1: a.line1,
            line2: a.line2,
            phone_number: a.phone_number,
        }
    }
}

impl From<Address> for AddressV1 {
    fn from(a: Address) -> Self {
        AddressV1 {
            country: a.country,
            postal_code: a.postal_code,
            state: a.state,
            city: a.city,
            line1: a.line1,
            line2: a.line2,
            phone_number: a.phone_number,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageAttributionV1 {
    pub subject_keys: Vec<String>,
}

/// `CustomerCreate` and `CustomerReplaceUpdate` (the same fields). v1 does
/// not forbid unknown members, so read-only fields a client echoes back
/// (`id`, `createdAt`, …) are ignored rather than refused.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerInputV1 {
    pub name: String,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub key: Option<String>,
    pub usage_attribution: Option<UsageAttributionV1>,
    pub primary_email: Option<String>,
    pub currency: Option<String>,
    pub billing_address: Option<AddressV1>,
}

impl CustomerInputV1 {
    fn into_fields(self) -> (Option<String>, CustomerFields) {
        (
            self.key,
            CustomerFields {
                name: self.name,
                description: self.description,
                labels: self.metadata,
                subject_keys: self.usage_attribution.map(|u| u.subject_keys),
                primary_email: self.primary_email,
                currency: self.currency,
                billing_address: self.billing_address.map(Into::into),
            },
        )
    }
}

/// The v1 `Customer`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerV1 {
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
    pub key: String,
    pub usage_attribution: UsageAttributionV1,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<AddressV1>,
    /// Only with `expand=subscriptions`; meterpay keeps no subscriptions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<Vec<serde_json::Value>>,
}

impl From<Customer> for CustomerV1 {
    fn from(c: Customer) -> Self {
        CustomerV1 {
            id: c.id.to_string(),
            name: c.name,
            description: c.description,
            metadata: c.labels,
            created_at: c.created_at,
            updated_at: c.updated_at,
            deleted_at: c.deleted_at,
            key: c.key,
            usage_attribution: UsageAttributionV1 {
                subject_keys: c.subject_keys,
            },
            primary_email: c.primary_email,
            currency: c.currency.map(String::from),
            billing_address: c.billing_address.map(Into::into),
            subscriptions: None,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerPageV1 {
    pub total_count: u64,
    pub page: u64,
    pub page_size: u64,
    pub items: Vec<CustomerV1>,
}

/// Finds a customer by ULID or, failing that, by key (a key may look like a ULID).
pub async fn resolve(store: &Store, ns: &str, id_or_key: &str) -> Result<Customer> {
    if let Some(id) = parse_ulid(id_or_key)
        && let Some(customer) = store.get_customer(ns, id).await?
    {
        return Ok(customer);
    }
    store
        .get_customer_by_key(ns, id_or_key)
        .await?
        .ok_or_else(|| Error::not_found("customer", id_or_key).into())
}

async fn create(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiJson(body): ApiJson<CustomerInputV1>,
) -> Result<(StatusCode, Json<CustomerV1>)> {
    let customer = create_customer_v1(&state.ctx, &ns, body).await?;
    Ok((StatusCode::CREATED, Json(customer.into())))
}

/// Creates a customer from its v1 shape (also used by the v1 checkout's inline customer).
pub async fn create_customer_v1(
    ctx: &Context,
    ns: &str,
    body: CustomerInputV1,
) -> Result<Customer> {
    let has_subjects = body
        .usage_attribution
        .as_ref()
        .is_some_and(|u| !u.subject_keys.is_empty());
    if body.key.is_none() && !has_subjects {
        return Err(Error::field(
            "key",
            Rule::Required,
            "either key or usageAttribution.subjectKeys must be provided",
        )
        .into());
    }
    let (key, fields) = body.into_fields();
    Ok(ctx.store.insert_customer(ns, fields.validate(key)?).await?)
}

async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<CustomerV1>> {
    let expand = parse_expand_only(raw.as_deref())?;
    let mut customer: CustomerV1 = resolve(&state.ctx.store, &ns, &id_or_key).await?.into();
    if expand {
        customer.subscriptions = Some(Vec::new());
    }
    Ok(Json(customer))
}

async fn replace(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
    ApiJson(body): ApiJson<CustomerInputV1>,
) -> Result<Json<CustomerV1>> {
    let existing = resolve(&state.ctx.store, &ns, &id_or_key).await?;
    existing.ensure_live()?;
    let (key, fields) = body.into_fields();
    let customer = state
        .ctx
        .store
        .update_customer(&ns, existing.id, fields.validate(key)?)
        .await?;
    Ok(Json(customer.into()))
}

async fn remove(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
) -> Result<StatusCode> {
    let existing = resolve(&state.ctx.store, &ns, &id_or_key).await?;
    state.ctx.store.delete_customer(&ns, existing.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub const DEFAULT_PAGE_SIZE: u64 = 100;
pub const MAX_PAGE_SIZE: u64 = 1000;

async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    RawQuery(raw): RawQuery,
) -> Result<Json<CustomerPageV1>> {
    let (query, expand) = parse_list_query(raw.as_deref())?;
    let page = state.ctx.store.list_customers(&ns, &query).await?;
    Ok(Json(CustomerPageV1 {
        total_count: page.total,
        page: query.page,
        page_size: query.size,
        items: page
            .items
            .into_iter()
            .map(|c| {
                let mut c = CustomerV1::from(c);
                if expand {
                    c.subscriptions = Some(Vec::new());
                }
                c
            })
            .collect(),
    }))
}

fn expand_value(name: &str, value: &str) -> std::result::Result<bool, FieldError> {
    match value {
        "subscriptions" => Ok(true),
        _ => Err(query_error(
            name,
            Rule::Enum(vec!["subscriptions".into()]),
            format!("[{value}] cannot be expanded; the only choice is subscriptions"),
        )),
    }
}

fn parse_expand_only(raw: Option<&str>) -> std::result::Result<bool, Error> {
    let mut expand = false;
    let mut errors = Vec::new();
    for (name, value) in query_pairs(raw) {
        let outcome = match name.as_str() {
            "expand" => expand_value(&name, &value).map(|e| expand |= e),
            _ => Err(query_error(
                &name,
                Rule::UnknownProperty,
                "is not a known query parameter",
            )),
        };
        if let Err(e) = outcome {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(expand)
    } else {
        Err(Error::Invalid(errors))
    }
}

fn parse_list_query(raw: Option<&str>) -> std::result::Result<(CustomerQuery, bool), Error> {
    let mut q = CustomerQuery {
        page: 1,
        size: DEFAULT_PAGE_SIZE,
        sort: vec![(SortField::Name, Direction::Asc)],
        include_deleted: false,
        filters: Vec::new(),
    };
    let mut direction = Direction::Asc;
    let mut field = SortField::Name;
    let mut expand = false;
    let mut errors = Vec::new();
    for (name, value) in query_pairs(raw) {
        let contains = |f: FilterField| (f, StringFilter::Contains(value.clone()));
        let outcome: std::result::Result<(), FieldError> = match name.as_str() {
            "page" => query_int(&name, &value, 1, u64::from(u32::MAX)).map(|n| q.page = n),
            "pageSize" => query_int(&name, &value, 1, MAX_PAGE_SIZE).map(|n| q.size = n),
            "order" => match value.as_str() {
                "ASC" | "asc" => Ok(Direction::Asc),
                "DESC" | "desc" => Ok(Direction::Desc),
                _ => Err(query_error(
                    &name,
                    Rule::Enum(vec!["ASC".into(), "DESC".into()]),
                    format!("[{value}] is not an order; use ASC or DESC"),
                )),
            }
            .map(|d| direction = d),
            "orderBy" => match value.as_str() {
                "id" => Ok(SortField::Id),
                "name" => Ok(SortField::Name),
                "createdAt" => Ok(SortField::CreatedAt),
                _ => Err(query_error(
                    &name,
                    Rule::Enum(vec!["id".into(), "name".into(), "createdAt".into()]),
                    format!("[{value}] is not a sort field; use id, name or createdAt"),
                )),
            }
            .map(|f| field = f),
            "includeDeleted" => match value.as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(query_error(&name, Rule::Type, "must be true or false")),
            }
            .map(|b| q.include_deleted = b),
            "key" | "name" | "primaryEmail" | "subject" => {
                let filter = match name.as_str() {
                    "key" => FilterField::Key,
                    "name" => FilterField::Name,
                    "primaryEmail" => FilterField::PrimaryEmail,
                    _ => FilterField::SubjectKey,
                };
                q.filters.push(contains(filter));
                Ok(())
            }
            "planKey" => {
                q.filters
                    .push((FilterField::PlanKey, StringFilter::Eq(value.clone())));
                Ok(())
            }
            "expand" => expand_value(&name, &value).map(|e| expand |= e),
            _ => Err(query_error(
                &name,
                Rule::UnknownProperty,
                "is not a known query parameter",
            )),
        };
        if let Err(e) = outcome {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    q.sort = vec![(field, direction)];
    Ok((q, expand))
}
