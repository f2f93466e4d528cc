//! v1 customers: `/api/v1/customers…`, the shapes the official OpenMeter SDKs
//! speak (camelCase, `customerIdOrKey`). The same table as v3.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Deserializer, Serialize};

use super::AppState;
use super::extract::{ApiJson, parse_ulid};
use super::page::{Page, PageExt, PageNumber, PageSize, V1_DEFAULT_SIZE};
use super::problem::V1Error;
use super::query::{ApiQuery, QueryParams, fault};
use super::schema::{Currency, Email, Labels, SubjectKeys, V1Order, schema_type, string_choices};
use super::tenancy::Namespace;
use crate::billing::customer::{Address, Customer, CustomerFields};
use crate::error::{Error, Rule};
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

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressV1 {
    /// ISO 3166-1 alpha-2 country code.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Z]{2}$")]
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

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageAttributionV1 {
    #[schema(value_type = SubjectKeys)]
    pub subject_keys: Vec<String>,
}

/// `CustomerCreate` and `CustomerReplaceUpdate` (the same fields). v1 does
/// not forbid unknown members, so read-only fields a client echoes back
/// (`id`, `createdAt`, …) are ignored rather than refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerInputV1 {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[schema(min_length = 1, max_length = 256)]
    pub key: Option<String>,
    pub usage_attribution: Option<UsageAttributionV1>,
    #[schema(value_type = Option<Email>)]
    pub primary_email: Option<String>,
    #[schema(value_type = Option<Currency>)]
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

/// `CustomerCreate`: [`CustomerInputV1`] with a key, or subject keys, or
/// both ([`create_customer_v1`] refuses a customer with neither).
pub struct CustomerCreateV1;

impl utoipa::PartialSchema for CustomerCreateV1 {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::Ref;
        use utoipa::openapi::schema::{
            AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder, Type,
        };
        let with_key = ObjectBuilder::new()
            .required("key")
            .property("key", ObjectBuilder::new().schema_type(Type::String));
        let with_subjects = ObjectBuilder::new().required("usageAttribution").property(
            "usageAttribution",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .required("subjectKeys")
                .property("subjectKeys", ArrayBuilder::new().min_items(Some(1))),
        );
        AllOfBuilder::new()
            .item(Ref::from_schema_name("CustomerInputV1"))
            .item(AnyOfBuilder::new().item(with_key).item(with_subjects))
            .into()
    }
}

impl utoipa::ToSchema for CustomerCreateV1 {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((
            CustomerInputV1::name().into_owned(),
            CustomerInputV1::schema(),
        ));
        CustomerInputV1::schemas(schemas);
    }
}

/// The v1 `Customer`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerPageV1 {
    pub total_count: u64,
    pub page: u64,
    pub page_size: u64,
    pub items: Vec<CustomerV1>,
}

/// Finds a customer by ULID or, failing that, by key (a key may look like a ULID).
pub async fn resolve(store: &Store, ns: &str, id_or_key: &str) -> Result<Customer> {
    if let Some(id) = parse_ulid(id_or_key).map(crate::ids::CustomerId::from)
        && let Some(customer) = store.get_customer(ns, id).await?
    {
        return Ok(customer);
    }
    store
        .get_customer_by_key(ns, id_or_key)
        .await?
        .ok_or_else(|| Error::not_found("customer", id_or_key).into())
}

#[utoipa::path(
    post,
    path = "/api/v1/customers",
    operation_id = "createCustomer",
    summary = "Create customer",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    request_body = CustomerCreateV1,
    responses((status = 201, body = CustomerV1), (status = 400), (status = 409), (status = 503))
)]
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

#[utoipa::path(
    get,
    path = "/api/v1/customers/{customerIdOrKey}",
    operation_id = "getCustomer",
    summary = "Get customer",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerIdOrKey" = String, Path, min_length = 1, description = "The customer's id or key"), ExpandQuery),
    responses((status = 200, body = CustomerV1), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
    ApiQuery(query): ApiQuery<ExpandQuery>,
) -> Result<Json<CustomerV1>> {
    let expand = query.expand.is_some();
    let mut customer: CustomerV1 = resolve(&state.ctx.store, &ns, &id_or_key).await?.into();
    if expand {
        customer.subscriptions = Some(Vec::new());
    }
    Ok(Json(customer))
}

#[utoipa::path(
    put,
    path = "/api/v1/customers/{customerIdOrKey}",
    operation_id = "updateCustomer",
    summary = "Update customer",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerIdOrKey" = String, Path, min_length = 1, description = "The customer's id or key")),
    request_body = CustomerInputV1,
    responses((status = 200, body = CustomerV1), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
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

#[utoipa::path(
    delete,
    path = "/api/v1/customers/{customerIdOrKey}",
    operation_id = "deleteCustomer",
    summary = "Delete customer",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerIdOrKey" = String, Path, min_length = 1, description = "The customer's id or key")),
    responses((status = 204), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn remove(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id_or_key): Path<String>,
) -> Result<StatusCode> {
    let existing = resolve(&state.ctx.store, &ns, &id_or_key).await?;
    state.ctx.store.delete_customer(&ns, existing.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/customers",
    operation_id = "listCustomers",
    summary = "List customers",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = CustomerPageV1), (status = 400), (status = 503))
)]
async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiQuery(params): ApiQuery<ListQuery>,
) -> Result<Json<CustomerPageV1>> {
    let page = Page::of(params.page, params.page_size, V1_DEFAULT_SIZE);
    let contains = |field, value: Option<String>| value.map(|v| (field, StringFilter::Contains(v)));
    let filters = [
        contains(FilterField::Key, params.key),
        contains(FilterField::Name, params.name),
        contains(FilterField::PrimaryEmail, params.primary_email),
        contains(FilterField::SubjectKey, params.subject),
        params
            .plan_key
            .map(|v| (FilterField::PlanKey, StringFilter::Eq(v))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let query = CustomerQuery {
        page: page.number,
        size: page.size,
        sort: vec![(
            params.order_by.map_or(SortField::Name, |o| o.0),
            params.order.map_or(Direction::Asc, |o| o.0),
        )],
        include_deleted: params.include_deleted.unwrap_or(false),
        filters,
    };
    let expand = params.expand.is_some();
    let found = state.ctx.store.list_customers(&ns, &query).await?;
    Ok(Json(CustomerPageV1 {
        total_count: found.total,
        page: query.page,
        page_size: query.size,
        items: found
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

/// `expand=subscriptions` only.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExpandQuery {
    #[param(value_type = Option<CustomerExpand>, inline)]
    expand: Option<Expand>,
}

impl QueryParams for ExpandQuery {}

/// `listCustomers`' parameters.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
struct ListQuery {
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295u64)]
    page: Option<PageNumber>,
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    page_size: Option<PageSize>,
    #[param(value_type = Option<V1Order>, inline)]
    order: Option<Order>,
    #[param(value_type = Option<CustomerOrderBy>, inline)]
    order_by: Option<OrderBy>,
    include_deleted: Option<bool>,
    key: Option<String>,
    name: Option<String>,
    primary_email: Option<String>,
    subject: Option<String>,
    plan_key: Option<String>,
    #[param(value_type = Option<CustomerExpand>, inline)]
    expand: Option<Expand>,
}

impl QueryParams for ListQuery {}

schema_type!(
    /// `listCustomers`' sort fields.
    CustomerOrderBy => string_choices(ORDER_BY.iter().map(|(name, _)| *name))
);

schema_type!(
    /// The customer expansions.
    CustomerExpand => string_choices(["subscriptions"])
);

/// `orderBy`'s choices.
const ORDER_BY: [(&str, SortField); 3] = [
    ("id", SortField::Id),
    ("name", SortField::Name),
    ("createdAt", SortField::CreatedAt),
];

/// The only expansion: `subscriptions`.
#[derive(Debug)]
struct Expand;

impl<'de> Deserialize<'de> for Expand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "subscriptions" => Ok(Expand),
            value => Err(fault(
                Rule::Enum(vec!["subscriptions".into()]),
                format!("[{value}] cannot be expanded; the only choice is subscriptions"),
            )),
        }
    }
}

#[derive(Debug)]
struct Order(Direction);

impl<'de> Deserialize<'de> for Order {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "ASC" | "asc" => Ok(Order(Direction::Asc)),
            "DESC" | "desc" => Ok(Order(Direction::Desc)),
            value => Err(fault(
                Rule::Enum(vec!["ASC".into(), "DESC".into()]),
                format!("[{value}] is not an order; use ASC or DESC"),
            )),
        }
    }
}

#[derive(Debug)]
struct OrderBy(SortField);

impl<'de> Deserialize<'de> for OrderBy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        match ORDER_BY.iter().find(|(name, _)| *name == value) {
            Some((_, field)) => Ok(OrderBy(*field)),
            None => Err(fault(
                Rule::Enum(
                    ORDER_BY
                        .iter()
                        .map(|(name, _)| (*name).to_owned())
                        .collect(),
                ),
                format!("[{value}] is not a sort field; use id, name or createdAt"),
            )),
        }
    }
}
