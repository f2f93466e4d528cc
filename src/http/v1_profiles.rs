//! v1 billing profiles and customer overrides: `/api/v1/billing/profiles…`
//! and `/api/v1/billing/customers…`, the shapes the official OpenMeter SDKs
//! speak. The same store and rules as v3 (`profiles.rs`,
//! `customer_billing.rs`); only the shapes differ:
//!
//! - v1 keeps `dueAfter` (and the default tax config) under the invoicing
//!   settings; meterpay keeps a due period only with `send_invoice`, so with
//!   `charge_automatically` `dueAfter` reads as the contract's default `P30D`
//!   and another value is refused (400) rather than dropped.
//! - A customer override is the customer's pinned billing profile (v3's
//!   `billing_profile` of the customer's billing data); meterpay has no
//!   per-customer workflow overrides, so an override without a profile is
//!   no override: `PUT` without `billingProfileId` clears the pin.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, parse_ulid, path_ulid, query_bool, query_error, query_int};
use super::openapi::UlidParam;
use super::page::{MAX_SIZE, V1_DEFAULT_SIZE, V1Page};
use super::problem::V1Error;
use super::profiles::{AppReferenceInput, AppReferences, AppReferencesInput, check_app_refs};
use super::schema::{
    Labels, OverrideExpand, OverrideOrderBy, ProfileExpand, ProfileOrderBy, UlidList, V1Order,
};
use super::schema_json::{PartySchemaV1, WorkflowSchemaV1};
use super::tenancy::Namespace;
use super::v1_apps::StripeAppV1;
use super::v1_customers::{AddressV1, CustomerV1};
use super::v1_names::{PROFILE_FIELDS, rename_fields};
use crate::billing::customer::Customer;
use crate::billing::profile::{
    Alignment, AlignmentInput, AlignmentKind, BillingProfile, CollectionInput, CollectionMethod,
    DEFAULT_DUE_AFTER, ExternalInvoicingTaxConfig, InvoicingInput, Party, PartyAddresses,
    PaymentInput, PaymentSettings, ProfileFields, ProrationMode, RecurringPeriodInput,
    StripeTaxConfig, TaxBehavior, TaxConfig, TaxIdentity, TaxInput, Workflow, WorkflowInput,
};
use crate::error::{Error, FieldError, Rule, Violations};
use crate::ids::{AppId, CustomerId, ProfileId};
use crate::service::customer_billing::check_profile;
use crate::store::Page;
use crate::store::Store;
use crate::store::customers::{CustomerQuery, Direction, FilterField, SortField, StringFilter};
use crate::store::profiles::{ProfileOrder, ProfileQuery};

type Result<T> = std::result::Result<T, V1Error>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/billing/profiles", get(list).post(create))
        .route(
            "/billing/profiles/{id}",
            get(fetch).put(update).delete(remove),
        )
        .route("/billing/customers", get(list_overrides))
        .route(
            "/billing/customers/{customerId}",
            get(get_override)
                .put(upsert_override)
                .delete(delete_override),
        )
}

/// A v3 error with its fields named as v1 names them.
fn v1(err: Error) -> V1Error {
    V1Error(rename_fields(err, PROFILE_FIELDS))
}

// ---------------------------------------------------------------------------
// Shapes

/// `BillingParty` (v1: `taxId`, `addresses` as a list of at most one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartyV1 {
    /// Read-only: accepted and ignored.
    #[serde(default, skip_serializing)]
    pub id: Option<IgnoredAny>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub tax_id: Option<TaxIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<AddressV1>>,
}

impl From<Party> for PartyV1 {
    fn from(p: Party) -> Self {
        PartyV1 {
            id: None,
            key: p.key,
            name: p.name,
            tax_id: p.tax_id,
            addresses: p
                .addresses
                .map(|a| vec![AddressV1::from(a.billing_address)]),
        }
    }
}

impl PartyV1 {
    pub fn into_party(self, v: &mut Violations) -> Party {
        let addresses = match self.addresses {
            None => None,
            Some(list) if list.len() > 1 => {
                v.push(
                    "supplier.addresses",
                    Rule::MaxItems(1),
                    "holds at most one address (the billing address)",
                );
                None
            }
            Some(list) => list.into_iter().next().map(|a| PartyAddresses {
                billing_address: a.into(),
            }),
        };
        Party {
            id: None,
            key: self.key,
            name: self.name,
            tax_id: self.tax_id,
            addresses,
        }
    }
}

/// `TaxConfig` (v1: `customInvoicing`, `taxCodeId`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaxConfigV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub behavior: Option<TaxBehavior>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub stripe: Option<StripeTaxConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub custom_invoicing: Option<ExternalInvoicingTaxConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code_id: Option<String>,
}

impl From<TaxConfig> for TaxConfigV1 {
    fn from(c: TaxConfig) -> Self {
        TaxConfigV1 {
            behavior: c.behavior,
            stripe: c.stripe,
            custom_invoicing: c.external_invoicing,
            tax_code_id: c.tax_code_id,
        }
    }
}

/// `BillingWorkflow` as returned, every default filled in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowV1 {
    pub collection: CollectionV1,
    pub invoicing: InvoicingV1,
    pub payment: PaymentV1,
    pub tax: TaxV1,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionV1 {
    pub alignment: AlignmentV1,
    pub interval: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AlignmentV1 {
    Subscription,
    Anchored {
        #[serde(rename = "recurringPeriod")]
        recurring_period: RecurringPeriodV1,
    },
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecurringPeriodV1 {
    pub interval: String,
    #[serde(with = "crate::timestamp::serde")]
    pub anchor: time::OffsetDateTime,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoicingV1 {
    pub auto_advance: bool,
    pub draft_period: String,
    pub due_after: String,
    pub progressive_billing: bool,
    #[schema(value_type = ProrationModeV1)]
    pub subscription_end_proration_mode: ProrationMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_tax_config: Option<TaxConfigV1>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentV1 {
    pub collection_method: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaxV1 {
    pub enabled: bool,
    pub enforced: bool,
}

impl From<Workflow> for WorkflowV1 {
    fn from(w: Workflow) -> Self {
        let (collection_method, due_after) = match w.payment {
            PaymentSettings::ChargeAutomatically => {
                ("charge_automatically", DEFAULT_DUE_AFTER.to_owned())
            }
            PaymentSettings::SendInvoice { due_after } => ("send_invoice", due_after),
        };
        WorkflowV1 {
            collection: CollectionV1 {
                alignment: match w.collection.alignment {
                    Alignment::Subscription => AlignmentV1::Subscription,
                    Alignment::Anchored { recurring_period } => AlignmentV1::Anchored {
                        recurring_period: RecurringPeriodV1 {
                            interval: recurring_period.interval,
                            anchor: recurring_period.anchor,
                        },
                    },
                },
                interval: w.collection.interval,
            },
            invoicing: InvoicingV1 {
                auto_advance: w.invoicing.auto_advance,
                draft_period: w.invoicing.draft_period,
                due_after,
                progressive_billing: w.invoicing.progressive_billing,
                subscription_end_proration_mode: w.invoicing.subscription_end_proration_mode,
                default_tax_config: w.tax.default_tax_config.map(Into::into),
            },
            payment: PaymentV1 { collection_method },
            tax: TaxV1 {
                enabled: w.tax.enabled,
                enforced: w.tax.enforced,
            },
        }
    }
}

/// `BillingWorkflowCreate` / `BillingWorkflow` in a request: every member optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowInputV1 {
    pub collection: Option<CollectionInputV1>,
    pub invoicing: Option<InvoicingInputV1>,
    pub payment: Option<PaymentInputV1>,
    pub tax: Option<TaxInputV1>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CollectionInputV1 {
    pub alignment: Option<AlignmentInputV1>,
    pub interval: Option<String>,
}

/// `subscriptionEndProrationMode`'s values, for the document (the domain's
/// `ProrationMode` serialises to exactly these).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "snake_case")]
pub enum ProrationModeV1 {
    BillFullPeriod,
    BillActualPeriod,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlignmentInputV1 {
    #[serde(rename = "type")]
    #[schema(value_type = Value)]
    pub kind: AlignmentKind,
    pub recurring_period: Option<RecurringPeriodInputV1>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RecurringPeriodInputV1 {
    pub interval: String,
    pub anchor: String,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoicingInputV1 {
    pub auto_advance: Option<bool>,
    pub draft_period: Option<String>,
    pub due_after: Option<String>,
    pub progressive_billing: Option<bool>,
    #[schema(value_type = Option<Value>)]
    pub subscription_end_proration_mode: Option<ProrationMode>,
    pub default_tax_config: Option<TaxConfigV1>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentInputV1 {
    #[schema(value_type = Option<Value>)]
    pub collection_method: Option<CollectionMethod>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TaxInputV1 {
    pub enabled: Option<bool>,
    pub enforced: Option<bool>,
}

/// `RecurringPeriodInterval` also takes `DAY`, `WEEK`, `MONTH`, `YEAR`.
fn period_interval(given: String) -> String {
    match given.as_str() {
        "DAY" => "P1D".to_owned(),
        "WEEK" => "P1W".to_owned(),
        "MONTH" => "P1M".to_owned(),
        "YEAR" => "P1Y".to_owned(),
        _ => given,
    }
}

impl WorkflowInputV1 {
    /// The v3 request shape; `dueAfter` without `send_invoice` is checked here.
    fn into_v3(self, v: &mut Violations) -> WorkflowInput {
        let invoicing = self.invoicing.unwrap_or_default();
        let method = self.payment.and_then(|p| p.collection_method);
        let payment = match (method, invoicing.due_after) {
            (None, None) => None,
            (Some(CollectionMethod::SendInvoice), due_after) => Some(PaymentInput {
                collection_method: CollectionMethod::SendInvoice,
                due_after,
            }),
            (method, due_after) => {
                if let Some(due_after) = due_after
                    && due_after != DEFAULT_DUE_AFTER
                {
                    v.push(
                        "workflow.invoicing.dueAfter",
                        Rule::Invalid,
                        format!(
                            "[{due_after}] applies only with collectionMethod send_invoice; \
                             with charge_automatically meterpay keeps no due period \
                             (leave it out or give {DEFAULT_DUE_AFTER})"
                        ),
                    );
                }
                method.map(|collection_method| PaymentInput {
                    collection_method,
                    due_after: None,
                })
            }
        };
        WorkflowInput {
            collection: self.collection.map(|c| CollectionInput {
                alignment: c.alignment.map(|a| AlignmentInput {
                    kind: a.kind,
                    recurring_period: a.recurring_period.map(|p| RecurringPeriodInput {
                        anchor: p.anchor,
                        interval: period_interval(p.interval),
                    }),
                }),
                interval: c.interval,
            }),
            invoicing: Some(InvoicingInput {
                auto_advance: invoicing.auto_advance,
                draft_period: invoicing.draft_period,
                progressive_billing: invoicing.progressive_billing,
                subscription_end_proration_mode: invoicing.subscription_end_proration_mode,
            }),
            payment,
            tax: Some(TaxInput {
                enabled: self.tax.as_ref().and_then(|t| t.enabled),
                enforced: self.tax.as_ref().and_then(|t| t.enforced),
                default_tax_config: invoicing.default_tax_config.map(|c| TaxConfig {
                    behavior: c.behavior,
                    stripe: c.stripe,
                    external_invoicing: c.custom_invoicing,
                    tax_code_id: c.tax_code_id,
                    tax_code: None,
                }),
            }),
        }
    }
}

/// `BillingProfileAppsCreate`: app ids.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AppsCreateV1 {
    #[schema(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    pub tax: String,
    #[schema(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    pub invoicing: String,
    #[schema(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    pub payment: String,
}

/// `BillingProfileCreate`. Like every v1 request, unknown members are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateProfileV1 {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[schema(value_type = PartySchemaV1)]
    pub supplier: PartyV1,
    #[serde(rename = "default")]
    pub is_default: bool,
    #[schema(value_type = WorkflowSchemaV1)]
    pub workflow: WorkflowInputV1,
    pub apps: AppsCreateV1,
}

/// `BillingProfileReplaceUpdateWithWorkflow`. `apps` is not part of it; a
/// client that echoes a profile back may send it, and is refused only if it
/// names other apps than the profile's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProfileV1 {
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    pub metadata: Option<BTreeMap<String, String>>,
    #[schema(value_type = PartySchemaV1)]
    pub supplier: PartyV1,
    #[serde(rename = "default")]
    pub is_default: bool,
    #[schema(value_type = WorkflowSchemaV1)]
    pub workflow: WorkflowInputV1,
    pub apps: Option<serde_json::Value>,
}

/// `BillingProfileAppsOrReference`: references, or the apps with `expand=apps`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AppsV1 {
    References(AppReferences),
    Expanded {
        tax: Box<StripeAppV1>,
        invoicing: Box<StripeAppV1>,
        payment: Box<StripeAppV1>,
    },
}

/// `BillingProfile`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillingProfileV1 {
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
    pub supplier: PartyV1,
    pub workflow: WorkflowV1,
    pub apps: AppsV1,
    pub default: bool,
}

/// `BillingCustomerProfile`: the values a customer bills with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerProfileV1 {
    pub supplier: PartyV1,
    pub workflow: WorkflowV1,
    pub apps: AppsV1,
}

/// `BillingProfileCustomerOverride`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideV1 {
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub updated_at: time::OffsetDateTime,
    pub billing_profile_id: String,
    pub customer_id: String,
}

/// `BillingProfileCustomerOverrideWithDetails`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideWithDetailsV1 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_override: Option<OverrideV1>,
    pub base_billing_profile_id: String,
    pub customer_profile: CustomerProfileV1,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerV1>,
}

/// `BillingProfileCustomerOverrideCreate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverrideCreateV1 {
    #[schema(pattern = "^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")]
    pub billing_profile_id: Option<String>,
}

// ---------------------------------------------------------------------------
// Rendering, with the apps and profiles a response needs read once.

struct Renderer<'a> {
    store: &'a Store,
    ns: &'a str,
    expand_apps: bool,
    apps: HashMap<AppId, StripeAppV1Source>,
    profiles: HashMap<ProfileId, BillingProfile>,
}

type StripeAppV1Source = crate::billing::app::App;

impl<'a> Renderer<'a> {
    fn new(store: &'a Store, ns: &'a str, expand_apps: bool) -> Self {
        Renderer {
            store,
            ns,
            expand_apps,
            apps: HashMap::new(),
            profiles: HashMap::new(),
        }
    }

    async fn app(&mut self, id: AppId) -> std::result::Result<StripeAppV1, Error> {
        if !self.apps.contains_key(&id) {
            let app = self.store.require_app(self.ns, id).await?;
            self.apps.insert(id, app);
        }
        Ok(self.apps[&id].clone().into())
    }

    async fn apps(&mut self, p: &BillingProfile) -> std::result::Result<AppsV1, Error> {
        if !self.expand_apps {
            let reference = |id: AppId| super::profiles::AppReference { id: id.to_string() };
            return Ok(AppsV1::References(AppReferences {
                tax: reference(p.tax_app_id),
                invoicing: reference(p.invoicing_app_id),
                payment: reference(p.payment_app_id),
            }));
        }
        Ok(AppsV1::Expanded {
            tax: Box::new(self.app(p.tax_app_id).await?),
            invoicing: Box::new(self.app(p.invoicing_app_id).await?),
            payment: Box::new(self.app(p.payment_app_id).await?),
        })
    }

    async fn profile(&mut self, p: BillingProfile) -> std::result::Result<BillingProfileV1, Error> {
        let apps = self.apps(&p).await?;
        Ok(BillingProfileV1 {
            id: p.id.to_string(),
            name: p.name,
            description: p.description,
            metadata: p.labels,
            created_at: p.created_at,
            updated_at: p.updated_at,
            deleted_at: p.deleted_at,
            supplier: p.supplier.into(),
            workflow: p.workflow.into(),
            apps,
            default: p.is_default,
        })
    }

    async fn stored_profile(
        &mut self,
        id: ProfileId,
    ) -> std::result::Result<BillingProfile, Error> {
        if !self.profiles.contains_key(&id) {
            let profile = self.store.require_profile(self.ns, id).await?;
            self.profiles.insert(id, profile);
        }
        Ok(self.profiles[&id].clone())
    }

    /// A customer's override with the values it bills with: its pinned
    /// profile's, else the namespace default's (404 when neither exists).
    async fn customer_override(
        &mut self,
        customer: Customer,
        default: Option<ProfileId>,
        expand_customer: bool,
    ) -> std::result::Result<OverrideWithDetailsV1, Error> {
        let pinned = self
            .store
            .customer_profile_override(self.ns, customer.id)
            .await?;
        let base = match (&pinned, default) {
            (Some(o), _) => o.profile_id,
            (None, Some(default)) => default,
            (None, None) => {
                return Err(Error::NotFound(format!(
                    "customer [{}] has no billing profile: it has no override and the \
                     namespace has no default billing profile",
                    customer.id
                )));
            }
        };
        let profile = self.stored_profile(base).await?;
        let apps = self.apps(&profile).await?;
        Ok(OverrideWithDetailsV1 {
            customer_override: pinned.map(|o| OverrideV1 {
                created_at: o.created_at,
                updated_at: o.updated_at,
                billing_profile_id: o.profile_id.to_string(),
                customer_id: o.customer_id.to_string(),
            }),
            base_billing_profile_id: base.to_string(),
            customer_profile: CustomerProfileV1 {
                supplier: profile.supplier.into(),
                workflow: profile.workflow.into(),
                apps,
            },
            customer: expand_customer.then(|| customer.into()),
        })
    }
}

// ---------------------------------------------------------------------------
// Query parameters

/// `listBillingProfiles`' sort fields.
pub(crate) const PROFILE_ORDER_BY: [(&str, ProfileOrder); 4] = [
    ("createdAt", ProfileOrder::CreatedAt),
    ("updatedAt", ProfileOrder::UpdatedAt),
    ("default", ProfileOrder::Default),
    ("name", ProfileOrder::Name),
];

/// `listBillingProfileCustomerOverrides`' sort fields.
pub(crate) const OVERRIDE_ORDER_BY: [(&str, SortField); 5] = [
    ("customerId", SortField::Id),
    ("customerName", SortField::Name),
    ("customerKey", SortField::Key),
    ("customerPrimaryEmail", SortField::PrimaryEmail),
    ("customerCreatedAt", SortField::CreatedAt),
];

pub(crate) const PROFILE_EXPAND: &[&str] = &["apps"];
pub(crate) const OVERRIDE_EXPAND: &[&str] = &["apps", "customer"];

/// The query as ordered (name, value) pairs, every value kept: the list
/// parameters (`expand`, `billingProfile`, `customerId`) are arrays that
/// clients send repeated, which `ApiQuery` (last value wins) would lose.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn order_param(name: &str, value: &str) -> std::result::Result<bool, FieldError> {
    match value {
        "ASC" | "asc" => Ok(false),
        "DESC" | "desc" => Ok(true),
        _ => Err(query_error(
            name,
            Rule::Enum(vec!["ASC".into(), "DESC".into()]),
            format!("[{value}] is not an order; use ASC or DESC"),
        )),
    }
}

/// Each `expand` value (repeated or comma-separated) must be one of `choices`.
fn expand_param<'c>(
    name: &str,
    value: &str,
    choices: &[&'c str],
) -> std::result::Result<Vec<&'c str>, FieldError> {
    value
        .split(',')
        .map(|item| {
            choices.iter().copied().find(|c| *c == item).ok_or_else(|| {
                query_error(
                    name,
                    Rule::Enum(choices.iter().map(|c| (*c).to_owned()).collect()),
                    format!(
                        "[{item}] cannot be expanded; the choices are {}",
                        choices.join(", ")
                    ),
                )
            })
        })
        .collect()
}

fn ulid_param(name: &str, value: &str) -> std::result::Result<String, FieldError> {
    parse_ulid(value).map(|id| id.to_string()).ok_or_else(|| {
        query_error(
            name,
            Rule::MatchesRegex,
            format!("[{value}] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)"),
        )
    })
}

fn unknown(name: &str) -> FieldError {
    query_error(
        name,
        Rule::UnknownProperty,
        "is not a known query parameter",
    )
}

fn finish<T>(value: T, errors: Vec<FieldError>) -> std::result::Result<T, Error> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// `expand` only (the single-resource reads).
fn parse_expand(
    raw: Option<&str>,
    choices: &[&'static str],
) -> std::result::Result<Vec<&'static str>, Error> {
    let mut expand = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in query_pairs(raw) {
        let outcome = match name.as_str() {
            "expand" => expand_param(&name, &value, choices).map(|e| expand.extend(e)),
            _ => Err(unknown(&name)),
        };
        if let Err(e) = outcome {
            errors.push(e);
        }
    }
    finish(expand, errors)
}

fn parse_profile_list(raw: Option<&str>) -> std::result::Result<(ProfileQuery, bool), Error> {
    let mut q = ProfileQuery {
        page: Page {
            number: 1,
            size: V1_DEFAULT_SIZE,
        },
        include_deleted: false,
        order: None,
    };
    let mut descending = false;
    let mut field = None;
    let mut expand = false;
    let mut errors = Vec::new();
    for (name, value) in query_pairs(raw) {
        let outcome = match name.as_str() {
            "page" => query_int(&name, &value, 1, u64::from(u32::MAX)).map(|n| q.page.number = n),
            "pageSize" => query_int(&name, &value, 1, MAX_SIZE).map(|n| q.page.size = n),
            "includeArchived" => query_bool(&name, &value).map(|b| q.include_deleted = b),
            "order" => order_param(&name, &value).map(|d| descending = d),
            "orderBy" => match PROFILE_ORDER_BY.iter().find(|(n, _)| *n == value) {
                Some((_, order)) => Ok(*order),
                None => Err(query_error(
                    &name,
                    Rule::Enum(PROFILE_ORDER_BY.map(|(n, _)| n.to_owned()).to_vec()),
                    format!(
                        "[{value}] is not a sort field; use createdAt, updatedAt, default or name"
                    ),
                )),
            }
            .map(|f| field = Some(f)),
            "expand" => expand_param(&name, &value, PROFILE_EXPAND).map(|_| expand = true),
            _ => Err(unknown(&name)),
        };
        if let Err(e) = outcome {
            errors.push(e);
        }
    }
    // `order` alone orders by creation time.
    q.order = match (field, descending) {
        (Some(field), d) => Some((field, d)),
        (None, true) => Some((ProfileOrder::CreatedAt, true)),
        (None, false) => None,
    };
    finish((q, expand), errors)
}

struct OverrideList {
    query: CustomerQuery,
    include_all: bool,
    expand_apps: bool,
    expand_customer: bool,
}

fn parse_override_list(raw: Option<&str>) -> std::result::Result<OverrideList, Error> {
    let mut q = OverrideList {
        query: CustomerQuery {
            page: 1,
            size: V1_DEFAULT_SIZE,
            sort: Vec::new(),
            include_deleted: false,
            filters: Vec::new(),
        },
        include_all: true,
        expand_apps: false,
        expand_customer: false,
    };
    let mut direction = Direction::Asc;
    let mut field = SortField::Id;
    let mut profiles = Vec::new();
    let mut customers = Vec::new();
    let mut errors = Vec::new();
    for (name, value) in query_pairs(raw) {
        let filters = &mut q.query.filters;
        let outcome = match name.as_str() {
            "page" => query_int(&name, &value, 1, u64::from(u32::MAX)).map(|n| q.query.page = n),
            "pageSize" => query_int(&name, &value, 1, MAX_SIZE).map(|n| q.query.size = n),
            "order" => order_param(&name, &value)
                .map(|d| direction = if d { Direction::Desc } else { Direction::Asc }),
            "orderBy" => match OVERRIDE_ORDER_BY.iter().find(|(n, _)| *n == value) {
                Some((_, field)) => Ok(*field),
                None => Err(query_error(
                    &name,
                    Rule::Enum(OVERRIDE_ORDER_BY.map(|(n, _)| n.to_owned()).to_vec()),
                    format!(
                        "[{value}] is not a sort field; use customerId, customerName, \
                         customerKey, customerPrimaryEmail or customerCreatedAt"
                    ),
                )),
            }
            .map(|f| field = f),
            "includeAllCustomers" => query_bool(&name, &value).map(|b| q.include_all = b),
            "customersWithoutPinnedProfile" => query_bool(&name, &value).map(|b| {
                if b {
                    filters.push((FilterField::BillingProfileId, StringFilter::Exists(false)));
                }
            }),
            "billingProfile" => value
                .split(',')
                .try_for_each(|v| ulid_param(&name, v).map(|id| profiles.push(id))),
            "customerId" => value
                .split(',')
                .try_for_each(|v| ulid_param(&name, v).map(|id| customers.push(id))),
            "customerName" => {
                filters.push((FilterField::Name, StringFilter::Contains(value.clone())));
                Ok(())
            }
            "customerKey" => {
                filters.push((FilterField::Key, StringFilter::Contains(value.clone())));
                Ok(())
            }
            "customerPrimaryEmail" => {
                filters.push((
                    FilterField::PrimaryEmail,
                    StringFilter::Contains(value.clone()),
                ));
                Ok(())
            }
            "expand" => expand_param(&name, &value, OVERRIDE_EXPAND).map(|e| {
                q.expand_apps |= e.contains(&"apps");
                q.expand_customer |= e.contains(&"customer");
            }),
            _ => Err(unknown(&name)),
        };
        if let Err(e) = outcome {
            errors.push(e);
        }
    }
    if !profiles.is_empty() {
        q.query
            .filters
            .push((FilterField::BillingProfileId, StringFilter::OEq(profiles)));
    }
    if !customers.is_empty() {
        q.query
            .filters
            .push((FilterField::Id, StringFilter::OEq(customers)));
    }
    q.query.sort = vec![(field, direction)];
    finish(q, errors)
}

// ---------------------------------------------------------------------------
// Billing profiles

#[utoipa::path(
    post,
    path = "/api/v1/billing/profiles",
    operation_id = "createBillingProfile",
    summary = "Create billing profile",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    request_body = CreateProfileV1,
    responses((status = 201, body = BillingProfileV1), (status = 400), (status = 404), (status = 409), (status = 503))
)]
async fn create(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiJson(body): ApiJson<CreateProfileV1>,
) -> Result<(StatusCode, Json<BillingProfileV1>)> {
    let store = &state.ctx.store;
    let mut v = Violations::default();
    let supplier = body.supplier.into_party(&mut v);
    let workflow = body.workflow.into_v3(&mut v);
    let valid = ProfileFields {
        name: body.name,
        description: body.description,
        labels: body.metadata,
        supplier,
        workflow,
        is_default: body.is_default,
    }
    .check(&mut v, None);
    let reference = |id: String| AppReferenceInput { id };
    let refs = AppReferencesInput {
        tax: reference(body.apps.tax),
        invoicing: reference(body.apps.invoicing),
        payment: reference(body.apps.payment),
    };
    let apps = check_app_refs(store, &ns, &mut v, &refs)
        .await
        .map_err(v1)?;
    v.into_result().map_err(v1)?;
    let apps = apps.ok_or_else(|| Error::Internal(anyhow::anyhow!("app references unchecked")))?;
    let profile = store.insert_profile(&ns, valid, apps).await.map_err(v1)?;
    let body = Renderer::new(store, &ns, false).profile(profile).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get,
    path = "/api/v1/billing/profiles/{id}",
    operation_id = "getBillingProfile",
    summary = "Get billing profile",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("id" = inline(UlidParam), Path), ("expand" = Option<ProfileExpand>, Query, description = "apps: fill in the profile's apps")),
    responses((status = 200, body = BillingProfileV1), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<BillingProfileV1>> {
    let id: ProfileId = path_ulid("id", &id)?;
    let expand = parse_expand(raw.as_deref(), PROFILE_EXPAND)?;
    let store = &state.ctx.store;
    let profile = store.require_profile(&ns, id).await?;
    let body = Renderer::new(store, &ns, !expand.is_empty())
        .profile(profile)
        .await?;
    Ok(Json(body))
}

/// The app ids an echoed `apps` member names by role (`{tax: "id"}`,
/// `{tax: {id}}` or expanded apps alike).
fn echoed_app(apps: &serde_json::Value, role: &str) -> Option<String> {
    let member = apps.get(role)?;
    member
        .as_str()
        .or_else(|| member.get("id").and_then(|id| id.as_str()))
        .map(str::to_owned)
}

#[utoipa::path(
    put,
    path = "/api/v1/billing/profiles/{id}",
    operation_id = "updateBillingProfile",
    summary = "Update billing profile",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("id" = inline(UlidParam), Path)),
    request_body = UpdateProfileV1,
    responses((status = 200, body = BillingProfileV1), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn update(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateProfileV1>,
) -> Result<Json<BillingProfileV1>> {
    let id: ProfileId = path_ulid("id", &id)?;
    let store = &state.ctx.store;
    let current = store.require_profile(&ns, id).await?;
    current.ensure_live()?;
    let mut v = Violations::default();
    if let Some(apps) = &body.apps {
        for (role, app) in [
            ("tax", current.tax_app_id),
            ("invoicing", current.invoicing_app_id),
            ("payment", current.payment_app_id),
        ] {
            let given = echoed_app(apps, role);
            if given.as_deref().and_then(parse_ulid).map(AppId::from) != Some(app) {
                v.push(
                    format!("apps.{role}"),
                    Rule::Invalid,
                    "a billing profile's apps are fixed when it is created; \
                     create another profile to use other apps (or leave apps out)",
                );
            }
        }
    }
    let supplier = body.supplier.into_party(&mut v);
    let workflow = body.workflow.into_v3(&mut v);
    let valid = ProfileFields {
        name: body.name,
        description: body.description,
        labels: body.metadata,
        supplier,
        workflow,
        is_default: body.is_default,
    }
    .check(&mut v, current.workflow.tax.default_tax_config.as_ref());
    if current.is_default && !body.is_default {
        let e = BillingProfile::cannot_unset_default(id);
        v.push(e.field, e.rule, e.reason);
    }
    v.into_result().map_err(v1)?;
    let profile = store.update_profile(&ns, id, valid).await.map_err(v1)?;
    Ok(Json(
        Renderer::new(store, &ns, false).profile(profile).await?,
    ))
}

#[utoipa::path(
    delete,
    path = "/api/v1/billing/profiles/{id}",
    operation_id = "deleteBillingProfile",
    summary = "Delete billing profile",
    tag = "OpenMeter v1",
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
    path = "/api/v1/billing/profiles",
    operation_id = "listBillingProfiles",
    summary = "List billing profiles",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("includeArchived" = Option<bool>, Query, description = "Include deleted profiles (default false)"), ("expand" = Option<ProfileExpand>, Query, description = "apps: fill in the profile's apps"), ("page" = Option<u64>, Query, minimum = 1, maximum = 4294967295u64, description = "1-based page number (default 1)"), ("pageSize" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Items per page (default 100)"), ("order" = Option<V1Order>, Query, description = "ASC or DESC"), ("orderBy" = Option<ProfileOrderBy>, Query, description = "createdAt, updatedAt, default or name")),
    responses((status = 200, body = V1Page<BillingProfileV1>), (status = 400), (status = 503))
)]
async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    RawQuery(raw): RawQuery,
) -> Result<Json<V1Page<BillingProfileV1>>> {
    let (query, expand) = parse_profile_list(raw.as_deref())?;
    let store = &state.ctx.store;
    let (profiles, total) = store.query_profiles(&ns, &query).await?;
    let mut renderer = Renderer::new(store, &ns, expand);
    let mut items = Vec::with_capacity(profiles.len());
    for profile in profiles {
        items.push(renderer.profile(profile).await?);
    }
    Ok(Json(V1Page::new(query.page, total, items)))
}

// ---------------------------------------------------------------------------
// Customer overrides

async fn load_customer(store: &Store, ns: &str, id: &str) -> Result<Customer> {
    let id: CustomerId = path_ulid("customerId", id)?;
    Ok(store
        .get_customer(ns, id)
        .await?
        .ok_or_else(|| Error::not_found("customer", id))?)
}

async fn default_profile_id(
    store: &Store,
    ns: &str,
) -> std::result::Result<Option<ProfileId>, Error> {
    Ok(store.default_profile(ns).await?.map(|p| p.id))
}

#[utoipa::path(
    get,
    path = "/api/v1/billing/customers/{customerId}",
    operation_id = "getBillingProfileCustomerOverride",
    summary = "Get a customer override",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path), ("expand" = Option<OverrideExpand>, Query, description = "apps, customer")),
    responses((status = 200, body = OverrideWithDetailsV1), (status = 400), (status = 404), (status = 503))
)]
async fn get_override(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(customer_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<OverrideWithDetailsV1>> {
    let store = &state.ctx.store;
    let customer = load_customer(store, &ns, &customer_id).await?;
    let expand = parse_expand(raw.as_deref(), OVERRIDE_EXPAND)?;
    let default = default_profile_id(store, &ns).await?;
    let body = Renderer::new(store, &ns, expand.contains(&"apps"))
        .customer_override(customer, default, expand.contains(&"customer"))
        .await?;
    Ok(Json(body))
}

#[utoipa::path(
    put,
    path = "/api/v1/billing/customers/{customerId}",
    operation_id = "upsertBillingProfileCustomerOverride",
    summary = "Create or update a customer override",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    request_body = OverrideCreateV1,
    responses((status = 200, body = OverrideWithDetailsV1), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn upsert_override(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(customer_id): Path<String>,
    ApiJson(body): ApiJson<OverrideCreateV1>,
) -> Result<Json<OverrideWithDetailsV1>> {
    let store = &state.ctx.store;
    let customer = load_customer(store, &ns, &customer_id).await?;
    customer.ensure_live()?;
    let field = "billingProfileId";
    let profile = match &body.billing_profile_id {
        Some(given) => {
            let id = parse_ulid(given).map(ProfileId::from).ok_or_else(|| {
                Error::field(
                    field,
                    Rule::MatchesRegex,
                    format!(
                        "[{given}] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)"
                    ),
                )
            })?;
            check_profile(&state.ctx, &ns, field, id).await?;
            Some(id)
        }
        None => None,
    };
    let default = default_profile_id(store, &ns).await?;
    if profile.is_none() && default.is_none() {
        return Err(Error::field(
            field,
            Rule::Required,
            "the namespace has no default billing profile; name the billing profile to pin the customer to",
        )
        .into());
    }
    store
        .set_customer_billing_profile(&ns, customer.id, profile)
        .await?;
    let body = Renderer::new(store, &ns, false)
        .customer_override(customer, default, false)
        .await?;
    Ok(Json(body))
}

#[utoipa::path(
    delete,
    path = "/api/v1/billing/customers/{customerId}",
    operation_id = "deleteBillingProfileCustomerOverride",
    summary = "Delete a customer override",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    responses((status = 204), (status = 400), (status = 404), (status = 409), (status = 410), (status = 503))
)]
async fn delete_override(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(customer_id): Path<String>,
) -> Result<StatusCode> {
    let store = &state.ctx.store;
    let customer = load_customer(store, &ns, &customer_id).await?;
    if store
        .customer_profile_override(&ns, customer.id)
        .await?
        .is_none()
    {
        return Err(Error::NotFound(format!(
            "customer [{}] has no billing profile override",
            customer.id
        ))
        .into());
    }
    customer.ensure_live()?;
    store
        .set_customer_billing_profile(&ns, customer.id, None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Customers and the values they bill with. Without a default profile only
/// customers with an override have such values, so only they are listed.
#[utoipa::path(
    get,
    path = "/api/v1/billing/customers",
    operation_id = "listBillingProfileCustomerOverrides",
    summary = "List customer overrides",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("billingProfile" = Option<UlidList>, Query, description = "Only customers pinned to these profiles"), ("customersWithoutPinnedProfile" = Option<bool>, Query, description = "Include customers on the default profile"), ("includeAllCustomers" = Option<bool>, Query, description = "Include every customer"), ("customerId" = Option<UlidList>, Query, description = "Only these customers"), ("customerName" = Option<String>, Query, description = "Customer name contains"), ("customerKey" = Option<String>, Query, description = "Customer key equals"), ("customerPrimaryEmail" = Option<String>, Query, description = "Customer primary email contains"), ("expand" = Option<OverrideExpand>, Query, description = "apps, customer"), ("order" = Option<V1Order>, Query, description = "ASC or DESC"), ("orderBy" = Option<OverrideOrderBy>, Query, description = "customerId, customerName, customerKey, customerPrimaryEmail or customerCreatedAt"), ("page" = Option<u64>, Query, minimum = 1, maximum = 4294967295u64, description = "1-based page number (default 1)"), ("pageSize" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Items per page (default 100)")),
    responses((status = 200, body = V1Page<OverrideWithDetailsV1>), (status = 400), (status = 503))
)]
async fn list_overrides(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    RawQuery(raw): RawQuery,
) -> Result<Json<V1Page<OverrideWithDetailsV1>>> {
    let mut q = parse_override_list(raw.as_deref())?;
    let store = &state.ctx.store;
    let default = default_profile_id(store, &ns).await?;
    if !q.include_all || default.is_none() {
        q.query
            .filters
            .push((FilterField::BillingProfileId, StringFilter::Exists(true)));
    }
    let page = store.list_customers(&ns, &q.query).await?;
    let mut renderer = Renderer::new(store, &ns, q.expand_apps);
    let mut items = Vec::with_capacity(page.items.len());
    for customer in page.items {
        items.push(
            renderer
                .customer_override(customer, default, q.expand_customer)
                .await?,
        );
    }
    Ok(Json(V1Page::new(
        Page {
            number: q.query.page,
            size: q.query.size,
        },
        page.total,
        items,
    )))
}
