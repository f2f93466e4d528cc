//! v3 invoices: `/api/v3/openmeter/billing/invoices…` (list, get, update,
//! delete, advance, approve, retry), the same invoices as v1 in v3's names.
//!
//! v3 shows invoices from their draft on: gathering invoices (pending lines,
//! made through v1) are never listed and are not found by id here. A line's
//! package price is v3's unit price with a `divide … ceiling` unit config; a
//! usage-based line's quantity (meterpay has no meters) is the
//! `x-meterpay-addition` member `quantity`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::customers::UsageAttribution;
use super::extract::{ApiJson, parse_ulid, path_ulid, query_error};
use super::openapi::{AddressBody, UlidParam};
use super::page::{Page, PageExt, PageNumber, PageSize, PaginatedMeta, V3_DEFAULT_SIZE};
use super::query::{ApiQuery, QueryParams};
use super::schema::{InvoiceStatusV3, Labels, Ulid};
use super::tenancy::Namespace;
use crate::billing::customer::Address;
use crate::billing::invoice::{Action, ExtendedStatus, Invoice, Line, LineInput, Status};
use crate::billing::money::{self, Price, PriceInput, TierInput, TierMode};
use crate::billing::profile::{
    CollectionMethod, DEFAULT_DUE_AFTER, Party, PartyAddresses, PaymentSettings, TaxIdentity,
};
use crate::error::{Error, FieldError, Result, Rule, Violations};
use crate::ids::{CustomerId, InvoiceId};
use crate::service::invoicing::{self, CustomerUpdate, InvoiceUpdate, LineUpdate, WorkflowUpdate};
use crate::store::invoices::{InvoiceOrder, InvoiceQuery, TimeRange};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/billing/invoices", get(list))
        .route(
            "/billing/invoices/{invoiceId}",
            get(fetch).put(update).delete(remove),
        )
        .route("/billing/invoices/{invoiceId}/advance", post(advance))
        .route("/billing/invoices/{invoiceId}/approve", post(approve))
        .route("/billing/invoices/{invoiceId}/retry", post(retry))
}

// ---------------------------------------------------------------------------
// Shapes: responses

/// `BillingTotals`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Totals {
    pub amount: String,
    pub taxes_total: String,
    pub taxes_inclusive_total: String,
    pub taxes_exclusive_total: String,
    pub charges_total: String,
    pub discounts_total: String,
    pub credits_total: String,
    pub total: String,
}

impl Totals {
    fn of(amount: rust_decimal::Decimal) -> Totals {
        let zero = || "0".to_owned();
        Totals {
            amount: money::format(amount),
            taxes_total: zero(),
            taxes_inclusive_total: zero(),
            taxes_exclusive_total: zero(),
            charges_total: zero(),
            discounts_total: zero(),
            credits_total: zero(),
            total: money::format(amount),
        }
    }
}

/// `ClosedPeriod`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosedPeriod {
    pub from: String,
    pub to: String,
}

fn period(from: OffsetDateTime, to: OffsetDateTime) -> ClosedPeriod {
    ClosedPeriod {
        from: crate::timestamp::format(from),
        to: crate::timestamp::format(to),
    }
}

/// `BillingInvoiceAvailableActionDetails`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionDetails {
    pub resulting_state: &'static str,
}

/// `BillingInvoiceAvailableActions` (v3 has no `void` action).
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailableActions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advance: Option<ActionDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve: Option<ActionDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<ActionDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<ActionDetails>,
}

/// `BillingInvoiceStatusDetails`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusDetails {
    pub immutable: bool,
    pub failed: bool,
    pub extended_status: &'static str,
    pub available_actions: AvailableActions,
}

/// `BillingSupplier`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Supplier {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tax_id: Option<TaxIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub addresses: Option<PartyAddresses>,
}

/// `BillingInvoiceCustomer`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceCustomer {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub usage_attribution: UsageAttribution,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AddressBody>)]
    pub billing_address: Option<Address>,
}

/// `BillingInvoiceValidationIssue`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationIssue {
    pub code: String,
    pub message: String,
    /// `critical` or `warning`.
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `component`: the component that reported it. A payment's issue
    /// (declined, or waiting for the customer's authentication) also names
    /// `hosted_invoice_url`: Stripe's hosted invoice page, where the customer
    /// pays or authenticates (v3's invoice has no member for it).
    #[schema(value_type = Object)]
    pub attributes: BTreeMap<String, String>,
}

/// A validation issue's attributes: its component, and for a payment's
/// issue the hosted invoice page where the customer acts on it.
fn issue_attributes(
    issue: &crate::billing::invoice::ValidationIssue,
    external: &crate::billing::invoice::External,
) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::from([("component".to_owned(), issue.component.clone())]);
    if issue.component == crate::service::invoice_sync::PAYMENT_COMPONENT
        && let Some(url) = &external.hosted_url
    {
        attributes.insert("hosted_invoice_url".to_owned(), url.clone());
    }
    attributes
}

/// `BillingInvoiceExternalReferences`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalReferences {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoicing_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdReference {
    pub id: String,
}

/// `BillingInvoiceWorkflowAppsReferences`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowApps {
    pub tax: IdReference,
    pub invoicing: IdReference,
    pub payment: IdReference,
}

/// `BillingInvoiceWorkflowInvoicingSettings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicingSettings {
    pub auto_advance: bool,
    pub draft_period: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_after: Option<String>,
}

/// `BillingWorkflowPaymentSettings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentSettingsBody {
    pub collection_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_after: Option<String>,
}

/// `BillingInvoiceWorkflow`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceWorkflow {
    pub invoicing: InvoicingSettings,
    pub payment: PaymentSettingsBody,
}

/// `BillingInvoiceWorkflowSettings`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkflowSettings {
    pub apps: WorkflowApps,
    pub source_billing_profile: IdReference,
    pub workflow: InvoiceWorkflow,
}

/// `BillingPriceFlat` / `BillingPriceUnit` inside a tier.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierAmount {
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: String,
}

/// `BillingPriceTier`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceTier {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_to_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flat_price: Option<TierAmount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<TierAmount>,
}

/// `BillingPrice` (`free`, `flat`, `unit`, `graduated`, `volume`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<PriceTier>>,
}

/// `BillingUnitConfig` (a package price's packaging).
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitConfig {
    pub operation: &'static str,
    pub conversion_factor: String,
    pub rounding: &'static str,
}

/// `BillingInvoiceLineRateCard`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RateCard {
    pub price: PriceBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_config: Option<UnitConfig>,
}

/// `BillingInvoiceStandardLine`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StandardLine {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Labels>)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub updated_at: OffsetDateTime,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub deleted_at: Option<OffsetDateTime>,
    /// Always `standard_line`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub lifecycle_controller: &'static str,
    pub service_period: ClosedPeriod,
    pub totals: Totals,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_references: Option<LineExternalReferences>,
    pub rate_card: RateCard,
    /// meterpay computes no detailed lines: always empty.
    #[schema(value_type = Vec<Object>)]
    pub detailed_lines: Vec<serde_json::Value>,
}

/// `BillingInvoiceLineExternalReferences`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineExternalReferences {
    pub invoicing_id: String,
}

/// `BillingInvoiceStandard`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StandardInvoice {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Labels>)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub updated_at: OffsetDateTime,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub deleted_at: Option<OffsetDateTime>,
    pub number: String,
    pub currency: String,
    pub supplier: Supplier,
    pub customer: InvoiceCustomer,
    pub totals: Totals,
    pub service_period: ClosedPeriod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_issues: Option<Vec<ValidationIssue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_references: Option<ExternalReferences>,
    /// Always `standard`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `BillingInvoiceStandardStatus`.
    pub status: &'static str,
    pub status_details: StatusDetails,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub issued_at: Option<OffsetDateTime>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub draft_until: Option<OffsetDateTime>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub due_at: Option<OffsetDateTime>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub sent_to_customer_at: Option<OffsetDateTime>,
    pub workflow: WorkflowSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<StandardLine>>,
}

/// `InvoicePagePaginatedResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicePage {
    pub data: Vec<StandardInvoice>,
    pub meta: PaginatedMeta,
}

fn price_body(price: &Price) -> (PriceBody, Option<UnitConfig>) {
    let amount = |kind: &str, a: rust_decimal::Decimal| TierAmount {
        kind: kind.to_owned(),
        amount: money::format(a),
    };
    match price {
        Price::Flat { amount, .. } => (
            PriceBody {
                kind: "flat".into(),
                amount: Some(money::format(*amount)),
                tiers: None,
            },
            None,
        ),
        Price::Unit { amount } => (
            PriceBody {
                kind: "unit".into(),
                amount: Some(money::format(*amount)),
                tiers: None,
            },
            None,
        ),
        Price::Package {
            amount,
            quantity_per_package,
        } => (
            PriceBody {
                kind: "unit".into(),
                amount: Some(money::format(*amount)),
                tiers: None,
            },
            Some(UnitConfig {
                operation: "divide",
                conversion_factor: money::format(*quantity_per_package),
                rounding: "ceiling",
            }),
        ),
        Price::Tiered { mode, tiers } => (
            PriceBody {
                kind: match mode {
                    TierMode::Graduated => "graduated".into(),
                    TierMode::Volume => "volume".into(),
                },
                amount: None,
                tiers: Some(
                    tiers
                        .iter()
                        .map(|t| PriceTier {
                            up_to_amount: t.up_to.map(money::format),
                            flat_price: t.flat.map(|a| amount("flat", a)),
                            unit_price: t.unit.map(|a| amount("unit", a)),
                        })
                        .collect(),
                ),
            },
            None,
        ),
    }
}

fn line_body(line: &Line) -> StandardLine {
    let (price, unit_config) = price_body(&line.price);
    StandardLine {
        id: line.id.to_string(),
        name: line.name.clone(),
        description: line.description.clone(),
        labels: line.metadata.clone(),
        created_at: line.created_at,
        updated_at: line.updated_at,
        deleted_at: line.deleted_at,
        kind: "standard_line",
        lifecycle_controller: "manual",
        service_period: period(line.period.from, line.period.to),
        totals: Totals::of(line.amount),
        external_references: line
            .external_id
            .clone()
            .map(|invoicing_id| LineExternalReferences { invoicing_id }),
        rate_card: RateCard { price, unit_config },
        detailed_lines: Vec::new(),
    }
}

pub fn invoice_body(invoice: Invoice, now: OffsetDateTime, with_lines: bool) -> StandardInvoice {
    let details = invoice.status_details(now);
    let a = details.available_actions;
    let action =
        |s: Option<&'static str>| s.map(|resulting_state| ActionDetails { resulting_state });
    let w = &invoice.workflow;
    let (collection_method, due_after) = match &w.workflow.payment {
        PaymentSettings::ChargeAutomatically => ("charge_automatically", None),
        PaymentSettings::SendInvoice { due_after } => ("send_invoice", Some(due_after.clone())),
    };
    let service_period = match invoice.period {
        Some(p) => period(p.from, p.to),
        None => period(invoice.created_at, invoice.created_at),
    };
    let external = &invoice.external;
    StandardInvoice {
        id: invoice.id.to_string(),
        description: invoice.description.clone(),
        labels: invoice.metadata.clone(),
        created_at: invoice.created_at,
        updated_at: invoice.updated_at,
        deleted_at: invoice.deleted_at,
        number: invoice.display_number().to_owned(),
        currency: invoice.currency.to_string(),
        supplier: Supplier {
            name: invoice.supplier.name.clone(),
            tax_id: invoice.supplier.tax_id.clone(),
            addresses: invoice.supplier.addresses.clone(),
        },
        customer: InvoiceCustomer {
            id: invoice.customer.id.to_string(),
            name: invoice.customer.name.clone(),
            key: invoice.customer.key.clone(),
            usage_attribution: UsageAttribution {
                subject_keys: invoice.customer.subject_keys.clone(),
            },
            billing_address: invoice.customer.billing_address.clone(),
        },
        totals: Totals::of(invoice.totals.amount),
        service_period,
        validation_issues: (!invoice.validation_issues.is_empty()).then(|| {
            invoice
                .validation_issues
                .iter()
                .map(|i| ValidationIssue {
                    code: i.code.clone(),
                    message: i.message.clone(),
                    severity: super::v1_invoices::severity(i.severity),
                    field: i.field.clone(),
                    attributes: issue_attributes(i, external),
                })
                .collect()
        }),
        external_references: (external.invoice_id.is_some() || external.payment_id.is_some()).then(
            || ExternalReferences {
                invoicing_id: external.invoice_id.clone(),
                payment_id: external.payment_id.clone(),
            },
        ),
        kind: "standard",
        status: invoice.status.status().as_str(),
        status_details: StatusDetails {
            immutable: details.immutable,
            failed: details.failed,
            extended_status: details.extended_status,
            available_actions: AvailableActions {
                advance: action(a.advance),
                approve: action(a.approve),
                delete: action(a.delete),
                retry: action(a.retry),
            },
        },
        issued_at: invoice.issued_at,
        draft_until: invoice.draft_until,
        due_at: invoice.due_at,
        sent_to_customer_at: invoice.sent_to_customer_at,
        workflow: WorkflowSettings {
            apps: WorkflowApps {
                tax: IdReference {
                    id: w.tax_app_id.to_string(),
                },
                invoicing: IdReference {
                    id: w.invoicing_app_id.to_string(),
                },
                payment: IdReference {
                    id: w.payment_app_id.to_string(),
                },
            },
            source_billing_profile: IdReference {
                id: w.source_profile_id.to_string(),
            },
            workflow: InvoiceWorkflow {
                invoicing: InvoicingSettings {
                    auto_advance: w.workflow.invoicing.auto_advance,
                    draft_period: w.workflow.invoicing.draft_period.clone(),
                    due_after: due_after.clone(),
                },
                payment: PaymentSettingsBody {
                    collection_method,
                    due_after,
                },
            },
        },
        lines: with_lines.then(|| invoice.live_lines().map(line_body).collect()),
    }
}

// ---------------------------------------------------------------------------
// Shapes: requests

/// `UpdateSupplier`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSupplier {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub tax_id: Option<TaxIdentity>,
    #[schema(value_type = Option<Object>)]
    pub addresses: Option<PartyAddresses>,
    /// Read-only: accepted and ignored.
    pub id: Option<String>,
}

/// `UpdateInvoiceCustomer`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomer {
    pub name: String,
    pub id: String,
    pub usage_attribution: Option<UsageAttribution>,
    #[schema(value_type = Option<AddressBody>)]
    pub billing_address: Option<Address>,
    pub key: Option<String>,
}

/// `UpdateBillingInvoiceWorkflowInvoicingSettings`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInvoicing {
    pub auto_advance: Option<bool>,
    pub draft_period: Option<String>,
}

/// `UpdateBillingWorkflowPaymentSettings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePayment {
    #[schema(value_type = String)]
    pub collection_method: CollectionMethod,
    pub due_after: Option<String>,
}

/// `UpdateBillingInvoiceWorkflow`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkflow {
    pub invoicing: Option<UpdateInvoicing>,
    pub payment: Option<UpdatePayment>,
}

/// `UpdateInvoiceWorkflowSettings`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkflowSettings {
    pub workflow: UpdateWorkflow,
}

/// `UpdateInvoiceLineRateCard`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRateCard {
    pub price: PriceBody,
    /// Refused: tax code entities are not meterpay's.
    #[schema(value_type = Option<Object>)]
    pub tax_config: Option<serde_json::Value>,
    /// Refused: meterpay has no features.
    pub feature_key: Option<String>,
    /// Refused: meterpay does not do discounts.
    #[schema(value_type = Option<Object>)]
    pub discounts: Option<serde_json::Value>,
}

/// `UpdateInvoiceStandardLine`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLine {
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    pub labels: Option<BTreeMap<String, String>>,
    pub id: Option<String>,
    /// `standard_line`.
    #[serde(rename = "type")]
    pub kind: String,
    pub service_period: ClosedPeriod,
    pub rate_card: UpdateRateCard,
    /// The quantity a usage-based price (unit, graduated, volume) bills:
    /// meterpay has no meters. An existing line given without it keeps its own.
    #[schema(extensions(("x-meterpay-addition" = json!(true))), pattern = r"^\-?[0-9]+(\.[0-9]+)?$")]
    pub quantity: Option<String>,
}

/// `UpdateInvoiceStandardRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInvoiceRequest {
    pub description: Option<String>,
    #[schema(value_type = Option<Labels>)]
    pub labels: Option<BTreeMap<String, String>>,
    pub supplier: UpdateSupplier,
    pub customer: UpdateCustomer,
    /// `standard`.
    #[serde(rename = "type")]
    pub kind: String,
    pub workflow: UpdateWorkflowSettings,
    pub lines: Option<Vec<UpdateLine>>,
}

impl PriceBody {
    fn into_input(self) -> PriceInput {
        PriceInput {
            kind: self.kind,
            amount: self.amount,
            tiers: self.tiers.map(|tiers| {
                tiers
                    .into_iter()
                    .map(|t| TierInput {
                        up_to_amount: t.up_to_amount,
                        flat_price: t.flat_price.map(|p| p.amount),
                        unit_price: t.unit_price.map(|p| p.amount),
                    })
                    .collect()
            }),
            ..PriceInput::default()
        }
    }
}

// ---------------------------------------------------------------------------
// Handlers

/// The invoice, unless it is a gathering invoice (which v3 does not show).
async fn visible(state: &AppState, ns: &str, id: InvoiceId) -> Result<Invoice> {
    let invoice = invoicing::get(&state.ctx, ns, id).await?;
    if invoice.status == ExtendedStatus::Gathering {
        return Err(Error::NotFound(format!(
            "invoice [{id}] not found: it is a gathering invoice of pending lines, which v3 does \
             not show (invoice its lines first)"
        )));
    }
    Ok(invoice)
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/billing/invoices/{invoiceId}",
    operation_id = "get-invoice",
    summary = "Get a billing invoice",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    responses((status = 200, body = StandardInvoice), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<StandardInvoice>> {
    let id: InvoiceId = path_ulid("invoiceId", &id)?;
    let invoice = visible(&state, &ns, id).await?;
    Ok(Json(invoice_body(
        invoice,
        invoicing::now(&state.ctx),
        true,
    )))
}

#[utoipa::path(
    put,
    path = "/api/v3/openmeter/billing/invoices/{invoiceId}",
    operation_id = "update-invoice",
    summary = "Update a billing invoice",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    request_body = UpdateInvoiceRequest,
    responses((status = 200, body = StandardInvoice), (status = 400), (status = 404), (status = 503))
)]
async fn update(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateInvoiceRequest>,
) -> Result<Json<StandardInvoice>> {
    let id: InvoiceId = path_ulid("invoiceId", &id)?;
    let current = visible(&state, &ns, id).await?;
    let mut v = Violations::default();
    if body.kind != "standard" {
        v.push(
            "type",
            Rule::Enum(vec!["standard".into()]),
            format!("[{}] is not one of the allowed values", body.kind),
        );
    }
    if parse_ulid(&body.customer.id).map(CustomerId::from) != Some(current.customer.id) {
        v.push(
            "customer.id",
            Rule::Invalid,
            format!(
                "an invoice stays with its customer [{}]; bill another customer with pending lines \
                 of their own",
                current.customer.id
            ),
        );
    }
    let payment = body
        .workflow
        .workflow
        .payment
        .map(|p| match p.collection_method {
            CollectionMethod::ChargeAutomatically => {
                if p.due_after
                    .as_deref()
                    .is_some_and(|d| d != DEFAULT_DUE_AFTER)
                {
                    v.push(
                        "workflow.workflow.payment.due_after",
                        Rule::UnknownProperty,
                        "is only allowed with collection method [send_invoice]",
                    );
                }
                PaymentSettings::ChargeAutomatically
            }
            CollectionMethod::SendInvoice => PaymentSettings::SendInvoice {
                due_after: p.due_after.unwrap_or_else(|| DEFAULT_DUE_AFTER.to_owned()),
            },
        });
    let invoicing_settings = body.workflow.workflow.invoicing.unwrap_or_default();
    let lines = body.lines.map(|lines| {
        lines
            .into_iter()
            .enumerate()
            .map(|(i, line)| {
                let field = format!("lines[{i}]");
                if line.kind != "standard_line" {
                    v.push(
                        format!("{field}.type"),
                        Rule::Enum(vec!["standard_line".into()]),
                        format!("[{}] is not one of the allowed values", line.kind),
                    );
                }
                if line.rate_card.tax_config.is_some() {
                    v.push(
                        format!("{field}.rate_card.tax_config"),
                        Rule::Invalid,
                        "tax code entities are not supported by meterpay; set a line's Stripe tax \
                         code through the v1 API",
                    );
                }
                LineUpdate {
                    id: line.id,
                    keep_quantity: true,
                    line: LineInput {
                        name: line.name,
                        description: line.description,
                        metadata: line.labels,
                        period_from: line.service_period.from,
                        period_to: line.service_period.to,
                        invoice_at: String::new(),
                        price: Some((
                            format!("{field}.rate_card.price"),
                            line.rate_card.price.into_input(),
                        )),
                        quantity: line.quantity,
                        feature_key: line
                            .rate_card
                            .feature_key
                            .map(|_| format!("{field}.rate_card.feature_key")),
                        discounts: line
                            .rate_card
                            .discounts
                            .map(|_| format!("{field}.rate_card.discounts")),
                        tax_config: None,
                    },
                    field,
                }
            })
            .collect()
    });
    v.into_result()?;
    let supplier = Party {
        id: None,
        key: current.supplier.key.clone(),
        name: body.supplier.name,
        tax_id: body.supplier.tax_id,
        addresses: body.supplier.addresses,
    };
    let invoice = invoicing::update(
        &state.ctx,
        &ns,
        id,
        InvoiceUpdate {
            description: body.description,
            metadata: body.labels,
            supplier: Some(supplier),
            customer: Some(CustomerUpdate {
                name: Some(body.customer.name),
                key: body.customer.key,
                tax_id: current.customer.tax_id.clone(),
                billing_address: body.customer.billing_address,
            }),
            workflow: Some(WorkflowUpdate {
                auto_advance: invoicing_settings.auto_advance,
                draft_period: invoicing_settings.draft_period,
                payment,
            }),
            lines,
        },
    )
    .await
    .map_err(|e| {
        super::v1_names::rename_fields(
            e,
            &[
                ("workflow.invoicing", "workflow.workflow.invoicing"),
                ("workflow.payment", "workflow.workflow.payment"),
            ],
        )
    })?;
    Ok(Json(invoice_body(
        invoice,
        invoicing::now(&state.ctx),
        true,
    )))
}

#[utoipa::path(
    delete,
    path = "/api/v3/openmeter/billing/invoices/{invoiceId}",
    operation_id = "delete-invoice",
    summary = "Delete a billing invoice",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    responses((status = 204), (status = 400), (status = 404), (status = 503))
)]
async fn remove(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let id: InvoiceId = path_ulid("invoiceId", &id)?;
    visible(&state, &ns, id).await?;
    invoicing::delete(&state.ctx, &ns, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn action(
    state: &AppState,
    ns: &str,
    id: &str,
    action: Action,
) -> Result<Json<StandardInvoice>> {
    let id: InvoiceId = path_ulid("invoiceId", id)?;
    visible(state, ns, id).await?;
    let invoice = invoicing::act(&state.ctx, ns, id, action).await?;
    Ok(Json(invoice_body(
        invoice,
        invoicing::now(&state.ctx),
        true,
    )))
}

#[utoipa::path(
    post,
    path = "/api/v3/openmeter/billing/invoices/{invoiceId}/advance",
    operation_id = "advance-invoice",
    summary = "Advance billing invoice's next status",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    responses((status = 200, body = StandardInvoice), (status = 400), (status = 404), (status = 503))
)]
async fn advance(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<StandardInvoice>> {
    action(&state, &ns, &id, Action::Advance).await
}

#[utoipa::path(
    post,
    path = "/api/v3/openmeter/billing/invoices/{invoiceId}/approve",
    operation_id = "approve-invoice",
    summary = "Send the invoice to the customer",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    responses((status = 200, body = StandardInvoice), (status = 400), (status = 404), (status = 503))
)]
async fn approve(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<StandardInvoice>> {
    action(&state, &ns, &id, Action::Approve).await
}

#[utoipa::path(
    post,
    path = "/api/v3/openmeter/billing/invoices/{invoiceId}/retry",
    operation_id = "retry-invoice",
    summary = "Retry advancing the invoice after a failed attempt",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    responses((status = 200, body = StandardInvoice), (status = 400), (status = 404), (status = 503))
)]
async fn retry(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<StandardInvoice>> {
    action(&state, &ns, &id, Action::Retry).await
}

/// `page[number]`, `page[size]`, `sort` and `filter[…]`.
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
    /// `issued_at`, `created_at` (the default) or `service_period_start`, optionally followed by ` asc` or ` desc`.
    #[param(value_type = Option<String>, pattern = "^(issued_at|created_at|service_period_start)( (asc|desc))?$")]
    sort: Option<String>,
    #[param(ignore)]
    filter: BTreeMap<String, String>,
}

impl QueryParams for ListQuery {
    const KNOWN: &'static str = "page[size], page[number], sort or filter[…]";
}

fn parse_sort(value: &str) -> std::result::Result<(InvoiceOrder, bool), FieldError> {
    let mut words = value.split_whitespace();
    let field = match words.next() {
        Some("issued_at") => InvoiceOrder::IssuedAt,
        Some("created_at") => InvoiceOrder::CreatedAt,
        Some("service_period_start") => InvoiceOrder::PeriodStart,
        other => {
            return Err(query_error(
                "sort",
                Rule::Enum(vec![
                    "issued_at".into(),
                    "created_at".into(),
                    "service_period_start".into(),
                ]),
                format!(
                    "[{}] is not a sort attribute; use issued_at, created_at or \
                     service_period_start, optionally followed by asc or desc",
                    other.unwrap_or("")
                ),
            ));
        }
    };
    let descending = match (words.next(), words.next()) {
        (None | Some("asc"), None) => false,
        (Some("desc"), None) => true,
        _ => {
            return Err(query_error(
                "sort",
                Rule::Enum(vec!["asc".into(), "desc".into()]),
                format!("[{value}] is not one attribute followed by asc or desc"),
            ));
        }
    };
    Ok((field, descending))
}

fn apply_filter(
    q: &mut InvoiceQuery,
    name: &str,
    value: &str,
) -> std::result::Result<(), FieldError> {
    let inner = name.trim_start_matches("filter[");
    let (field, op) = match inner.split_once(']') {
        Some((field, "")) => (field, "eq"),
        Some((field, rest)) if rest.starts_with('[') && rest.ends_with(']') => {
            (field, &rest[1..rest.len() - 1])
        }
        _ => {
            return Err(query_error(
                name,
                Rule::Invalid,
                "use filter[field]=value or filter[field][operator]=value",
            ));
        }
    };
    let ops = |allowed: &[&str]| {
        query_error(
            name,
            Rule::Enum(allowed.iter().map(|s| (*s).to_owned()).collect()),
            format!("[{op}] is not an operator of filter[{field}]"),
        )
    };
    match field {
        "status" => {
            let mut statuses = Vec::new();
            let values: Vec<&str> = if op == "oeq" {
                value.split(',').collect()
            } else {
                vec![value]
            };
            for v in values {
                match Status::parse(v).filter(|s| *s != Status::Gathering) {
                    Some(s) => statuses.push(s),
                    None => {
                        return Err(query_error(
                            name,
                            Rule::Enum(
                                Status::ALL[1..]
                                    .iter()
                                    .map(|s| s.as_str().to_owned())
                                    .collect(),
                            ),
                            format!("[{v}] is not one of the allowed values"),
                        ));
                    }
                }
            }
            match op {
                "eq" | "oeq" => q.statuses.extend(statuses),
                "neq" => q.not_statuses.extend(statuses),
                _ => return Err(ops(&["eq", "oeq", "neq"])),
            }
        }
        "customer_id" => {
            let values: Vec<&str> = if op == "oeq" {
                value.split(',').collect()
            } else {
                vec![value]
            };
            let mut ids = Vec::new();
            for v in values {
                match parse_ulid(v) {
                    Some(id) => ids.push(CustomerId::from(id)),
                    None => {
                        return Err(query_error(
                            name,
                            Rule::MatchesRegex,
                            format!(
                                "[{v}] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)"
                            ),
                        ));
                    }
                }
            }
            match op {
                "eq" | "oeq" => q.customers.extend(ids),
                "neq" => q.not_customers.extend(ids),
                _ => return Err(ops(&["eq", "oeq", "neq"])),
            }
        }
        "issued_at" | "created_at" | "service_period_start" => {
            let mut v = Violations::default();
            let at = crate::billing::invoice::parse_time(&mut v, name, value).ok_or_else(|| {
                query_error(
                    name,
                    Rule::IsDateTime,
                    "must be an RFC 3339 date-time such as 2023-01-01T01:01:01.001Z",
                )
            })?;
            let range: &mut TimeRange = match field {
                "issued_at" => &mut q.issued,
                "created_at" => &mut q.created,
                _ => &mut q.period_start,
            };
            match op {
                "eq" => {
                    range.from = Some(at);
                    range.to = Some(at);
                }
                "gt" | "gte" => {
                    range.from = Some(at);
                    range.from_exclusive = op == "gt";
                }
                "lt" | "lte" => {
                    range.to = Some(at);
                    range.to_exclusive = op == "lt";
                }
                _ => return Err(ops(&["eq", "lt", "lte", "gt", "gte"])),
            }
        }
        _ => {
            return Err(query_error(
                name,
                Rule::Enum(
                    [
                        "status",
                        "customer_id",
                        "issued_at",
                        "service_period_start",
                        "created_at",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                ),
                format!("[{field}] is not a filter of invoices"),
            ));
        }
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/api/v3/openmeter/billing/invoices",
    operation_id = "list-invoices",
    summary = "List billing invoices",
    tag = "OpenMeter v3",
    security(("bearer" = [])),
    params(
        ListQuery,
        ("filter[status]" = Option<InvoiceStatusV3>, Query, description = "Invoices of this status (`filter[status][oeq]=draft,issued`, `[neq]`)"),
        ("filter[customer_id]" = Option<Ulid>, Query, description = "Invoices of this customer (`[oeq]`, `[neq]`)"),
        ("filter[issued_at]" = Option<String>, Query, format = DateTime, description = "Issued at this time (`[gt]`, `[gte]`, `[lt]`, `[lte]`)"),
        ("filter[service_period_start]" = Option<String>, Query, format = DateTime, description = "Service period starting at this time (`[gt]`, …)"),
        ("filter[created_at]" = Option<String>, Query, format = DateTime, description = "Created at this time (`[gt]`, …)"),
    ),
    responses((status = 200, body = InvoicePage), (status = 400), (status = 503))
)]
async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<InvoicePage>> {
    let page = Page::of(query.number, query.size, V3_DEFAULT_SIZE);
    let mut q = InvoiceQuery::new(page);
    q.include_gathering = false;
    let mut errors = Vec::new();
    if let Some(sort) = &query.sort {
        match parse_sort(sort) {
            Ok(order) => q.order = order,
            Err(e) => errors.push(e),
        }
    }
    for (name, value) in &query.filter {
        if let Err(e) = apply_filter(&mut q, name, value) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let (invoices, total) = invoicing::list(&state.ctx, &ns, &q).await?;
    let now = invoicing::now(&state.ctx);
    Ok(Json(InvoicePage {
        data: invoices
            .into_iter()
            .map(|i| invoice_body(i, now, false))
            .collect(),
        meta: page.v3_meta(total),
    }))
}
