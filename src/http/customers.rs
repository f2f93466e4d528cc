//! v3 customers: `/api/v3/openmeter/customers…`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::{ApiJson, parse_ulid, path_ulid, query_error};
use super::openapi::{AddressBody, UlidParam};
use super::page::PaginatedMeta;
use super::page::{Page, PageExt, PageNumber, PageSize, V3_DEFAULT_SIZE};
use super::query::{ApiQuery, QueryParams, fault, fault_at};
use super::schema::{Currency, Email, Labels, SubjectKeys};
use super::tenancy::Namespace;
use crate::billing::customer::{Address, Customer, CustomerFields};
use crate::error::{FieldError, Result, Rule};
use crate::store::customers::{CustomerQuery, Direction, FilterField, SortField, StringFilter};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/customers", get(list).post(create))
        .route(
            "/customers/{customerId}",
            get(fetch).put(upsert).delete(remove),
        )
}

/// Shared by customers and the invoice's customer snapshot: one schema
/// component of this name (utoipa keeps only the last type registered under
/// a name, so a second `UsageAttribution` would replace this one's rules).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageAttribution {
    #[schema(value_type = SubjectKeys)]
    pub subject_keys: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerRequest {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(min_length = 1, max_length = 256)]
    pub key: String,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    pub labels: Option<BTreeMap<String, String>>,
    pub usage_attribution: Option<UsageAttribution>,
    #[schema(value_type = Option<Email>)]
    pub primary_email: Option<String>,
    #[schema(value_type = Option<Currency>)]
    pub currency: Option<String>,
    #[schema(value_type = Option<AddressBody>)]
    pub billing_address: Option<Address>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertCustomerRequest {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    pub labels: Option<BTreeMap<String, String>>,
    pub usage_attribution: Option<UsageAttribution>,
    #[schema(value_type = Option<Email>)]
    pub primary_email: Option<String>,
    #[schema(value_type = Option<Currency>)]
    pub currency: Option<String>,
    #[schema(value_type = Option<AddressBody>)]
    pub billing_address: Option<Address>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageAttributionBody {
    pub subject_keys: Vec<String>,
}

/// `BillingCustomer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingCustomer {
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
    pub key: String,
    pub usage_attribution: UsageAttributionBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AddressBody>)]
    pub billing_address: Option<Address>,
}

impl From<Customer> for BillingCustomer {
    fn from(c: Customer) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name,
            description: c.description,
            labels: c.labels,
            created_at: c.created_at,
            updated_at: c.updated_at,
            deleted_at: c.deleted_at,
            key: c.key,
            usage_attribution: UsageAttributionBody {
                subject_keys: c.subject_keys,
            },
            primary_email: c.primary_email,
            currency: c.currency.map(String::from),
            billing_address: c.billing_address,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    pub data: Vec<BillingCustomer>,
    pub meta: PaginatedMeta,
}

#[utoipa::path(
    post,
    path = "/api/v3/openmeter/customers",
    operation_id = "create-customer",
    summary = "Create customer",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    request_body = CreateCustomerRequest,
    responses((status = 201, body = BillingCustomer), (status = 400), (status = 409), (status = 503))
)]
async fn create(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiJson(body): ApiJson<CreateCustomerRequest>,
) -> Result<(StatusCode, Json<BillingCustomer>)> {
    let fields = CustomerFields {
        name: body.name,
        description: body.description,
        labels: body.labels,
        subject_keys: body.usage_attribution.map(|u| u.subject_keys),
        primary_email: body.primary_email,
        currency: body.currency,
        billing_address: body.billing_address,
    };
    let valid = fields.validate(Some(body.key))?;
    let customer = state.ctx.store.insert_customer(&ns, valid).await?;
    Ok((StatusCode::CREATED, Json(customer.into())))
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/customers/{customerId}",
    operation_id = "get-customer",
    summary = "Get customer",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    responses((status = 200, body = BillingCustomer), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<BillingCustomer>> {
    let id: crate::ids::CustomerId = path_ulid("customerId", &id)?;
    let customer = state.ctx.store.require_customer(&ns, id).await?;
    Ok(Json(customer.into()))
}

#[utoipa::path(
    put,
    path = "/api/v3/openmeter/customers/{customerId}",
    operation_id = "upsert-customer",
    summary = "Upsert customer",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    request_body = UpsertCustomerRequest,
    responses((status = 200, body = BillingCustomer), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn upsert(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpsertCustomerRequest>,
) -> Result<Json<BillingCustomer>> {
    let id: crate::ids::CustomerId = path_ulid("customerId", &id)?;
    let fields = CustomerFields {
        name: body.name,
        description: body.description,
        labels: body.labels,
        subject_keys: body.usage_attribution.map(|u| u.subject_keys),
        primary_email: body.primary_email,
        currency: body.currency,
        billing_address: body.billing_address,
    };
    let valid = fields.validate(None)?;
    let customer = state.ctx.store.update_customer(&ns, id, valid).await?;
    Ok(Json(customer.into()))
}

#[utoipa::path(
    delete,
    path = "/api/v3/openmeter/customers/{customerId}",
    operation_id = "delete-customer",
    summary = "Delete customer",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    responses((status = 204), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn remove(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: crate::ids::CustomerId = path_ulid("customerId", &id)?;
    state.ctx.store.delete_customer(&ns, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/customers",
    operation_id = "list-customers",
    summary = "List customers",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(
        ListQuery,
        ("filter[key]" = Option<String>, Query, description = "Customers whose key equals this (`filter[key][op]` for other operators)"),
        ("filter[name]" = Option<String>, Query, description = "Customers whose name equals this"),
        ("filter[primary_email]" = Option<String>, Query, description = "Customers whose primary email equals this"),
        ("filter[usage_attribution_subject_key]" = Option<String>, Query, description = "Customers with this subject key"),
    ),
    responses((status = 200, body = CustomerPage), (status = 400), (status = 503))
)]
async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<CustomerPage>> {
    let page = Page::of(query.number, query.size, V3_DEFAULT_SIZE);
    let query = CustomerQuery {
        page: page.number,
        size: page.size,
        sort: query
            .sort
            .map_or_else(|| vec![(SortField::Name, Direction::Asc)], |s| s.0),
        include_deleted: false,
        filters: query.filter.0,
    };
    let found = state.ctx.store.list_customers(&ns, &query).await?;
    Ok(Json(CustomerPage {
        data: found.items.into_iter().map(Into::into).collect(),
        meta: page.v3_meta(found.total),
    }))
}

/// `page[size]`, `page[number]`, `sort=name desc,created_at`, and
/// `filter[field]=v` / `filter[field][op]=v`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// 1-based page number (default 1).
    #[serde(rename = "page[number]")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 4294967295u64)]
    number: Option<PageNumber>,
    /// Items per page (default 20).
    #[serde(rename = "page[size]")]
    #[param(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    size: Option<PageSize>,
    /// `id`, `name` or `created_at`, each optionally followed by ` asc` or ` desc`, comma-separated.
    #[param(value_type = Option<String>, pattern = "^(id|name|created_at)( (asc|desc))?(,(id|name|created_at)( (asc|desc))?)*$")]
    sort: Option<Sort>,
    #[param(ignore)]
    filter: Filters,
}

impl QueryParams for ListQuery {
    const KNOWN: &'static str = "page[size], page[number], sort or filter[…]";
}

#[derive(Debug)]
struct Sort(Vec<(SortField, Direction)>);

impl<'de> Deserialize<'de> for Sort {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        parse_sort(&value)
            .map(Sort)
            .map_err(|e| fault(e.rule, e.reason))
    }
}

/// Every `filter[…]` parameter, by its whole name.
#[derive(Debug, Default)]
struct Filters(Vec<(FilterField, StringFilter)>);

impl<'de> Deserialize<'de> for Filters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Filters;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("filter[field] or filter[field][operator] parameters")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Filters, A::Error> {
                let mut filters = Vec::new();
                while let Some((name, value)) = map.next_entry::<String, String>()? {
                    filters.push(
                        parse_filter(&name, &value)
                            .map_err(|e| fault_at(&e.field, e.rule, e.reason))?,
                    );
                }
                Ok(Filters(filters))
            }
        }
        deserializer.deserialize_map(Each)
    }
}

fn parse_sort(value: &str) -> std::result::Result<Vec<(SortField, Direction)>, FieldError> {
    let choices = || vec!["id".to_owned(), "name".to_owned(), "created_at".to_owned()];
    let mut sort = Vec::new();
    for part in value.split(',') {
        let mut words = part.split_whitespace();
        let field = match words.next() {
            Some("id") => SortField::Id,
            Some("name") => SortField::Name,
            Some("created_at") => SortField::CreatedAt,
            other => {
                return Err(query_error(
                    "sort",
                    Rule::Enum(choices()),
                    format!(
                        "[{}] is not a sort attribute; use id, name or created_at, optionally followed by asc or desc",
                        other.unwrap_or("")
                    ),
                ));
            }
        };
        let direction = match words.next() {
            None | Some("asc") => Direction::Asc,
            Some("desc") => Direction::Desc,
            Some(other) => {
                return Err(query_error(
                    "sort",
                    Rule::Enum(vec!["asc".into(), "desc".into()]),
                    format!("[{other}] is not a sort order; use asc or desc"),
                ));
            }
        };
        if let Some(extra) = words.next() {
            return Err(query_error(
                "sort",
                Rule::Invalid,
                format!("unexpected [{extra}]"),
            ));
        }
        sort.push((field, direction));
    }
    Ok(sort)
}

fn parse_filter(
    name: &str,
    value: &str,
) -> std::result::Result<(FilterField, StringFilter), FieldError> {
    let inner = name.trim_start_matches("filter[");
    let (field_name, op) = match inner.split_once(']') {
        Some((field, "")) => (field, None),
        Some((field, rest)) if rest.starts_with('[') && rest.ends_with(']') => {
            (field, Some(&rest[1..rest.len() - 1]))
        }
        _ => {
            return Err(query_error(
                name,
                Rule::Invalid,
                "use filter[field]=value or filter[field][operator]=value",
            ));
        }
    };
    let field = match field_name {
        "key" => FilterField::Key,
        "name" => FilterField::Name,
        "primary_email" => FilterField::PrimaryEmail,
        "usage_attribution_subject_key" => FilterField::SubjectKey,
        "plan_key" => FilterField::PlanKey,
        "billing_profile_id" => FilterField::BillingProfileId,
        _ => {
            return Err(query_error(
                name,
                Rule::Enum(
                    [
                        "key",
                        "name",
                        "primary_email",
                        "usage_attribution_subject_key",
                        "plan_key",
                        "billing_profile_id",
                    ]
                    .map(String::from)
                    .to_vec(),
                ),
                format!("[{field_name}] is not a filterable field"),
            ));
        }
    };
    let list = || {
        value
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect::<Vec<_>>()
    };
    let filter = match op {
        None | Some("eq") => StringFilter::Eq(value.to_owned()),
        Some("neq") => StringFilter::Neq(value.to_owned()),
        Some("oeq") => StringFilter::OEq(list()),
        Some("contains") if field != FilterField::BillingProfileId => {
            StringFilter::Contains(value.to_owned())
        }
        Some("ocontains") if field != FilterField::BillingProfileId => {
            StringFilter::OContains(list())
        }
        Some("gt") if field != FilterField::BillingProfileId => StringFilter::Gt(value.to_owned()),
        Some("gte") if field != FilterField::BillingProfileId => {
            StringFilter::Gte(value.to_owned())
        }
        Some("lt") if field != FilterField::BillingProfileId => StringFilter::Lt(value.to_owned()),
        Some("lte") if field != FilterField::BillingProfileId => {
            StringFilter::Lte(value.to_owned())
        }
        Some("exists") if field != FilterField::BillingProfileId => match value {
            "true" => StringFilter::Exists(true),
            "false" => StringFilter::Exists(false),
            _ => return Err(query_error(name, Rule::Type, "must be true or false")),
        },
        Some(other) => {
            return Err(query_error(
                name,
                Rule::Invalid,
                format!("[{other}] is not a filter operator for {field_name}"),
            ));
        }
    };
    if field == FilterField::BillingProfileId {
        let values = match &filter {
            StringFilter::Eq(v) | StringFilter::Neq(v) => vec![v.clone()],
            StringFilter::OEq(vs) => vs.clone(),
            _ => Vec::new(),
        };
        if let Some(bad) = values.iter().find(|v| parse_ulid(v).is_none()) {
            return Err(query_error(
                name,
                Rule::MatchesRegex,
                format!("[{bad}] is not a ULID"),
            ));
        }
    }
    Ok((field, filter))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_takes_attributes_with_optional_directions() {
        assert_eq!(
            parse_sort("name desc,id").unwrap(),
            vec![
                (SortField::Name, Direction::Desc),
                (SortField::Id, Direction::Asc)
            ]
        );
        assert_eq!(
            parse_sort("created_at asc").unwrap(),
            vec![(SortField::CreatedAt, Direction::Asc)]
        );
    }

    #[test]
    fn sort_names_what_is_wrong() {
        let err = parse_sort("email").unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.rule.clone()),
            (
                "sort",
                Rule::Enum(vec!["id".into(), "name".into(), "created_at".into()])
            )
        );
        assert_eq!(
            parse_sort("name up").unwrap_err().reason,
            "[up] is not a sort order; use asc or desc"
        );
        assert_eq!(
            parse_sort("name asc now").unwrap_err().reason,
            "unexpected [now]"
        );
    }

    #[test]
    fn filters_by_field_and_operator() {
        assert_eq!(
            parse_filter("filter[name]", "Acme").unwrap(),
            (FilterField::Name, StringFilter::Eq("Acme".into()))
        );
        assert_eq!(
            parse_filter("filter[key][oeq]", "a, b").unwrap(),
            (
                FilterField::Key,
                StringFilter::OEq(vec!["a".into(), "b".into()])
            )
        );
        assert_eq!(
            parse_filter("filter[primary_email][exists]", "false").unwrap(),
            (FilterField::PrimaryEmail, StringFilter::Exists(false))
        );
    }

    #[test]
    fn filters_refuse_unknown_fields_and_operators_by_name() {
        let unknown = parse_filter("filter[color]", "red").unwrap_err();
        assert_eq!(unknown.field, "filter[color]");
        assert_eq!(unknown.reason, "[color] is not a filterable field");
        // A billing profile id only compares for equality.
        let op = parse_filter("filter[billing_profile_id][contains]", "01").unwrap_err();
        assert_eq!(op.field, "filter[billing_profile_id][contains]");
        let malformed = parse_filter("filter[name", "x").unwrap_err();
        assert_eq!(
            malformed.reason,
            "use filter[field]=value or filter[field][operator]=value"
        );
        assert_eq!(
            parse_filter("filter[name][exists]", "maybe")
                .unwrap_err()
                .rule,
            Rule::Type
        );
    }
}
