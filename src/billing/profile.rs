//! Billing profiles: who bills (the supplier), how (the workflow), and with
//! which apps (tax, invoicing, payment). A namespace has at most one default
//! profile; customers without a profile of their own bill with it.
//!
//! The stored supplier and workflow have every default of the contract filled
//! in, so they are returned as they are stored. Field names in errors are the
//! v3 request paths (`workflow.invoicing.draft_period`).

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::customer::{Address, validate_labels};
use crate::error::{Error, FieldError, Result, Rule, Violations};
use crate::ids::{AppId, ProfileId};

/// `BillingParty`: a person or business entity. Every member is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Party {
    /// `id` is read-only in the contract: accepted in requests and ignored
    /// (meterpay does not give suppliers ids of their own).
    #[serde(default, skip_serializing)]
    pub id: Option<IgnoredAny>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<TaxIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<PartyAddresses>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxIdentity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyAddresses {
    pub billing_address: Address,
}

/// `BillingWorkflow` with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workflow {
    pub collection: CollectionSettings,
    pub invoicing: InvoicingSettings,
    pub payment: PaymentSettings,
    pub tax: TaxSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionSettings {
    pub alignment: Alignment,
    /// ISO 8601 duration.
    pub interval: String,
}

/// `BillingWorkflowCollectionAlignment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Alignment {
    Subscription,
    Anchored { recurring_period: RecurringPeriod },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecurringPeriod {
    #[serde(with = "crate::timestamp::serde")]
    pub anchor: OffsetDateTime,
    /// ISO 8601 duration, never zero.
    pub interval: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicingSettings {
    pub auto_advance: bool,
    /// ISO 8601 duration.
    pub draft_period: String,
    pub progressive_billing: bool,
    pub subscription_end_proration_mode: ProrationMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProrationMode {
    BillFullPeriod,
    BillActualPeriod,
}

/// `BillingWorkflowPaymentSettings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "collection_method", rename_all = "snake_case")]
pub enum PaymentSettings {
    ChargeAutomatically,
    SendInvoice {
        /// ISO 8601 duration.
        due_after: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxSettings {
    pub enabled: bool,
    pub enforced: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_tax_config: Option<TaxConfig>,
}

/// `BillingTaxConfig`, as given and as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<TaxBehavior>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe: Option<StripeTaxConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_invoicing: Option<ExternalInvoicingTaxConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_code: Option<TaxCodeReference>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxBehavior {
    Inclusive,
    Exclusive,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeTaxConfig {
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalInvoicingTaxConfig {
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxCodeReference {
    pub id: String,
}

pub const DEFAULT_COLLECTION_INTERVAL: &str = "PT1H";
pub const DEFAULT_DRAFT_PERIOD: &str = "P0D";
pub const DEFAULT_DUE_AFTER: &str = "P30D";

impl Default for Workflow {
    /// Every `default:` of the contract's workflow schemas. The payment
    /// settings have no default there; meterpay collects payment methods to
    /// charge them, so it defaults to `charge_automatically` (as upstream does).
    fn default() -> Self {
        Workflow {
            collection: CollectionSettings {
                alignment: Alignment::Subscription,
                interval: DEFAULT_COLLECTION_INTERVAL.to_owned(),
            },
            invoicing: InvoicingSettings {
                auto_advance: true,
                draft_period: DEFAULT_DRAFT_PERIOD.to_owned(),
                progressive_billing: true,
                subscription_end_proration_mode: ProrationMode::BillActualPeriod,
            },
            payment: PaymentSettings::ChargeAutomatically,
            tax: TaxSettings {
                enabled: true,
                enforced: false,
                default_tax_config: None,
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Request shapes: every member optional, defaults applied by `validate`.
// Variants (alignment, payment) are flat structs with a typed discriminator so
// that an error names the exact member at fault.

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowInput {
    pub collection: Option<CollectionInput>,
    pub invoicing: Option<InvoicingInput>,
    pub payment: Option<PaymentInput>,
    pub tax: Option<TaxInput>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionInput {
    pub alignment: Option<AlignmentInput>,
    pub interval: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlignmentKind {
    Subscription,
    Anchored,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlignmentInput {
    #[serde(rename = "type")]
    pub kind: AlignmentKind,
    pub recurring_period: Option<RecurringPeriodInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurringPeriodInput {
    pub anchor: String,
    pub interval: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvoicingInput {
    pub auto_advance: Option<bool>,
    pub draft_period: Option<String>,
    pub progressive_billing: Option<bool>,
    pub subscription_end_proration_mode: Option<ProrationMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionMethod {
    ChargeAutomatically,
    SendInvoice,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    pub collection_method: CollectionMethod,
    pub due_after: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxInput {
    pub enabled: Option<bool>,
    pub enforced: Option<bool>,
    pub default_tax_config: Option<TaxConfig>,
}

/// The apps a profile uses, by role. Fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppRefs {
    pub tax: AppId,
    pub invoicing: AppId,
    pub payment: AppId,
}

impl AppRefs {
    /// One app in every role.
    pub fn single(app: AppId) -> AppRefs {
        AppRefs {
            tax: app,
            invoicing: app,
            payment: app,
        }
    }

    /// (field, app) for each role, in the contract's order.
    pub fn roles(&self) -> [(&'static str, AppId); 3] {
        [
            ("apps.tax.id", self.tax),
            ("apps.invoicing.id", self.invoicing),
            ("apps.payment.id", self.payment),
        ]
    }

    /// The distinct apps referenced.
    pub fn distinct(&self) -> Vec<AppId> {
        let mut ids = vec![self.tax, self.invoicing, self.payment];
        ids.sort();
        ids.dedup();
        ids
    }
}

/// Why an app reference was refused: `None` for an app unknown in the
/// namespace (another namespace's apps are unknown here), `Some(true)` for
/// one that was uninstalled.
pub fn app_ref_error(field: &str, app: AppId, uninstalled: bool) -> FieldError {
    if uninstalled {
        FieldError::new(
            field,
            Rule::Invalid,
            format!("app [{app}] was uninstalled; reference an installed app"),
        )
    } else {
        FieldError::new(
            field,
            Rule::Invalid,
            format!("app [{app}] does not exist in this namespace"),
        )
    }
}

/// A stored billing profile.
#[derive(Debug, Clone, PartialEq)]
pub struct BillingProfile {
    pub id: ProfileId,
    pub namespace: String,
    pub name: String,
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub supplier: Party,
    pub workflow: Workflow,
    pub tax_app_id: AppId,
    pub invoicing_app_id: AppId,
    pub payment_app_id: AppId,
    pub is_default: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
}

impl BillingProfile {
    pub fn apps(&self) -> AppRefs {
        AppRefs {
            tax: self.tax_app_id,
            invoicing: self.invoicing_app_id,
            payment: self.payment_app_id,
        }
    }

    /// Refuses changes to a deleted profile (410).
    pub fn ensure_live(&self) -> Result<()> {
        match self.deleted_at {
            Some(_) => Err(Error::Gone(format!(
                "billing profile [{}] was deleted; it can be read but not changed",
                self.id
            ))),
            None => Ok(()),
        }
    }

    /// Why `default: false` on the default profile is refused (400): a
    /// namespace that has a default keeps one.
    pub fn cannot_unset_default(id: ProfileId) -> FieldError {
        FieldError::new(
            "default",
            Rule::Invalid,
            format!(
                "billing profile [{id}] is the default profile and stays the default; \
                 make another profile the default instead"
            ),
        )
    }

    /// The 409 for deleting the default profile.
    pub fn cannot_delete_default(id: ProfileId) -> Error {
        Error::Conflict {
            field: None,
            detail: format!(
                "billing profile [{id}] is the default profile and cannot be deleted; \
                 make another profile the default first"
            ),
        }
    }
}

/// What a client sets on a profile (create and update alike).
#[derive(Debug, Clone)]
pub struct ProfileFields {
    pub name: String,
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub supplier: Party,
    pub workflow: WorkflowInput,
    pub is_default: bool,
}

/// Validated fields with defaults filled, ready to store.
#[derive(Debug, Clone)]
pub struct ValidProfile {
    pub name: String,
    pub description: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub supplier: Party,
    pub workflow: Workflow,
    pub is_default: bool,
}

impl ProfileFields {
    /// Checks every field into `v` and returns the profile with defaults
    /// filled (meaningful only when `v` stays empty). `current_tax` is the
    /// stored default tax config when updating: deprecated tax codes may be
    /// kept or removed, not added or changed.
    pub fn check(self, v: &mut Violations, current_tax: Option<&TaxConfig>) -> ValidProfile {
        v.len_between("name", &self.name, 1, 256);
        if let Some(description) = &self.description {
            v.max_len("description", description, 1024);
        }
        if let Some(labels) = &self.labels {
            validate_labels(v, labels);
        }
        check_party(v, "supplier", &self.supplier);
        let workflow = check_workflow(v, self.workflow, current_tax);
        ValidProfile {
            name: self.name,
            description: self.description,
            labels: self.labels,
            supplier: Party {
                id: None,
                ..self.supplier
            },
            workflow,
            is_default: self.is_default,
        }
    }
}

fn check_party(v: &mut Violations, field: &str, party: &Party) {
    if let Some(key) = &party.key {
        v.len_between(&format!("{field}.key"), key, 1, 256);
    }
    if let Some(code) = party.tax_id.as_ref().and_then(|t| t.code.as_ref()) {
        v.len_between(&format!("{field}.tax_id.code"), code, 1, 32);
    }
    if let Some(country) = party
        .addresses
        .as_ref()
        .and_then(|a| a.billing_address.country.as_ref())
        && !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()))
    {
        v.push(
            format!("{field}.addresses.billing_address.country"),
            Rule::MatchesRegex,
            "must be an ISO 3166-1 alpha-2 country code such as US",
        );
    }
}

const DURATION_HINT: &str = "must be an ISO 8601 duration such as P1D, PT1H or P1M";

/// A duration member: given and valid, given and invalid (reported), or the default.
fn duration(v: &mut Violations, field: &str, given: Option<String>, default: &str) -> String {
    match given {
        None => default.to_owned(),
        Some(text) => {
            if iso_duration_is_zero(&text).is_none() {
                v.push(field, Rule::MatchesRegex, DURATION_HINT);
            }
            text
        }
    }
}

fn check_workflow(
    v: &mut Violations,
    input: WorkflowInput,
    current_tax: Option<&TaxConfig>,
) -> Workflow {
    let defaults = Workflow::default();

    let collection = input.collection.unwrap_or_default();
    let alignment = match collection.alignment {
        None => defaults.collection.alignment,
        Some(AlignmentInput {
            kind: AlignmentKind::Subscription,
            recurring_period,
        }) => {
            if recurring_period.is_some() {
                v.push(
                    "workflow.collection.alignment.recurring_period",
                    Rule::UnknownProperty,
                    "is only allowed with alignment type [anchored]",
                );
            }
            Alignment::Subscription
        }
        Some(AlignmentInput {
            kind: AlignmentKind::Anchored,
            recurring_period: None,
        }) => {
            v.push(
                "workflow.collection.alignment.recurring_period",
                Rule::Required,
                "is required with alignment type [anchored]",
            );
            Alignment::Subscription
        }
        Some(AlignmentInput {
            kind: AlignmentKind::Anchored,
            recurring_period: Some(period),
        }) => {
            let field = "workflow.collection.alignment.recurring_period";
            let anchor = match OffsetDateTime::parse(
                &period.anchor,
                &time::format_description::well_known::Rfc3339,
            ) {
                // In UTC, to the microsecond, as every stored timestamp.
                Ok(at) => {
                    let at = at.to_offset(time::UtcOffset::UTC);
                    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
                        .unwrap_or(at)
                }
                Err(_) => {
                    v.push(
                        format!("{field}.anchor"),
                        Rule::IsDateTime,
                        "must be an RFC 3339 date-time such as 2023-01-01T01:01:01.001Z",
                    );
                    OffsetDateTime::UNIX_EPOCH
                }
            };
            match iso_duration_is_zero(&period.interval) {
                None => v.push(
                    format!("{field}.interval"),
                    Rule::MatchesRegex,
                    DURATION_HINT,
                ),
                Some(true) => v.push(
                    format!("{field}.interval"),
                    Rule::Invalid,
                    "must be longer than zero",
                ),
                Some(false) => {}
            }
            Alignment::Anchored {
                recurring_period: RecurringPeriod {
                    anchor,
                    interval: period.interval,
                },
            }
        }
    };
    let interval = duration(
        v,
        "workflow.collection.interval",
        collection.interval,
        DEFAULT_COLLECTION_INTERVAL,
    );

    let invoicing = input.invoicing.unwrap_or_default();
    let invoicing = InvoicingSettings {
        auto_advance: invoicing
            .auto_advance
            .unwrap_or(defaults.invoicing.auto_advance),
        draft_period: duration(
            v,
            "workflow.invoicing.draft_period",
            invoicing.draft_period,
            DEFAULT_DRAFT_PERIOD,
        ),
        progressive_billing: invoicing
            .progressive_billing
            .unwrap_or(defaults.invoicing.progressive_billing),
        subscription_end_proration_mode: invoicing
            .subscription_end_proration_mode
            .unwrap_or(defaults.invoicing.subscription_end_proration_mode),
    };

    let payment = match input.payment {
        None => defaults.payment,
        Some(PaymentInput {
            collection_method: CollectionMethod::ChargeAutomatically,
            due_after,
        }) => {
            if due_after.is_some() {
                v.push(
                    "workflow.payment.due_after",
                    Rule::UnknownProperty,
                    "is only allowed with collection method [send_invoice]",
                );
            }
            PaymentSettings::ChargeAutomatically
        }
        Some(PaymentInput {
            collection_method: CollectionMethod::SendInvoice,
            due_after,
        }) => PaymentSettings::SendInvoice {
            due_after: duration(
                v,
                "workflow.payment.due_after",
                due_after,
                DEFAULT_DUE_AFTER,
            ),
        },
    };

    let tax = input.tax.unwrap_or_default();
    if let Some(config) = &tax.default_tax_config {
        check_tax_config(v, config, current_tax);
    }
    let tax = TaxSettings {
        enabled: tax.enabled.unwrap_or(defaults.tax.enabled),
        enforced: tax.enforced.unwrap_or(defaults.tax.enforced),
        default_tax_config: tax.default_tax_config,
    };

    Workflow {
        collection: CollectionSettings {
            alignment,
            interval,
        },
        invoicing,
        payment,
        tax,
    }
}

/// Tax codes on a profile's default tax config are deprecated in the
/// contract: they "can no longer be added or changed" (the organization's
/// default tax code applies); existing values may be kept or removed, and
/// `behavior` is fully supported.
fn check_tax_config(v: &mut Violations, config: &TaxConfig, current: Option<&TaxConfig>) {
    let field = "workflow.tax.default_tax_config";
    let reason = "is deprecated: a tax code can no longer be added to or changed on a billing \
                  profile (the organization's default tax code applies); remove it";
    let current = current.cloned().unwrap_or_default();
    if config.stripe.is_some() && config.stripe != current.stripe {
        v.push(format!("{field}.stripe"), Rule::Invalid, reason);
    }
    if config.external_invoicing.is_some()
        && config.external_invoicing != current.external_invoicing
    {
        v.push(format!("{field}.external_invoicing"), Rule::Invalid, reason);
    }
    if config.tax_code_id.is_some() && config.tax_code_id != current.tax_code_id {
        v.push(format!("{field}.tax_code_id"), Rule::Invalid, reason);
    }
    if config.tax_code.is_some() && config.tax_code != current.tax_code {
        v.push(format!("{field}.tax_code"), Rule::Invalid, reason);
    }
}

/// Reads an ISO 8601 duration of the contract's `ISO8601Duration` form
/// (`P[nY][nM][nW][nD][T[nH][nM][nS]]`, decimals allowed, components in that
/// order) with at least one component. `Some(true)` when every component is
/// zero, `None` when it is not such a duration.
pub fn iso_duration_is_zero(text: &str) -> Option<bool> {
    let rest = text.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut components = 0;
    let mut zero = true;
    let mut read = |part: &str, units: &[char]| -> Option<()> {
        let mut next_unit = 0;
        let mut part = part;
        while !part.is_empty() {
            let end = part.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
            let (number, tail) = part.split_at(end);
            let (whole, fraction) = match number.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (number, None),
            };
            if whole.is_empty() || fraction.is_some_and(|f| f.is_empty() || f.contains('.')) {
                return None;
            }
            let unit = tail.chars().next()?;
            next_unit += units[next_unit..].iter().position(|u| *u == unit)? + 1;
            components += 1;
            if number.bytes().any(|b| matches!(b, b'1'..=b'9')) {
                zero = false;
            }
            part = &tail[unit.len_utf8()..];
        }
        Some(())
    };
    read(date, &['Y', 'M', 'W', 'D'])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        read(time, &['H', 'M', 'S'])?;
    }
    (components > 0).then_some(zero)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (text, zero) in [
            ("P0D", true),
            ("PT1H", false),
            ("P1D", false),
            ("P30D", false),
            ("P1Y2M3W4DT5H6M7S", false),
            ("PT0.5S", false),
            ("P0Y0DT0H", true),
            ("PT1M", false),
            ("P1M", false),
        ] {
            assert_eq!(iso_duration_is_zero(text), Some(zero), "{text}");
        }
        for text in [
            "", "P", "PT", "1D", "P1", "PD", "P1DT", "P1H", "PT1D", "P1D1Y", "P1D1D", "p1d",
            "P-1D", "P1.D", "P.5D", "P1.2.3D", "P 1D", "PT1HX", "P1DT1H1Y",
        ] {
            assert_eq!(iso_duration_is_zero(text), None, "{text}");
        }
    }

    #[test]
    fn empty_workflow_gets_every_default() {
        let mut v = Violations::default();
        let workflow = check_workflow(&mut v, WorkflowInput::default(), None);
        assert!(v.is_empty());
        assert_eq!(workflow, Workflow::default());
        assert_eq!(
            serde_json::to_value(&workflow).unwrap(),
            serde_json::json!({
                "collection": {"alignment": {"type": "subscription"}, "interval": "PT1H"},
                "invoicing": {"auto_advance": true, "draft_period": "P0D", "progressive_billing": true,
                              "subscription_end_proration_mode": "bill_actual_period"},
                "payment": {"collection_method": "charge_automatically"},
                "tax": {"enabled": true, "enforced": false},
            })
        );
    }

    #[test]
    fn stored_workflow_round_trips() {
        let mut workflow = Workflow {
            payment: PaymentSettings::SendInvoice {
                due_after: "P7D".into(),
            },
            ..Workflow::default()
        };
        workflow.collection.alignment = Alignment::Anchored {
            recurring_period: RecurringPeriod {
                anchor: crate::timestamp::parse("2024-01-01T00:00:00.000000Z").unwrap(),
                interval: "P1M".into(),
            },
        };
        let text = serde_json::to_string(&workflow).unwrap();
        assert_eq!(serde_json::from_str::<Workflow>(&text).unwrap(), workflow);
    }
}
