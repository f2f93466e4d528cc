//! v1 invoicing: pending lines (`/api/v1/billing/customers/{customerId}/invoices/pending-lines`)
//! and invoices (`/api/v1/billing/invoices…`), the shapes the official
//! OpenMeter SDKs speak. Rules live in `service::invoicing` and
//! `billing::invoice`; this file maps v1's shapes onto them and back.
//!
//! meterpay has no meters, so a line with a usage-based price carries the
//! quantity to bill (`quantity`, marked `x-meterpay-addition`). An issued
//! invoice's `externalIds` also names Stripe's hosted invoice page and PDF
//! (`hostedInvoiceUrl`, `invoicePdfUrl`, additions). What meterpay
//! does not do (discounts, commitments, dynamic prices, feature keys,
//! progressive billing, voiding only part of an invoice) is refused by name.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::AppState;
use super::extract::{ApiJson, path_ulid, query_bool, query_error, query_int};
use super::openapi::UlidParam;
use super::problem::V1Error;
use super::profiles::{AppReference, AppReferences};
use super::schema::{InvoiceExpand, InvoiceOrderBy, InvoiceStatuses, UlidList, V1Order};
use super::tenancy::Namespace;
use super::v1_customers::{AddressV1, UsageAttributionV1};
use super::v1_profiles::{PartyV1, TaxConfigV1, WorkflowV1};
use crate::billing::invoice::{
    Action, Invoice, Line, LineInput, Severity, Status, StatusDetails, ValidationIssue,
};
use crate::billing::money::{self, PaymentTerm, Price, PriceInput, TierInput, TierMode};
use crate::billing::profile::{
    CollectionMethod, DEFAULT_DUE_AFTER, PaymentSettings, TaxConfig, TaxIdentity,
};
use crate::error::{Error, FieldError, Rule, Violations};
use crate::ids::{CustomerId, InvoiceId};
use crate::service::invoicing::{
    self, CustomerUpdate, InvoiceAction, InvoiceUpdate, LineUpdate, PendingLines, WorkflowUpdate,
};
use crate::store::Page;
use crate::store::invoices::{InvoiceOrder, InvoiceQuery};

type Result<T> = std::result::Result<T, V1Error>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/billing/customers/{customerId}/invoices/pending-lines",
            post(create_pending_lines),
        )
        .route("/billing/invoices", get(list))
        .route("/billing/invoices/invoice", post(invoice_pending_lines))
        .route(
            "/billing/invoices/{invoiceId}",
            get(fetch).put(update).delete(remove),
        )
        .route("/billing/invoices/{invoiceId}/advance", post(advance))
        .route("/billing/invoices/{invoiceId}/approve", post(approve))
        .route("/billing/invoices/{invoiceId}/retry", post(retry))
        .route("/billing/invoices/{invoiceId}/void", post(void))
}

// ---------------------------------------------------------------------------
// Shapes: requests

/// `RateCardUsageBasedPrice` (`flat`, `unit`, `tiered`, `package`; `dynamic`
/// is refused).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceV1 {
    /// `flat`, `unit`, `tiered` or `package`.
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: Option<String>,
    #[schema(value_type = Option<String>)]
    pub payment_term: Option<PaymentTerm>,
    #[schema(value_type = Option<String>)]
    pub mode: Option<TierMode>,
    pub tiers: Option<Vec<PriceTierV1>>,
    pub quantity_per_package: Option<String>,
    /// Not supported by meterpay (refused).
    pub minimum_amount: Option<String>,
    /// Not supported by meterpay (refused).
    pub maximum_amount: Option<String>,
    /// `dynamic` prices only (refused with them).
    #[schema(value_type = Option<String>)]
    pub multiplier: Option<Value>,
}

/// `PriceTier`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceTierV1 {
    pub up_to_amount: Option<String>,
    pub flat_price: Option<AmountV1>,
    pub unit_price: Option<AmountV1>,
}

/// `FlatPrice` / `UnitPrice` inside a tier.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct AmountV1 {
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: String,
}

impl PriceV1 {
    fn into_input(self) -> PriceInput {
        let mut unsupported = Vec::new();
        if self.multiplier.is_some() && self.kind != "dynamic" {
            unsupported.push("multiplier".to_owned());
        }
        PriceInput {
            kind: self.kind,
            amount: self.amount,
            payment_term: self.payment_term,
            mode: self.mode,
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
            quantity_per_package: self.quantity_per_package,
            minimum_amount: self.minimum_amount,
            maximum_amount: self.maximum_amount,
            unsupported,
        }
    }
}

/// `InvoiceUsageBasedRateCard`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateCardV1 {
    /// Refused: meterpay has no features.
    pub feature_key: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub tax_config: Option<TaxConfigV1In>,
    pub price: Option<PriceV1>,
    /// Refused: meterpay does not do discounts.
    #[schema(value_type = Option<Object>)]
    pub discounts: Option<Value>,
}

/// `TaxConfig` as requests give it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaxConfigV1In {
    pub behavior: Option<crate::billing::profile::TaxBehavior>,
    pub stripe: Option<crate::billing::profile::StripeTaxConfig>,
    pub custom_invoicing: Option<crate::billing::profile::ExternalInvoicingTaxConfig>,
    pub tax_code_id: Option<String>,
}

impl From<TaxConfigV1In> for TaxConfig {
    fn from(c: TaxConfigV1In) -> Self {
        TaxConfig {
            behavior: c.behavior,
            stripe: c.stripe,
            external_invoicing: c.custom_invoicing,
            tax_code_id: c.tax_code_id,
            tax_code: None,
        }
    }
}

/// `Period`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct PeriodV1 {
    pub from: String,
    pub to: String,
}

/// `InvoicePendingLineCreate` (and `InvoiceLineReplaceUpdate`, which adds `id`).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineV1 {
    /// The line to change (`updateInvoice` only); without it, a new line.
    pub id: Option<String>,
    pub name: String,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    #[schema(value_type = Option<Object>)]
    pub tax_config: Option<TaxConfigV1In>,
    pub period: PeriodV1,
    pub invoice_at: String,
    /// Deprecated in the contract: `rateCard.price` is the same.
    pub price: Option<PriceV1>,
    /// Refused: meterpay has no features.
    pub feature_key: Option<String>,
    pub rate_card: Option<RateCardV1>,
    /// The quantity a usage-based price (unit, tiered, package) bills:
    /// meterpay has no meters, so the caller sends it. A flat price takes none.
    #[schema(extensions(("x-meterpay-addition" = json!(true))), pattern = r"^\-?[0-9]+(\.[0-9]+)?$")]
    pub quantity: Option<String>,
}

impl LineV1 {
    fn into_input(self, field: &str, v: &mut Violations) -> LineInput {
        let rate_card = self.rate_card.unwrap_or_default();
        let price = match (self.price, rate_card.price) {
            (Some(_), Some(card)) => {
                v.push(
                    format!("{field}.price"),
                    Rule::Invalid,
                    "give the price once, as rateCard.price (price is deprecated)",
                );
                Some((format!("{field}.rate_card.price"), card.into_input()))
            }
            (None, Some(card)) => Some((format!("{field}.rate_card.price"), card.into_input())),
            (Some(price), None) => Some((format!("{field}.price"), price.into_input())),
            (None, None) => None,
        };
        let feature_key = match (&self.feature_key, &rate_card.feature_key) {
            (Some(_), _) => Some(format!("{field}.feature_key")),
            (None, Some(_)) => Some(format!("{field}.rate_card.feature_key")),
            _ => None,
        };
        let tax_config = match (self.tax_config, rate_card.tax_config) {
            (_, Some(card)) => Some((format!("{field}.rate_card.tax_config"), card.into())),
            (Some(top), None) => Some((format!("{field}.tax_config"), top.into())),
            (None, None) => None,
        };
        LineInput {
            name: self.name,
            description: self.description,
            metadata: self.metadata,
            period_from: self.period.from,
            period_to: self.period.to,
            invoice_at: self.invoice_at,
            price,
            quantity: self.quantity,
            feature_key,
            discounts: rate_card
                .discounts
                .map(|_| format!("{field}.rate_card.discounts")),
            tax_config,
        }
    }
}

/// `InvoicePendingLineCreateInput`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PendingLinesV1 {
    pub currency: String,
    pub lines: Vec<LineV1>,
}

/// `InvoicePendingLinesActionFiltersInput`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FiltersV1 {
    pub line_ids: Option<Vec<String>>,
}

/// `InvoicePendingLinesActionInput`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceActionV1 {
    pub customer_id: String,
    pub filters: Option<FiltersV1>,
    pub as_of: Option<String>,
    /// `true` is refused: meterpay does not do progressive billing.
    pub progressive_billing_override: Option<bool>,
}

/// `BillingPartyReplaceUpdate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartyUpdateV1 {
    pub key: Option<String>,
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub tax_id: Option<TaxIdentity>,
    pub addresses: Option<Vec<AddressV1>>,
}

/// `InvoiceWorkflowInvoicingSettingsReplaceUpdate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoicingUpdateV1 {
    pub auto_advance: Option<bool>,
    pub draft_period: Option<String>,
    pub due_after: Option<String>,
}

/// `BillingWorkflowPaymentSettings`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentUpdateV1 {
    #[schema(value_type = Option<String>)]
    pub collection_method: Option<CollectionMethod>,
}

/// `InvoiceWorkflowSettingsReplaceUpdate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct WorkflowSettingsUpdateV1 {
    pub invoicing: Option<InvoicingUpdateV1>,
    pub payment: Option<PaymentUpdateV1>,
}

/// `InvoiceWorkflowReplaceUpdate`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct WorkflowUpdateV1 {
    pub workflow: Option<WorkflowSettingsUpdateV1>,
}

/// `InvoiceReplaceUpdate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InvoiceUpdateV1 {
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub supplier: PartyUpdateV1,
    pub customer: PartyUpdateV1,
    pub lines: Vec<LineV1>,
    pub workflow: WorkflowUpdateV1,
}

/// `VoidInvoiceActionInput`: meterpay voids a whole invoice and discards
/// its lines (100%, `discard`, no per-line overrides).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VoidV1 {
    pub action: VoidActionV1,
    pub reason: String,
    #[schema(value_type = Option<Vec<Object>>)]
    pub overrides: Option<Vec<Value>>,
}

/// `VoidInvoiceActionCreate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct VoidActionV1 {
    pub percentage: f64,
    pub action: VoidLineActionV1,
}

/// `VoidInvoiceLineActionCreate`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoidLineActionV1 {
    #[serde(rename = "type")]
    pub kind: String,
    pub next_invoice_at: Option<String>,
}

// ---------------------------------------------------------------------------
// Shapes: responses

/// `InvoiceTotals`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotalsV1 {
    pub amount: String,
    pub charges_total: String,
    pub discounts_total: String,
    pub credits_total: String,
    pub taxes_inclusive_total: String,
    pub taxes_exclusive_total: String,
    pub taxes_total: String,
    pub total: String,
}

impl TotalsV1 {
    fn of(amount: rust_decimal::Decimal) -> TotalsV1 {
        let zero = "0".to_owned();
        TotalsV1 {
            amount: money::format(amount),
            charges_total: zero.clone(),
            discounts_total: zero.clone(),
            credits_total: zero.clone(),
            taxes_inclusive_total: zero.clone(),
            taxes_exclusive_total: zero.clone(),
            taxes_total: zero,
            total: money::format(amount),
        }
    }
}

/// `InvoiceAvailableActionDetails`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionDetailsV1 {
    pub resulting_state: &'static str,
}

/// `InvoiceAvailableActions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AvailableActionsV1 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advance: Option<ActionDetailsV1>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve: Option<ActionDetailsV1>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<ActionDetailsV1>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<ActionDetailsV1>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub void: Option<ActionDetailsV1>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub invoice: Option<Value>,
}

/// `InvoiceStatusDetails`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetailsV1 {
    pub immutable: bool,
    pub failed: bool,
    pub extended_status: &'static str,
    pub available_actions: AvailableActionsV1,
}

impl From<StatusDetails> for StatusDetailsV1 {
    fn from(d: StatusDetails) -> Self {
        let a = d.available_actions;
        let details = |state: Option<&'static str>| {
            state.map(|resulting_state| ActionDetailsV1 { resulting_state })
        };
        StatusDetailsV1 {
            immutable: d.immutable,
            failed: d.failed,
            extended_status: d.extended_status,
            available_actions: AvailableActionsV1 {
                advance: details(a.advance),
                approve: details(a.approve),
                delete: details(a.delete),
                retry: details(a.retry),
                void: details(a.void),
                invoice: a.invoice.then(|| serde_json::json!({})),
            },
        }
    }
}

/// `BillingInvoiceCustomerExtendedDetails`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceCustomerV1 {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub tax_id: Option<TaxIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<AddressV1>>,
    pub usage_attribution: UsageAttributionV1,
}

/// `InvoiceWorkflowSettings`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceWorkflowV1 {
    pub apps: AppReferences,
    pub source_billing_profile_id: String,
    pub workflow: WorkflowV1,
}

/// `ValidationIssue`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationIssueV1 {
    pub id: String,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub updated_at: OffsetDateTime,
    /// `critical` or `warning`.
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub code: String,
    pub component: String,
    pub message: String,
}

impl From<ValidationIssue> for ValidationIssueV1 {
    fn from(i: ValidationIssue) -> Self {
        ValidationIssueV1 {
            id: i.id,
            created_at: i.created_at,
            updated_at: i.created_at,
            severity: severity(i.severity),
            field: i.field,
            code: i.code,
            component: i.component,
            message: i.message,
        }
    }
}

pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
    }
}

/// `InvoiceAppExternalIds`, with where the customer sees and pays the
/// invoice once Stripe finalized it (`hostedInvoiceUrl`, `invoicePdfUrl`:
/// meterpay additions; the contract's object is open to them).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalIdsV1 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invoicing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<String>,
    /// Stripe's hosted invoice page: the invoice, its payment status, and
    /// where the customer pays it or authenticates a payment (3-D Secure).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(extensions(("x-meterpay-addition" = json!(true))), format = "uri")]
    pub hosted_invoice_url: Option<String>,
    /// The invoice as a PDF, as Stripe renders it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(extensions(("x-meterpay-addition" = json!(true))), format = "uri")]
    pub invoice_pdf_url: Option<String>,
}

/// `InvoiceReference`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceReferenceV1 {
    pub id: String,
    pub number: String,
}

/// A price as the line shows it (`RateCardUsageBasedPrice`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceOutV1 {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_term: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Vec<TierOutV1>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity_per_package: Option<String>,
}

/// `PriceTier` (both components always present, `null` when unset).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TierOutV1 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_to_amount: Option<String>,
    pub flat_price: Option<AmountV1>,
    pub unit_price: Option<AmountV1>,
}

pub fn price_v1(price: &Price) -> PriceOutV1 {
    let base = |kind| PriceOutV1 {
        kind,
        amount: None,
        payment_term: None,
        mode: None,
        tiers: None,
        quantity_per_package: None,
    };
    let amount = |kind: &str, a: rust_decimal::Decimal| AmountV1 {
        kind: kind.to_owned(),
        amount: money::format(a),
    };
    match price {
        Price::Flat {
            amount,
            payment_term,
        } => PriceOutV1 {
            amount: Some(money::format(*amount)),
            payment_term: Some(match payment_term {
                PaymentTerm::InAdvance => "in_advance",
                PaymentTerm::InArrears => "in_arrears",
            }),
            ..base("flat")
        },
        Price::Unit { amount } => PriceOutV1 {
            amount: Some(money::format(*amount)),
            ..base("unit")
        },
        Price::Package {
            amount,
            quantity_per_package,
        } => PriceOutV1 {
            amount: Some(money::format(*amount)),
            quantity_per_package: Some(money::format(*quantity_per_package)),
            ..base("package")
        },
        Price::Tiered { mode, tiers } => PriceOutV1 {
            mode: Some(match mode {
                TierMode::Volume => "volume",
                TierMode::Graduated => "graduated",
            }),
            tiers: Some(
                tiers
                    .iter()
                    .map(|t| TierOutV1 {
                        up_to_amount: t.up_to.map(money::format),
                        flat_price: t.flat.map(|a| amount("flat", a)),
                        unit_price: t.unit.map(|a| amount("unit", a)),
                    })
                    .collect(),
            ),
            ..base("tiered")
        },
    }
}

/// `InvoiceUsageBasedRateCard` as the line shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateCardOutV1 {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_config: Option<TaxConfigV1>,
    pub price: PriceOutV1,
}

/// `InvoiceLine` (a usage-based line; flat prices are its `flat` price).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LineOutV1 {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub updated_at: OffsetDateTime,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub deleted_at: Option<OffsetDateTime>,
    pub managed_by: &'static str,
    pub status: &'static str,
    pub invoice: InvoiceReferenceV1,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_config: Option<TaxConfigV1>,
    pub totals: TotalsV1,
    pub period: PeriodV1,
    #[serde(with = "crate::timestamp::serde")]
    pub invoice_at: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<LineExternalIdsV1>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub price: PriceOutV1,
    pub rate_card: RateCardOutV1,
    /// The quantity billed (usage-based prices).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<String>,
}

/// `InvoiceLineAppExternalIds`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LineExternalIdsV1 {
    pub invoicing: String,
}

fn line_v1(line: &Line, number: &str) -> LineOutV1 {
    let tax = line.tax_config.clone().map(TaxConfigV1::from);
    LineOutV1 {
        id: line.id.to_string(),
        name: line.name.clone(),
        description: line.description.clone(),
        metadata: line.metadata.clone(),
        created_at: line.created_at,
        updated_at: line.updated_at,
        deleted_at: line.deleted_at,
        managed_by: "manual",
        status: "valid",
        invoice: InvoiceReferenceV1 {
            id: line.invoice_id.to_string(),
            number: number.to_owned(),
        },
        currency: line.currency.to_string(),
        tax_config: tax.clone(),
        totals: TotalsV1::of(line.amount),
        period: PeriodV1 {
            from: crate::timestamp::format(line.period.from),
            to: crate::timestamp::format(line.period.to),
        },
        invoice_at: line.invoice_at,
        external_ids: line
            .external_id
            .clone()
            .map(|invoicing| LineExternalIdsV1 { invoicing }),
        kind: "usage_based",
        price: price_v1(&line.price),
        rate_card: RateCardOutV1 {
            tax_config: tax,
            price: price_v1(&line.price),
        },
        quantity: line.quantity.map(money::format),
    }
}

/// `Invoice`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceV1 {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub updated_at: OffsetDateTime,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub deleted_at: Option<OffsetDateTime>,
    /// Always `standard`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub supplier: PartyV1,
    pub customer: InvoiceCustomerV1,
    pub number: String,
    pub currency: String,
    pub totals: TotalsV1,
    /// `InvoiceStatus`.
    pub status: &'static str,
    pub status_details: StatusDetailsV1,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<PeriodV1>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub voided_at: Option<OffsetDateTime>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::timestamp::serde::option::serialize"
    )]
    pub sent_to_customer_at: Option<OffsetDateTime>,
    pub workflow: InvoiceWorkflowV1,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineOutV1>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_issues: Option<Vec<ValidationIssueV1>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIdsV1>,
}

/// How an invoice is shown: with lines or not (deleted lines too or not).
#[derive(Debug, Clone, Copy)]
pub struct Expand {
    pub lines: bool,
    pub deleted_lines: bool,
}

pub fn invoice_v1(invoice: Invoice, now: OffsetDateTime, expand: Expand) -> InvoiceV1 {
    let details = invoice.status_details(now);
    // The contract's statuses have no `deleted`: a deleted invoice keeps the
    // status it had, and `deletedAt` and the extended status say it is gone.
    let status = invoice.status.status();
    let lines = expand.lines.then(|| {
        invoice
            .lines
            .iter()
            .flatten()
            .filter(|l| expand.deleted_lines || l.deleted_at.is_none())
            .map(|l| line_v1(l, invoice.display_number()))
            .collect()
    });
    let w = &invoice.workflow;
    let external = &invoice.external;
    InvoiceV1 {
        id: invoice.id.to_string(),
        description: invoice.description.clone(),
        metadata: invoice.metadata.clone(),
        created_at: invoice.created_at,
        updated_at: invoice.updated_at,
        deleted_at: invoice.deleted_at,
        kind: "standard",
        supplier: PartyV1::from(invoice.supplier.clone()),
        customer: InvoiceCustomerV1 {
            id: invoice.customer.id.to_string(),
            key: invoice.customer.key.clone(),
            name: invoice.customer.name.clone(),
            tax_id: invoice.customer.tax_id.clone(),
            addresses: invoice
                .customer
                .billing_address
                .clone()
                .map(|a| vec![AddressV1::from(a)]),
            usage_attribution: UsageAttributionV1 {
                subject_keys: invoice.customer.subject_keys.clone(),
            },
        },
        number: invoice.display_number().to_owned(),
        currency: invoice.currency.to_string(),
        totals: TotalsV1::of(invoice.totals.amount),
        status: status.as_str(),
        status_details: details.into(),
        issued_at: invoice.issued_at,
        draft_until: invoice.draft_until,
        due_at: invoice.due_at,
        period: invoice.period.map(|p| PeriodV1 {
            from: crate::timestamp::format(p.from),
            to: crate::timestamp::format(p.to),
        }),
        voided_at: invoice.voided_at,
        sent_to_customer_at: invoice.sent_to_customer_at,
        workflow: InvoiceWorkflowV1 {
            apps: AppReferences {
                tax: AppReference {
                    id: w.tax_app_id.to_string(),
                },
                invoicing: AppReference {
                    id: w.invoicing_app_id.to_string(),
                },
                payment: AppReference {
                    id: w.payment_app_id.to_string(),
                },
            },
            source_billing_profile_id: w.source_profile_id.to_string(),
            workflow: WorkflowV1::from(w.workflow.clone()),
        },
        lines,
        validation_issues: (!invoice.validation_issues.is_empty()).then(|| {
            invoice
                .validation_issues
                .iter()
                .cloned()
                .map(ValidationIssueV1::from)
                .collect()
        }),
        external_ids: (external.invoice_id.is_some() || external.payment_id.is_some()).then(|| {
            ExternalIdsV1 {
                invoicing: external.invoice_id.clone(),
                payment: external.payment_id.clone(),
                hosted_invoice_url: external.hosted_url.clone(),
                invoice_pdf_url: external.pdf_url.clone(),
            }
        }),
    }
}

/// `InvoicePendingLineCreateResponse`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingLinesResultV1 {
    pub lines: Vec<LineOutV1>,
    pub invoice: InvoiceV1,
    pub is_invoice_new: bool,
}

/// `InvoicePaginatedResponse`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvoicePageV1 {
    pub total_count: u64,
    pub page: u64,
    pub page_size: u64,
    pub items: Vec<InvoiceV1>,
}

// ---------------------------------------------------------------------------
// Handlers

const WITH_LINES: Expand = Expand {
    lines: true,
    deleted_lines: false,
};

#[utoipa::path(
    post,
    path = "/api/v1/billing/customers/{customerId}/invoices/pending-lines",
    operation_id = "createPendingInvoiceLine",
    summary = "Create pending line items",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("customerId" = inline(UlidParam), Path)),
    request_body = PendingLinesV1,
    responses((status = 201, body = PendingLinesResultV1), (status = 400), (status = 404), (status = 410), (status = 503))
)]
async fn create_pending_lines(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(customer_id): Path<String>,
    ApiJson(body): ApiJson<PendingLinesV1>,
) -> Result<(StatusCode, Json<PendingLinesResultV1>)> {
    let customer_id: CustomerId = path_ulid("customerId", &customer_id)?;
    let mut v = Violations::default();
    let lines = body
        .lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let field = format!("lines[{i}]");
            if line.id.is_some() {
                v.push(
                    format!("{field}.id"),
                    Rule::UnknownProperty,
                    "a new line gets its id from meterpay",
                );
            }
            line.into_input(&field, &mut v)
        })
        .collect();
    v.into_result()?;
    let result = invoicing::create_pending_lines(
        &state.ctx,
        &ns,
        customer_id,
        PendingLines {
            currency: body.currency,
            lines,
        },
    )
    .await?;
    let now = invoicing::now(&state.ctx);
    let new_lines = result
        .invoice
        .lines
        .iter()
        .flatten()
        .filter(|l| result.lines.contains(&l.id))
        .map(|l| line_v1(l, result.invoice.display_number()))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(PendingLinesResultV1 {
            lines: new_lines,
            invoice: invoice_v1(result.invoice, now, WITH_LINES),
            is_invoice_new: result.is_new,
        }),
    ))
}

#[utoipa::path(
    post,
    path = "/api/v1/billing/invoices/invoice",
    operation_id = "invoicePendingLinesAction",
    summary = "Invoice a customer based on the pending line items",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    request_body = InvoiceActionV1,
    responses((status = 201, body = Vec<InvoiceV1>), (status = 400), (status = 410), (status = 503))
)]
async fn invoice_pending_lines(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    ApiJson(body): ApiJson<InvoiceActionV1>,
) -> Result<(StatusCode, Json<Vec<InvoiceV1>>)> {
    let invoices = invoicing::invoice_pending_lines(
        &state.ctx,
        &ns,
        InvoiceAction {
            customer_id: body.customer_id,
            line_ids: body.filters.and_then(|f| f.line_ids),
            as_of: body.as_of,
            progressive_billing_override: body.progressive_billing_override,
        },
    )
    .await?;
    let now = invoicing::now(&state.ctx);
    Ok((
        StatusCode::CREATED,
        Json(
            invoices
                .into_iter()
                .map(|i| invoice_v1(i, now, WITH_LINES))
                .collect(),
        ),
    ))
}

/// `InvoiceExpand`: what `expand` may name.
pub const INVOICE_EXPAND: [&str; 3] = ["lines", "preceding", "workflow.apps"];

/// `expand` (`lines`, `preceding`, `workflow.apps`) and `includeDeletedLines`.
fn expand_of(values: &[String], field: &str) -> std::result::Result<bool, FieldError> {
    let mut lines = false;
    for value in values {
        // Every item names something: an empty one is refused, not skipped.
        for item in value.split(',') {
            match item {
                "lines" => lines = true,
                other if INVOICE_EXPAND.contains(&other) => {}
                other => {
                    return Err(query_error(
                        field,
                        Rule::Enum(INVOICE_EXPAND.map(str::to_owned).to_vec()),
                        format!("[{other}] is not one of the allowed values"),
                    ));
                }
            }
        }
    }
    Ok(lines)
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn time_param(name: &str, value: &str) -> std::result::Result<OffsetDateTime, FieldError> {
    let mut v = Violations::default();
    crate::billing::invoice::parse_time(&mut v, name, value).ok_or_else(|| {
        query_error(
            name,
            Rule::IsDateTime,
            "must be an RFC 3339 date-time such as 2023-01-01T01:01:01.001Z",
        )
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/billing/invoices/{invoiceId}",
    operation_id = "getInvoice",
    summary = "Get an invoice",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path), ("expand" = Option<InvoiceExpand>, Query, description = "lines (the default), preceding, workflow.apps"), ("includeDeletedLines" = Option<bool>, Query)),
    responses((status = 200, body = InvoiceV1), (status = 400), (status = 404), (status = 503))
)]
async fn fetch(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<InvoiceV1>> {
    let id: InvoiceId = path_ulid("invoiceId", &id)?;
    let mut expand = Vec::new();
    let mut deleted_lines = false;
    let mut errors = Vec::new();
    for (name, value) in query_pairs(raw.as_deref()) {
        let outcome = match name.as_str() {
            "expand" => {
                expand.push(value);
                Ok(())
            }
            "includeDeletedLines" => query_bool(&name, &value).map(|b| deleted_lines = b),
            _ => Err(query_error(
                &name,
                Rule::UnknownProperty,
                "is not a known query parameter; use expand or includeDeletedLines",
            )),
        };
        if let Err(e) = outcome {
            errors.push(e);
        }
    }
    // The contract's default expands lines.
    let lines = if expand.is_empty() {
        Ok(true)
    } else {
        expand_of(&expand, "expand")
    };
    let lines = match lines {
        Ok(l) => l,
        Err(e) => {
            errors.push(e);
            false
        }
    };
    if !errors.is_empty() {
        return Err(Error::Invalid(errors).into());
    }
    let invoice = invoicing::get(&state.ctx, &ns, id).await?;
    let now = invoicing::now(&state.ctx);
    Ok(Json(invoice_v1(
        invoice,
        now,
        Expand {
            lines,
            deleted_lines,
        },
    )))
}

/// `InvoiceOrderBy` and the store's order.
pub const INVOICE_ORDER_BY: [(&str, InvoiceOrder); 6] = [
    ("customer.name", InvoiceOrder::CustomerName),
    ("issuedAt", InvoiceOrder::IssuedAt),
    ("status", InvoiceOrder::Status),
    ("createdAt", InvoiceOrder::CreatedAt),
    ("updatedAt", InvoiceOrder::UpdatedAt),
    ("periodStart", InvoiceOrder::PeriodStart),
];

fn parse_list(raw: Option<&str>) -> std::result::Result<(InvoiceQuery, bool), Error> {
    let mut q = InvoiceQuery::new(Page {
        number: 1,
        size: super::page::V1_DEFAULT_SIZE,
    });
    let mut expand = Vec::new();
    let mut errors = Vec::new();
    let mut descending = false;
    let mut order = InvoiceOrder::CreatedAt;
    for (name, value) in query_pairs(raw) {
        // Statuses and customers: every item names one (an empty item is
        // refused, as the document says); extended statuses are free text.
        let items = || value.split(',').map(str::to_owned).collect::<Vec<_>>();
        let outcome: std::result::Result<(), FieldError> = match name.as_str() {
            "statuses" => items()
                .into_iter()
                .try_for_each(|s| match Status::parse(&s) {
                    Some(status) => {
                        q.statuses.push(status);
                        Ok(())
                    }
                    None => Err(query_error(
                        &name,
                        Rule::Enum(Status::ALL.iter().map(|s| s.as_str().to_owned()).collect()),
                        format!("[{s}] is not one of the allowed values"),
                    )),
                }),
            "extendedStatuses" => {
                q.extended_statuses
                    .extend(items().into_iter().filter(|s| !s.is_empty()));
                Ok(())
            }
            "customers" => items().into_iter().try_for_each(|c| {
                match super::extract::parse_ulid(&c) {
                    Some(id) => {
                        q.customers.push(CustomerId::from(id));
                        Ok(())
                    }
                    None => Err(query_error(
                        &name,
                        Rule::MatchesRegex,
                        format!(
                            "[{c}] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)"
                        ),
                    )),
                }
            }),
            "issuedAfter" => time_param(&name, &value).map(|t| q.issued.from = Some(t)),
            "issuedBefore" => time_param(&name, &value).map(|t| q.issued.to = Some(t)),
            "createdAfter" => time_param(&name, &value).map(|t| q.created.from = Some(t)),
            "createdBefore" => time_param(&name, &value).map(|t| q.created.to = Some(t)),
            "periodStartAfter" => time_param(&name, &value).map(|t| q.period_start.from = Some(t)),
            "periodStartBefore" => time_param(&name, &value).map(|t| q.period_start.to = Some(t)),
            "includeDeleted" => query_bool(&name, &value).map(|b| q.include_deleted = b),
            "expand" => {
                expand.push(value.clone());
                Ok(())
            }
            "page" => {
                query_int(&name, &value, 1, super::page::MAX_NUMBER).map(|n| q.page.number = n)
            }
            "pageSize" => {
                query_int(&name, &value, 1, super::page::MAX_SIZE).map(|n| q.page.size = n)
            }
            "order" => match value.to_ascii_uppercase().as_str() {
                "ASC" => {
                    descending = false;
                    Ok(())
                }
                "DESC" => {
                    descending = true;
                    Ok(())
                }
                _ => Err(query_error(
                    &name,
                    Rule::Enum(vec!["ASC".into(), "DESC".into()]),
                    format!("[{value}] is not one of the allowed values"),
                )),
            },
            "orderBy" => match INVOICE_ORDER_BY.iter().find(|(n, _)| *n == value) {
                Some((_, o)) => {
                    order = *o;
                    Ok(())
                }
                None => Err(query_error(
                    &name,
                    Rule::Enum(
                        INVOICE_ORDER_BY
                            .iter()
                            .map(|(n, _)| (*n).to_owned())
                            .collect(),
                    ),
                    format!("[{value}] is not one of the allowed values"),
                )),
            },
            _ => Err(query_error(
                &name,
                Rule::UnknownProperty,
                "is not a known query parameter; use statuses, extendedStatuses, customers, \
                 issuedAfter, issuedBefore, periodStartAfter, periodStartBefore, createdAfter, \
                 createdBefore, includeDeleted, expand, page, pageSize, order or orderBy",
            )),
        };
        if let Err(e) = outcome {
            errors.push(e);
        }
    }
    let lines = match expand_of(&expand, "expand") {
        Ok(l) => l,
        Err(e) => {
            errors.push(e);
            false
        }
    };
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    q.order = (order, descending);
    q.with_lines = lines;
    Ok((q, lines))
}

#[utoipa::path(
    get,
    path = "/api/v1/billing/invoices",
    operation_id = "listInvoices",
    summary = "List invoices",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(
        ("statuses" = Option<InvoiceStatuses>, Query, description = "Short statuses (gathering, draft, issuing, issued, payment_processing, overdue, paid, uncollectible, voided)"),
        ("extendedStatuses" = Option<Vec<String>>, Query, description = "Extended statuses (`draft.created`, …); any value is taken"),
        ("issuedAfter" = Option<String>, Query, format = DateTime),
        ("issuedBefore" = Option<String>, Query, format = DateTime),
        ("periodStartAfter" = Option<String>, Query, format = DateTime),
        ("periodStartBefore" = Option<String>, Query, format = DateTime),
        ("createdAfter" = Option<String>, Query, format = DateTime),
        ("createdBefore" = Option<String>, Query, format = DateTime),
        ("expand" = Option<InvoiceExpand>, Query, description = "lines, preceding, workflow.apps"),
        ("customers" = Option<UlidList>, Query),
        ("includeDeleted" = Option<bool>, Query),
        ("page" = Option<u64>, Query, minimum = 1, maximum = 4294967295u64),
        ("pageSize" = Option<u64>, Query, minimum = 1, maximum = 1000),
        ("order" = Option<V1Order>, Query, description = "ASC or DESC"),
        ("orderBy" = Option<InvoiceOrderBy>, Query, description = "customer.name, issuedAt, status, createdAt, updatedAt or periodStart"),
    ),
    responses((status = 200, body = InvoicePageV1), (status = 400), (status = 503))
)]
async fn list(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    RawQuery(raw): RawQuery,
) -> Result<Json<InvoicePageV1>> {
    let (q, lines) = parse_list(raw.as_deref())?;
    let (invoices, total) = invoicing::list(&state.ctx, &ns, &q).await?;
    let now = invoicing::now(&state.ctx);
    let expand = Expand {
        lines,
        deleted_lines: false,
    };
    Ok(Json(InvoicePageV1 {
        total_count: total,
        page: q.page.number,
        page_size: q.page.size,
        items: invoices
            .into_iter()
            .map(|i| invoice_v1(i, now, expand))
            .collect(),
    }))
}

#[utoipa::path(
    put,
    path = "/api/v1/billing/invoices/{invoiceId}",
    operation_id = "updateInvoice",
    summary = "Update an invoice",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    request_body = InvoiceUpdateV1,
    responses((status = 200, body = InvoiceV1), (status = 400), (status = 404), (status = 503))
)]
async fn update(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InvoiceUpdateV1>,
) -> Result<Json<InvoiceV1>> {
    let id: InvoiceId = path_ulid("invoiceId", &id)?;
    let mut v = Violations::default();
    let supplier = PartyV1 {
        id: None,
        key: body.supplier.key,
        name: body.supplier.name,
        tax_id: body.supplier.tax_id,
        addresses: body.supplier.addresses,
    }
    .into_party(&mut v);
    let customer_addresses = body.customer.addresses.unwrap_or_default();
    if customer_addresses.len() > 1 {
        v.push(
            "customer.addresses",
            Rule::MaxItems(1),
            "holds at most one address (the billing address)",
        );
    }
    let customer = CustomerUpdate {
        name: body.customer.name,
        key: body.customer.key,
        tax_id: body.customer.tax_id,
        billing_address: customer_addresses.into_iter().next().map(Into::into),
    };
    let settings = body.workflow.workflow.unwrap_or_default();
    let invoicing_settings = settings.invoicing.unwrap_or_default();
    let payment = match settings.payment.and_then(|p| p.collection_method) {
        None => None,
        Some(CollectionMethod::ChargeAutomatically) => {
            if let Some(due) = &invoicing_settings.due_after
                && due != DEFAULT_DUE_AFTER
            {
                v.push(
                    "workflow.workflow.invoicing.due_after",
                    Rule::Invalid,
                    format!(
                        "[{due}] applies only with collectionMethod send_invoice; with \
                         charge_automatically meterpay keeps no due period"
                    ),
                );
            }
            Some(PaymentSettings::ChargeAutomatically)
        }
        Some(CollectionMethod::SendInvoice) => Some(PaymentSettings::SendInvoice {
            due_after: invoicing_settings
                .due_after
                .clone()
                .unwrap_or_else(|| DEFAULT_DUE_AFTER.to_owned()),
        }),
    };
    let lines = body
        .lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let field = format!("lines[{i}]");
            LineUpdate {
                id: line.id.clone(),
                line: line.into_input(&field, &mut v),
                field,
                keep_quantity: false,
            }
        })
        .collect();
    v.into_result()?;
    let invoice = invoicing::update(
        &state.ctx,
        &ns,
        id,
        InvoiceUpdate {
            description: body.description,
            metadata: body.metadata,
            supplier: Some(supplier),
            customer: Some(customer),
            workflow: Some(WorkflowUpdate {
                auto_advance: invoicing_settings.auto_advance,
                draft_period: invoicing_settings.draft_period,
                payment,
            }),
            lines: Some(lines),
        },
    )
    .await
    .map_err(|e| {
        super::v1_names::rename_fields(
            e,
            &[
                ("workflow.invoicing", "workflow.workflow.invoicing"),
                (
                    "workflow.payment.due_after",
                    "workflow.workflow.invoicing.due_after",
                ),
            ],
        )
    })?;
    let now = invoicing::now(&state.ctx);
    Ok(Json(invoice_v1(invoice, now, WITH_LINES)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/billing/invoices/{invoiceId}",
    operation_id = "deleteInvoice",
    summary = "Delete an invoice",
    tag = "OpenMeter v1",
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
    invoicing::delete(&state.ctx, &ns, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn action(state: &AppState, ns: &str, id: &str, action: Action) -> Result<Json<InvoiceV1>> {
    let id: InvoiceId = path_ulid("invoiceId", id)?;
    let invoice = invoicing::act(&state.ctx, ns, id, action).await?;
    let now = invoicing::now(&state.ctx);
    Ok(Json(invoice_v1(invoice, now, WITH_LINES)))
}

#[utoipa::path(
    post,
    path = "/api/v1/billing/invoices/{invoiceId}/advance",
    operation_id = "advanceInvoiceAction",
    summary = "Advance the invoice's state to the next status",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    responses((status = 200, body = InvoiceV1), (status = 400), (status = 404), (status = 503))
)]
async fn advance(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<InvoiceV1>> {
    action(&state, &ns, &id, Action::Advance).await
}

#[utoipa::path(
    post,
    path = "/api/v1/billing/invoices/{invoiceId}/approve",
    operation_id = "approveInvoiceAction",
    summary = "Send the invoice to the customer",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    responses((status = 200, body = InvoiceV1), (status = 400), (status = 404), (status = 503))
)]
async fn approve(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<InvoiceV1>> {
    action(&state, &ns, &id, Action::Approve).await
}

#[utoipa::path(
    post,
    path = "/api/v1/billing/invoices/{invoiceId}/retry",
    operation_id = "retryInvoiceAction",
    summary = "Retry advancing the invoice after a failed attempt.",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    responses((status = 200, body = InvoiceV1), (status = 400), (status = 404), (status = 503))
)]
async fn retry(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
) -> Result<Json<InvoiceV1>> {
    action(&state, &ns, &id, Action::Retry).await
}

#[utoipa::path(
    post,
    path = "/api/v1/billing/invoices/{invoiceId}/void",
    operation_id = "voidInvoiceAction",
    summary = "Void an invoice",
    tag = "OpenMeter v1",
    security(("bearer" = [])),
    params(("invoiceId" = inline(UlidParam), Path)),
    request_body = VoidV1,
    responses((status = 200, body = InvoiceV1), (status = 400), (status = 404), (status = 503))
)]
async fn void(
    State(state): State<AppState>,
    Namespace(ns): Namespace,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<VoidV1>,
) -> Result<Json<InvoiceV1>> {
    let mut v = Violations::default();
    if body.action.percentage != 100.0 {
        v.push(
            "action.percentage",
            Rule::Invalid,
            "meterpay voids whole invoices only: give 100",
        );
    }
    if body.action.action.kind != "discard" {
        v.push(
            "action.action.type",
            Rule::Invalid,
            "meterpay discards the lines of a voided invoice: give discard (bill again with new \
             pending lines)",
        );
    }
    if body.overrides.as_ref().is_some_and(|o| !o.is_empty()) {
        v.push(
            "overrides",
            Rule::Invalid,
            "per-line void actions are not supported by meterpay; leave overrides out",
        );
    }
    if body.reason.trim().is_empty() {
        v.push(
            "reason",
            Rule::Required,
            "must say why the invoice is voided",
        );
    }
    v.into_result()?;
    action(&state, &ns, &id, Action::Void).await
}
