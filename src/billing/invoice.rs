//! Invoices: a customer's pending lines gather on its `gathering` invoice of
//! their currency; an invoice action turns them into a draft, which the
//! workflow (snapshotted from the billing profile when the draft is made)
//! approves automatically after the draft period or leaves for manual
//! approval; issuing syncs it to the invoicing app (Stripe), and payment
//! events move it on.
//!
//! The lifecycle is upstream's (`draft.waiting_auto_approval`,
//! `issuing.syncing`, `payment_processing.failed`, …) without the steps
//! meterpay has no use for (meters to collect, line finalization, charge
//! booking): [`transition`] is the whole graph, and [`status_details`]
//! derives every state's `availableActions` from it the way upstream does:
//! fire the action, then follow automatic advances while they apply,
//! assuming each step succeeds.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::currency::CurrencyCode;
use super::customer::Address;
use super::money::{self, Price};
use super::profile::{BillingProfile, Party, PaymentSettings, TaxConfig, Workflow};
use crate::error::{Error, FieldError, Rule, Source};
use crate::ids::{AppId, CustomerId, InvoiceId, LineId, ProfileId};

/// `InvoiceStatus`: the short status the API filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Gathering,
    Draft,
    Issuing,
    Issued,
    PaymentProcessing,
    Overdue,
    Paid,
    Uncollectible,
    Voided,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Gathering,
        Status::Draft,
        Status::Issuing,
        Status::Issued,
        Status::PaymentProcessing,
        Status::Overdue,
        Status::Paid,
        Status::Uncollectible,
        Status::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Gathering => "gathering",
            Status::Draft => "draft",
            Status::Issuing => "issuing",
            Status::Issued => "issued",
            Status::PaymentProcessing => "payment_processing",
            Status::Overdue => "overdue",
            Status::Paid => "paid",
            Status::Uncollectible => "uncollectible",
            Status::Voided => "voided",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The extended status: where exactly in the lifecycle an invoice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExtendedStatus {
    Gathering,
    DraftCreated,
    DraftValidating,
    DraftInvalid,
    DraftSyncing,
    DraftSyncFailed,
    DraftWaitingAutoApproval,
    DraftManualApprovalNeeded,
    DraftReadyToIssue,
    IssuingSyncing,
    IssuingFailed,
    Issued,
    PaymentPending,
    PaymentFailed,
    PaymentActionRequired,
    Overdue,
    Paid,
    Uncollectible,
    Voided,
}

impl ExtendedStatus {
    pub const ALL: [ExtendedStatus; 19] = [
        ExtendedStatus::Gathering,
        ExtendedStatus::DraftCreated,
        ExtendedStatus::DraftValidating,
        ExtendedStatus::DraftInvalid,
        ExtendedStatus::DraftSyncing,
        ExtendedStatus::DraftSyncFailed,
        ExtendedStatus::DraftWaitingAutoApproval,
        ExtendedStatus::DraftManualApprovalNeeded,
        ExtendedStatus::DraftReadyToIssue,
        ExtendedStatus::IssuingSyncing,
        ExtendedStatus::IssuingFailed,
        ExtendedStatus::Issued,
        ExtendedStatus::PaymentPending,
        ExtendedStatus::PaymentFailed,
        ExtendedStatus::PaymentActionRequired,
        ExtendedStatus::Overdue,
        ExtendedStatus::Paid,
        ExtendedStatus::Uncollectible,
        ExtendedStatus::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        use ExtendedStatus as S;
        match self {
            S::Gathering => "gathering",
            S::DraftCreated => "draft.created",
            S::DraftValidating => "draft.validating",
            S::DraftInvalid => "draft.invalid",
            S::DraftSyncing => "draft.syncing",
            S::DraftSyncFailed => "draft.sync_failed",
            S::DraftWaitingAutoApproval => "draft.waiting_auto_approval",
            S::DraftManualApprovalNeeded => "draft.manual_approval_needed",
            S::DraftReadyToIssue => "draft.ready_to_issue",
            S::IssuingSyncing => "issuing.syncing",
            S::IssuingFailed => "issuing.failed",
            S::Issued => "issued",
            S::PaymentPending => "payment_processing.pending",
            S::PaymentFailed => "payment_processing.failed",
            S::PaymentActionRequired => "payment_processing.action_required",
            S::Overdue => "overdue",
            S::Paid => "paid",
            S::Uncollectible => "uncollectible",
            S::Voided => "voided",
        }
    }

    pub fn parse(text: &str) -> Option<ExtendedStatus> {
        ExtendedStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The short status: the extended status up to its first dot.
    pub fn status(self) -> Status {
        let short = self.as_str().split('.').next().unwrap_or_default();
        Status::parse(short).unwrap_or(Status::Draft)
    }

    /// Upstream's failed states: a step failed and `retry` runs it again.
    /// (`draft.invalid` is not one: the invoice itself must change.)
    pub fn is_failed(self) -> bool {
        matches!(
            self,
            ExtendedStatus::DraftSyncFailed
                | ExtendedStatus::IssuingFailed
                | ExtendedStatus::PaymentFailed
        )
    }

    /// Gathering and draft invoices may still be changed and deleted.
    pub fn is_draft_or_gathering(self) -> bool {
        matches!(self.status(), Status::Gathering | Status::Draft)
    }
}

/// What moves an invoice: the API's actions, automatic advances, and the
/// outcomes the invoicing and payment apps report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The automatic next step (the API's `advance`).
    Next,
    Approve,
    Retry,
    /// The draft's contents changed: validate again.
    Update,
    Delete,
    Void,
    /// The current step failed (validation, sync, payment attempt).
    Fail,
    Paid,
    ActionRequired,
    Overdue,
    Uncollectible,
}

/// What the guards of the graph look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Conditions {
    /// The workflow's `auto_advance`.
    pub auto_advance: bool,
    /// `draft_until` has passed.
    pub draft_period_over: bool,
    /// The invoice has critical validation issues.
    pub critical_issues: bool,
    /// The invoicing app finished issuing (the Stripe invoice is finalized).
    pub issuing_synced: bool,
}

/// The lifecycle graph: where `trigger` takes an invoice in `from`, or
/// `None` when it does not apply there. Gathering invoices are outside it
/// (they are invoiced by the pending-lines action, see [`gathering_actions`]).
pub fn transition(
    from: ExtendedStatus,
    trigger: Trigger,
    c: &Conditions,
) -> Option<ExtendedStatus> {
    use ExtendedStatus as S;
    use Trigger as T;
    let to = match (from, trigger) {
        (S::Gathering, _) => return None,
        // A draft's contents change: every draft state but syncing.
        (
            S::DraftCreated
            | S::DraftValidating
            | S::DraftInvalid
            | S::DraftSyncFailed
            | S::DraftWaitingAutoApproval
            | S::DraftManualApprovalNeeded
            | S::DraftReadyToIssue,
            T::Update,
        ) => S::DraftCreated,
        (s, T::Delete) if s.status() == Status::Draft => return Some(s),

        (S::DraftCreated, T::Next) => S::DraftValidating,
        (S::DraftValidating, T::Next) if !c.critical_issues => S::DraftSyncing,
        (S::DraftValidating, T::Fail) => S::DraftInvalid,
        (S::DraftInvalid | S::DraftSyncFailed, T::Retry) => S::DraftValidating,
        (S::DraftSyncing, T::Next) if !c.critical_issues => {
            if c.auto_advance {
                S::DraftWaitingAutoApproval
            } else {
                S::DraftManualApprovalNeeded
            }
        }
        (S::DraftSyncing, T::Fail) => S::DraftSyncFailed,
        (S::DraftWaitingAutoApproval, T::Next)
            if c.auto_advance && c.draft_period_over && !c.critical_issues =>
        {
            S::DraftReadyToIssue
        }
        // Approving forces the draft out regardless of the draft period.
        (S::DraftWaitingAutoApproval, T::Approve) => S::DraftReadyToIssue,
        (S::DraftManualApprovalNeeded, T::Approve) if !c.critical_issues => S::DraftReadyToIssue,
        (S::DraftReadyToIssue, T::Next) => S::IssuingSyncing,

        (S::IssuingSyncing, T::Next) if c.issuing_synced => S::Issued,
        (S::IssuingSyncing, T::Fail) => S::IssuingFailed,
        (S::IssuingFailed, T::Retry) => S::IssuingSyncing,

        (S::Issued, T::Next) => S::PaymentPending,
        (S::Issued, T::Void) => S::Voided,

        (S::PaymentPending, T::Paid) => S::Paid,
        (S::PaymentPending, T::Fail) => S::PaymentFailed,
        (S::PaymentPending, T::ActionRequired) => S::PaymentActionRequired,
        (S::PaymentPending, T::Overdue) => S::Overdue,
        (S::PaymentPending, T::Uncollectible) => S::Uncollectible,
        (S::PaymentPending, T::Void) => S::Voided,

        (S::PaymentFailed, T::Paid) => S::Paid,
        (S::PaymentFailed, T::Retry) => S::PaymentPending,
        (S::PaymentFailed, T::ActionRequired) => S::PaymentActionRequired,
        (S::PaymentFailed, T::Overdue) => S::Overdue,
        (S::PaymentFailed, T::Uncollectible) => S::Uncollectible,
        (S::PaymentFailed, T::Void) => S::Voided,

        (S::PaymentActionRequired, T::Paid) => S::Paid,
        (S::PaymentActionRequired, T::Fail) => S::PaymentFailed,
        (S::PaymentActionRequired, T::Retry) => S::PaymentPending,
        (S::PaymentActionRequired, T::Overdue) => S::Overdue,
        (S::PaymentActionRequired, T::Uncollectible) => S::Uncollectible,
        (S::PaymentActionRequired, T::Void) => S::Voided,

        (S::Overdue, T::Paid) => S::Paid,
        (S::Overdue, T::Fail) => S::PaymentFailed,
        (S::Overdue, T::Retry) => S::PaymentPending,
        (S::Overdue, T::ActionRequired) => S::PaymentActionRequired,
        (S::Overdue, T::Uncollectible) => S::Uncollectible,

        (S::Uncollectible, T::Paid) => S::Paid,
        (S::Uncollectible, T::Void) => S::Voided,
        _ => return None,
    };
    Some(to)
}

/// Follows automatic advances from `from` while they apply.
pub fn settle(from: ExtendedStatus, c: &Conditions) -> ExtendedStatus {
    let mut state = from;
    while let Some(next) = transition(state, Trigger::Next, c) {
        state = next;
    }
    state
}

/// The resulting state named for an action that deletes the invoice.
pub const DELETED: &str = "deleted";

/// `InvoiceAvailableActions`: for each action the API would accept now, the
/// extended status the invoice reaches if every step after it succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AvailableActions {
    pub advance: Option<&'static str>,
    pub approve: Option<&'static str>,
    pub delete: Option<&'static str>,
    pub retry: Option<&'static str>,
    pub void: Option<&'static str>,
    /// Gathering invoices with lines due: the pending-lines action applies.
    pub invoice: bool,
}

/// `InvoiceStatusDetails`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusDetails {
    pub immutable: bool,
    pub failed: bool,
    pub extended_status: &'static str,
    pub available_actions: AvailableActions,
}

/// The status details of an invoice in `status` under `c`.
pub fn status_details(status: ExtendedStatus, c: &Conditions) -> StatusDetails {
    // An action applies with the real conditions; what follows is simulated
    // as upstream does it: validation issues cleared, every step succeeding.
    let simulated = Conditions {
        critical_issues: false,
        issuing_synced: true,
        ..*c
    };
    let resulting = |trigger: Trigger| {
        transition(status, trigger, c).map(|first| settle(first, &simulated).as_str())
    };
    StatusDetails {
        immutable: transition(status, Trigger::Update, c).is_none(),
        failed: status.is_failed(),
        extended_status: status.as_str(),
        available_actions: AvailableActions {
            advance: resulting(Trigger::Next),
            approve: resulting(Trigger::Approve),
            delete: transition(status, Trigger::Delete, c).map(|_| DELETED),
            retry: resulting(Trigger::Retry),
            void: resulting(Trigger::Void),
            invoice: false,
        },
    }
}

/// A gathering invoice's details: it can be invoiced when lines are due,
/// and deleted (with its pending lines) any time.
pub fn gathering_actions(lines_due: bool) -> StatusDetails {
    StatusDetails {
        immutable: false,
        failed: false,
        extended_status: ExtendedStatus::Gathering.as_str(),
        available_actions: AvailableActions {
            delete: Some(DELETED),
            invoice: lines_due,
            ..AvailableActions::default()
        },
    }
}

/// A deleted invoice: read-only, nothing applies.
pub fn deleted_details() -> StatusDetails {
    StatusDetails {
        immutable: true,
        failed: false,
        extended_status: DELETED,
        available_actions: AvailableActions::default(),
    }
}

/// The API actions (the names `statusDetails.availableActions` uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Advance,
    Approve,
    Retry,
    Void,
    Delete,
    Update,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Advance => "advance",
            Action::Approve => "approve",
            Action::Retry => "retry",
            Action::Void => "void",
            Action::Delete => "delete",
            Action::Update => "update",
        }
    }

    pub fn trigger(self) -> Trigger {
        match self {
            Action::Advance => Trigger::Next,
            Action::Approve => Trigger::Approve,
            Action::Retry => Trigger::Retry,
            Action::Void => Trigger::Void,
            Action::Delete => Trigger::Delete,
            Action::Update => Trigger::Update,
        }
    }
}

/// The 400 for an action that does not apply in the invoice's state. The
/// contract lists no 409 for invoice actions; the request is refused as
/// invalid, naming the invoice and what it allows.
pub fn action_refused(id: InvoiceId, status: &str, action: Action, allowed: &[&str]) -> Error {
    let hint = match action {
        Action::Void if status.starts_with("draft") || status == "gathering" => {
            "; a draft or gathering invoice is deleted, not voided".to_owned()
        }
        Action::Delete | Action::Update => {
            "; only gathering and draft invoices can be changed or deleted (void an issued one)"
                .to_owned()
        }
        _ => String::new(),
    };
    let allowed = if allowed.is_empty() {
        "no action applies now".to_owned()
    } else {
        format!("it allows {}", allowed.join(", "))
    };
    Error::Invalid(vec![
        FieldError::new(
            "invoiceId",
            Rule::Invalid,
            format!(
                "invoice [{id}] is {status}: {} does not apply ({allowed}){hint}",
                action.as_str()
            ),
        )
        .in_source(Source::Path),
    ])
}

impl AvailableActions {
    /// The names of the actions that apply, in the contract's order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (name, present) in [
            ("advance", self.advance.is_some()),
            ("approve", self.approve.is_some()),
            ("delete", self.delete.is_some()),
            ("retry", self.retry.is_some()),
            ("void", self.void.is_some()),
            ("invoice", self.invoice),
        ] {
            if present {
                out.push(name);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// The invoice

/// `Period`: start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    #[serde(with = "crate::timestamp::serde")]
    pub from: OffsetDateTime,
    #[serde(with = "crate::timestamp::serde")]
    pub to: OffsetDateTime,
}

/// The workflow an invoice runs with: its billing profile's (the
/// customer's pinned profile, else the namespace default) as it was when
/// the invoice was created.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowSnapshot {
    pub source_profile_id: ProfileId,
    pub tax_app_id: AppId,
    pub invoicing_app_id: AppId,
    pub payment_app_id: AppId,
    pub workflow: Workflow,
}

impl WorkflowSnapshot {
    /// The snapshot of the profile a customer bills with: its pinned profile
    /// (meterpay's customer override) or else the namespace's default.
    pub fn of(profile: &BillingProfile) -> WorkflowSnapshot {
        WorkflowSnapshot {
            source_profile_id: profile.id,
            tax_app_id: profile.tax_app_id,
            invoicing_app_id: profile.invoicing_app_id,
            payment_app_id: profile.payment_app_id,
            workflow: profile.workflow.clone(),
        }
    }
}

/// The customer as the invoice shows it (a snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceCustomer {
    pub id: CustomerId,
    pub key: Option<String>,
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub billing_address: Option<Address>,
    #[serde(default)]
    pub subject_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<super::profile::TaxIdentity>,
}

impl InvoiceCustomer {
    pub fn of(customer: &super::customer::Customer) -> InvoiceCustomer {
        InvoiceCustomer {
            id: customer.id,
            key: Some(customer.key.clone()),
            name: customer.name.clone(),
            email: customer.primary_email.clone(),
            billing_address: customer.billing_address.clone(),
            subject_keys: customer.subject_keys.clone(),
            tax_id: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Warning,
}

/// `ValidationIssue`: something that keeps the invoice from being issued
/// (critical) or that the user should know (warning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationIssue {
    pub id: String,
    pub severity: Severity,
    pub code: String,
    pub component: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(with = "crate::timestamp::serde")]
    pub created_at: OffsetDateTime,
}

/// Totals: meterpay bills no taxes, discounts or credits itself, so the
/// total is the amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub amount: Decimal,
}

/// Where the invoice lives in the invoicing app (Stripe).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct External {
    pub invoice_id: Option<String>,
    pub number: Option<String>,
    pub hosted_url: Option<String>,
    pub pdf_url: Option<String>,
    pub payment_id: Option<String>,
}

/// A line (a charge) on an invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub id: LineId,
    pub invoice_id: InvoiceId,
    pub name: String,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub currency: CurrencyCode,
    pub period: Period,
    pub invoice_at: OffsetDateTime,
    pub price: Price,
    /// The quantity a usage-based price bills (meterpay has no meters).
    pub quantity: Option<Decimal>,
    pub tax_config: Option<TaxConfig>,
    /// The price of the quantity, rounded once to the currency's minor unit.
    pub amount: Decimal,
    /// The Stripe invoice item this line became.
    pub external_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
}

/// An invoice with its lines (when loaded).
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub id: InvoiceId,
    pub namespace: String,
    pub customer: InvoiceCustomer,
    pub number: String,
    pub currency: CurrencyCode,
    pub status: ExtendedStatus,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub supplier: Party,
    pub workflow: WorkflowSnapshot,
    pub period: Option<Period>,
    pub totals: Totals,
    pub issued_at: Option<OffsetDateTime>,
    pub draft_until: Option<OffsetDateTime>,
    pub due_at: Option<OffsetDateTime>,
    pub voided_at: Option<OffsetDateTime>,
    pub sent_to_customer_at: Option<OffsetDateTime>,
    pub validation_issues: Vec<ValidationIssue>,
    pub external: External,
    pub lines: Option<Vec<Line>>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
}

impl Invoice {
    /// The number the customer sees: the invoicing app's once issued (Stripe's
    /// `PREFIX-0001`), meterpay's placeholder before.
    pub fn display_number(&self) -> &str {
        self.external.number.as_deref().unwrap_or(&self.number)
    }

    pub fn has_critical_issues(&self) -> bool {
        self.validation_issues
            .iter()
            .any(|i| i.severity == Severity::Critical)
    }

    /// The guards' view of this invoice at `now`.
    pub fn conditions(&self, now: OffsetDateTime) -> Conditions {
        Conditions {
            auto_advance: self.workflow.workflow.invoicing.auto_advance,
            draft_period_over: self.draft_until.is_some_and(|until| until <= now),
            critical_issues: self.has_critical_issues(),
            issuing_synced: false,
        }
    }

    /// The status details the API shows at `now`.
    pub fn status_details(&self, now: OffsetDateTime) -> StatusDetails {
        if self.deleted_at.is_some() {
            return deleted_details();
        }
        if self.status == ExtendedStatus::Gathering {
            let due = self.lines.as_deref().is_some_and(|lines| {
                lines
                    .iter()
                    .any(|l| l.deleted_at.is_none() && l.invoice_at <= now)
            });
            return gathering_actions(due);
        }
        status_details(self.status, &self.conditions(now))
    }

    /// The live lines (loaded ones, deleted left out).
    pub fn live_lines(&self) -> impl Iterator<Item = &Line> {
        self.lines
            .iter()
            .flatten()
            .filter(|l| l.deleted_at.is_none())
    }

    /// Totals and period from the live lines: the sum of the rounded line
    /// amounts, and the span from the earliest start to the latest end.
    pub fn recalculate(&mut self) {
        let mut amount = Decimal::ZERO;
        let mut period: Option<Period> = None;
        for line in self.live_lines() {
            amount += line.amount;
            period = Some(match period {
                None => line.period,
                Some(p) => Period {
                    from: p.from.min(line.period.from),
                    to: p.to.max(line.period.to),
                },
            });
        }
        self.totals = Totals { amount };
        self.period = period;
    }

    /// Moves the invoice by `trigger` (the graph's rules) and then along the
    /// automatic advances that apply at `now`. `None` when `trigger` does
    /// not apply.
    pub fn fire(&mut self, trigger: Trigger, now: OffsetDateTime) -> Option<ExtendedStatus> {
        let c = self.conditions(now);
        let next = transition(self.status, trigger, &c)?;
        self.status = settle(next, &c);
        Some(self.status)
    }

    /// The collection method's due period after issuing (`send_invoice`).
    pub fn due_after(&self) -> Option<&str> {
        match &self.workflow.workflow.payment {
            PaymentSettings::SendInvoice { due_after } => Some(due_after),
            PaymentSettings::ChargeAutomatically => None,
        }
    }
}

/// When the draft period of `workflow` ends for a draft made at `created`.
pub fn draft_until(workflow: &Workflow, created: OffsetDateTime) -> OffsetDateTime {
    draft_until_from(&workflow.invoicing.draft_period, created)
}

/// When a draft period (an ISO 8601 duration) ends for a draft made at `created`.
pub fn draft_until_from(draft_period: &str, created: OffsetDateTime) -> OffsetDateTime {
    add_iso_duration(created, draft_period).unwrap_or(created)
}

/// Reads a ULID a request names (either case), as the id type `T`.
pub fn parse_ulid_field<T: From<ulid::Ulid>>(
    v: &mut crate::error::Violations,
    field: &str,
    text: &str,
) -> Option<T> {
    let valid = text.len() == 26
        && text.as_bytes()[0].is_ascii_digit()
        && text.as_bytes()[0] <= b'7'
        && text.bytes().all(|b| {
            b.is_ascii_digit()
                || (b.is_ascii_alphabetic()
                    && !matches!(b.to_ascii_uppercase(), b'I' | b'L' | b'O' | b'U'))
        });
    match valid
        .then(|| ulid::Ulid::from_string(&text.to_ascii_uppercase()).ok())
        .flatten()
    {
        Some(id) => Some(T::from(id)),
        None => {
            v.push(
                field,
                Rule::MatchesRegex,
                format!("[{text}] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)"),
            );
            None
        }
    }
}

/// `ts` plus an ISO 8601 duration (`P1M`, `P2DT3H`, `PT0.5S`): years and
/// months move the calendar (clamped to the month's last day), the rest is
/// exact time. `None` when the text is not such a duration.
pub fn add_iso_duration(ts: OffsetDateTime, text: &str) -> Option<OffsetDateTime> {
    let rest = text.strip_prefix('P')?;
    let (date, time_part) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut months: i64 = 0;
    let mut micros: i128 = 0;
    let mut read = |part: &str, in_time: bool| -> Option<()> {
        let mut part = part;
        while !part.is_empty() {
            let end = part.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
            let (number, tail) = part.split_at(end);
            let value = money::parse_numeric(number)?;
            let unit = tail.chars().next()?;
            let per_unit_micros: Option<i64> = match (in_time, unit) {
                (false, 'Y') => {
                    months += (value * Decimal::from(12)).trunc().to_i64()?;
                    None
                }
                (false, 'M') => {
                    months += value.trunc().to_i64()?;
                    None
                }
                (false, 'W') => Some(7 * 86_400_000_000),
                (false, 'D') => Some(86_400_000_000),
                (true, 'H') => Some(3_600_000_000),
                (true, 'M') => Some(60_000_000),
                (true, 'S') => Some(1_000_000),
                _ => return None,
            };
            if let Some(per) = per_unit_micros {
                micros += i128::from((value * Decimal::from(per)).trunc().to_i64()?);
            }
            part = &tail[unit.len_utf8()..];
        }
        Some(())
    };
    read(date, false)?;
    if let Some(t) = time_part {
        read(t, true)?;
    }
    let shifted = add_months(ts, months)?;
    let micros = i64::try_from(micros).ok()?;
    shifted.checked_add(time::Duration::microseconds(micros))
}

fn add_months(ts: OffsetDateTime, months: i64) -> Option<OffsetDateTime> {
    if months == 0 {
        return Some(ts);
    }
    let total = i64::from(ts.year()) * 12 + i64::from(u8::from(ts.month())) - 1 + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = time::Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let last_day = time::util::days_in_month(month, year);
    let day = ts.day().min(last_day);
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(ts.replace_date(date))
}

// ---------------------------------------------------------------------------
// Lines as requests give them

/// A pending line as a request gives it (v1 `InvoicePendingLineCreate`),
/// in domain spelling; timestamps and amounts still text.
#[derive(Debug, Clone, Default)]
pub struct LineInput {
    pub name: String,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub period_from: String,
    pub period_to: String,
    pub invoice_at: String,
    /// The price and the field path it was given at (`price` or `rate_card.price`).
    pub price: Option<(String, money::PriceInput)>,
    /// meterpay's addition: the quantity a usage-based price bills.
    pub quantity: Option<String>,
    /// The field path of a feature key, if one was named.
    pub feature_key: Option<String>,
    /// The field path of discounts, if any were given.
    pub discounts: Option<String>,
    pub tax_config: Option<(String, TaxConfig)>,
}

/// A line checked and priced, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidLine {
    pub name: String,
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub period: Period,
    pub invoice_at: OffsetDateTime,
    pub price: Price,
    pub quantity: Option<Decimal>,
    pub tax_config: Option<TaxConfig>,
    pub amount: Decimal,
}

const DATE_HINT: &str = "must be an RFC 3339 date-time such as 2023-01-01T01:01:01.001Z";

/// Reads an RFC 3339 timestamp, in UTC to the microsecond as stored.
pub fn parse_time(
    v: &mut crate::error::Violations,
    field: &str,
    text: &str,
) -> Option<OffsetDateTime> {
    match OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        Ok(at) => {
            let at = at.to_offset(time::UtcOffset::UTC);
            Some(
                at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000)
                    .unwrap_or(at),
            )
        }
        Err(_) => {
            v.push(field, Rule::IsDateTime, DATE_HINT);
            None
        }
    }
}

impl LineInput {
    /// Checks the line into `v` (fields under `field`, e.g. `lines[0]`) and
    /// prices it, its amount rounded to `decimals` (see
    /// [`money::billed_decimals`]). What meterpay does not do is refused by name.
    pub fn check(
        &self,
        v: &mut crate::error::Violations,
        field: &str,
        decimals: u32,
    ) -> Option<ValidLine> {
        let at = |member: &str| format!("{field}.{member}");
        let before = v.len();
        v.len_between(&at("name"), &self.name, 1, 256);
        if let Some(description) = &self.description {
            v.max_len(&at("description"), description, 1024);
        }
        let from = parse_time(v, &at("period.from"), &self.period_from);
        let to = parse_time(v, &at("period.to"), &self.period_to);
        if let (Some(from), Some(to)) = (from, to)
            && to < from
        {
            v.push(
                at("period.to"),
                Rule::Invalid,
                "must not be before period.from",
            );
        }
        let invoice_at = parse_time(v, &at("invoice_at"), &self.invoice_at);
        if let Some(path) = &self.feature_key {
            v.push(
                path.clone(),
                Rule::Invalid,
                "meterpay has no meters or features: leave the feature key out and send the \
                 usage as quantity",
            );
        }
        if let Some(path) = &self.discounts {
            v.push(
                path.clone(),
                Rule::Invalid,
                "discounts are not supported by meterpay; bill the discounted amount instead",
            );
        }
        if let Some((path, config)) = &self.tax_config {
            check_line_tax(v, path, config);
        }
        let price = match &self.price {
            None => {
                v.push(
                    at("rate_card.price"),
                    Rule::Required,
                    "is required: the price of the line (flat, unit, tiered or package)",
                );
                None
            }
            Some((path, input)) => money::check_price(v, path, input),
        };
        let quantity = match &self.quantity {
            None => None,
            Some(text) => match money::parse_numeric(text) {
                Some(q) if q.is_sign_negative() && !q.is_zero() => {
                    v.push(at("quantity"), Rule::Invalid, "must not be negative");
                    None
                }
                Some(q) => Some(q),
                None => {
                    v.push(
                        at("quantity"),
                        Rule::MatchesRegex,
                        money::numeric_hint(text, "12.5"),
                    );
                    None
                }
            },
        };
        let price = price?;
        match (price.is_usage_based(), &self.quantity) {
            (true, None) => v.push(
                at("quantity"),
                Rule::Required,
                "is required with a usage-based price (unit, tiered, package): meterpay has no \
                 meters, so send the quantity to bill",
            ),
            (false, Some(_)) => v.push(
                at("quantity"),
                Rule::UnknownProperty,
                "applies only to usage-based prices (unit, tiered, package); a flat price is \
                 charged once",
            ),
            _ => {}
        }
        if v.len() > before {
            return None;
        }
        let amount = match money::line_amount(&price, quantity, decimals) {
            Ok(amount) => amount,
            Err(beyond) => {
                v.push(at("quantity"), Rule::Invalid, beyond.to_string());
                return None;
            }
        };
        Some(ValidLine {
            name: self.name.clone(),
            description: self.description.clone(),
            metadata: self.metadata.clone(),
            period: Period {
                from: from?,
                to: to?,
            },
            invoice_at: invoice_at?,
            price,
            quantity: if price_is_flat(&self.price) {
                None
            } else {
                quantity
            },
            tax_config: self.tax_config.as_ref().map(|(_, c)| c.clone()),
            amount,
        })
    }
}

fn price_is_flat(price: &Option<(String, money::PriceInput)>) -> bool {
    price.as_ref().is_some_and(|(_, p)| p.kind == "flat")
}

/// A line's tax config: the behavior and a Stripe tax code are billed with;
/// tax code entities and custom invoicing are not meterpay's.
fn check_line_tax(v: &mut crate::error::Violations, field: &str, config: &TaxConfig) {
    if let Some(stripe) = &config.stripe {
        let code = &stripe.code;
        let valid = code
            .strip_prefix("txcd_")
            .is_some_and(|digits| digits.len() == 8 && digits.bytes().all(|b| b.is_ascii_digit()));
        if !valid {
            v.push(
                format!("{field}.stripe.code"),
                Rule::MatchesRegex,
                "must be a Stripe product tax code such as txcd_10000000",
            );
        }
    }
    if config.external_invoicing.is_some() {
        v.push(
            format!("{field}.custom_invoicing"),
            Rule::Invalid,
            "custom invoicing is not supported by meterpay (it invoices through Stripe)",
        );
    }
    if config.tax_code_id.is_some() || config.tax_code.is_some() {
        v.push(
            format!("{field}.tax_code_id"),
            Rule::Invalid,
            "tax code entities are not supported by meterpay; give stripe.code instead",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(auto_advance: bool, draft_period_over: bool, critical_issues: bool) -> Conditions {
        Conditions {
            auto_advance,
            draft_period_over,
            critical_issues,
            issuing_synced: false,
        }
    }

    /// (advance, approve, delete, retry, void) as resulting states.
    fn actions(d: &StatusDetails) -> [Option<&'static str>; 5] {
        let a = d.available_actions;
        [a.advance, a.approve, a.delete, a.retry, a.void]
    }

    #[test]
    fn every_state_has_exactly_its_actions() {
        use ExtendedStatus as S;
        const PENDING: Option<&str> = Some("payment_processing.pending");
        const DEL: Option<&str> = Some("deleted");
        let manual = c(false, false, false);
        let auto_waiting = c(true, false, false);
        let auto_due = c(true, true, false);
        let critical = c(false, false, true);
        // (state, conditions, [advance, approve, delete, retry, void], immutable, failed)
        type Row = (S, Conditions, [Option<&'static str>; 5], bool, bool);
        let table: Vec<Row> = vec![
            (
                S::DraftCreated,
                manual,
                [Some("draft.manual_approval_needed"), None, DEL, None, None],
                false,
                false,
            ),
            (
                S::DraftCreated,
                auto_waiting,
                [Some("draft.waiting_auto_approval"), None, DEL, None, None],
                false,
                false,
            ),
            (
                S::DraftCreated,
                auto_due,
                [PENDING, None, DEL, None, None],
                false,
                false,
            ),
            (
                S::DraftValidating,
                manual,
                [Some("draft.manual_approval_needed"), None, DEL, None, None],
                false,
                false,
            ),
            (
                S::DraftValidating,
                critical,
                [None, None, DEL, None, None],
                false,
                false,
            ),
            (
                S::DraftInvalid,
                manual,
                [None, None, DEL, Some("draft.manual_approval_needed"), None],
                false,
                false,
            ),
            (
                S::DraftInvalid,
                auto_waiting,
                [None, None, DEL, Some("draft.waiting_auto_approval"), None],
                false,
                false,
            ),
            (
                S::DraftInvalid,
                critical,
                [None, None, DEL, Some("draft.manual_approval_needed"), None],
                false,
                false,
            ),
            (
                S::DraftSyncing,
                manual,
                [Some("draft.manual_approval_needed"), None, DEL, None, None],
                true,
                false,
            ),
            (
                S::DraftSyncFailed,
                manual,
                [None, None, DEL, Some("draft.manual_approval_needed"), None],
                false,
                true,
            ),
            (
                S::DraftWaitingAutoApproval,
                auto_waiting,
                [None, PENDING, DEL, None, None],
                false,
                false,
            ),
            (
                S::DraftWaitingAutoApproval,
                auto_due,
                [PENDING, PENDING, DEL, None, None],
                false,
                false,
            ),
            (
                S::DraftManualApprovalNeeded,
                manual,
                [None, PENDING, DEL, None, None],
                false,
                false,
            ),
            (
                S::DraftManualApprovalNeeded,
                critical,
                [None, None, DEL, None, None],
                false,
                false,
            ),
            (
                S::DraftReadyToIssue,
                manual,
                [PENDING, None, DEL, None, None],
                false,
                false,
            ),
            (
                S::IssuingSyncing,
                manual,
                [None, None, None, None, None],
                true,
                false,
            ),
            (
                S::IssuingFailed,
                manual,
                [None, None, None, PENDING, None],
                true,
                true,
            ),
            (
                S::Issued,
                manual,
                [PENDING, None, None, None, Some("voided")],
                true,
                false,
            ),
            (
                S::PaymentPending,
                manual,
                [None, None, None, None, Some("voided")],
                true,
                false,
            ),
            (
                S::PaymentFailed,
                manual,
                [None, None, None, PENDING, Some("voided")],
                true,
                true,
            ),
            (
                S::PaymentActionRequired,
                manual,
                [None, None, None, PENDING, Some("voided")],
                true,
                false,
            ),
            (
                S::Overdue,
                manual,
                [None, None, None, PENDING, None],
                true,
                false,
            ),
            (
                S::Uncollectible,
                manual,
                [None, None, None, None, Some("voided")],
                true,
                false,
            ),
            (S::Paid, manual, [None, None, None, None, None], true, false),
            (
                S::Voided,
                manual,
                [None, None, None, None, None],
                true,
                false,
            ),
        ];
        for (state, cond, want, immutable, failed) in table {
            let d = status_details(state, &cond);
            assert_eq!(actions(&d), want, "{state:?} {cond:?}");
            assert_eq!(d.immutable, immutable, "{state:?} immutable");
            assert_eq!(d.failed, failed, "{state:?} failed");
            assert_eq!(d.extended_status, state.as_str());
            assert!(!d.available_actions.invoice);
        }
        let gathering = gathering_actions(true);
        assert_eq!(gathering.available_actions.names(), ["delete", "invoice"]);
        assert!(!gathering.immutable);
        assert_eq!(
            gathering_actions(false).available_actions.names(),
            ["delete"]
        );
        assert_eq!(
            deleted_details().available_actions.names(),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn illegal_transitions_are_refused() {
        use ExtendedStatus as S;
        let any = c(true, true, false);
        for (state, trigger) in [
            (S::Gathering, Trigger::Next),
            (S::Gathering, Trigger::Approve),
            (S::DraftManualApprovalNeeded, Trigger::Void),
            (S::DraftManualApprovalNeeded, Trigger::Next),
            (S::DraftWaitingAutoApproval, Trigger::Retry),
            (S::IssuingSyncing, Trigger::Delete),
            (S::IssuingSyncing, Trigger::Update),
            (S::IssuingSyncing, Trigger::Next),
            (S::Issued, Trigger::Delete),
            (S::Issued, Trigger::Approve),
            (S::Paid, Trigger::Void),
            (S::Paid, Trigger::Fail),
            (S::Voided, Trigger::Paid),
            (S::Overdue, Trigger::Void),
            (S::PaymentPending, Trigger::Retry),
            (S::PaymentPending, Trigger::Update),
        ] {
            assert_eq!(
                transition(state, trigger, &any),
                None,
                "{state:?} {trigger:?}"
            );
        }
        // Guards: no approval with critical issues; no auto-approval before
        // the draft period is over, nor without auto-advance.
        assert_eq!(
            transition(
                S::DraftManualApprovalNeeded,
                Trigger::Approve,
                &c(false, false, true)
            ),
            None
        );
        assert_eq!(
            transition(
                S::DraftWaitingAutoApproval,
                Trigger::Next,
                &c(true, false, false)
            ),
            None
        );
        assert_eq!(
            transition(
                S::DraftWaitingAutoApproval,
                Trigger::Next,
                &c(false, true, false)
            ),
            None
        );
        assert_eq!(
            transition(S::DraftValidating, Trigger::Next, &c(true, true, true)),
            None
        );
    }

    #[test]
    fn payment_outcomes_move_as_upstream() {
        use ExtendedStatus as S;
        let any = c(true, true, false);
        assert_eq!(
            transition(S::PaymentPending, Trigger::Paid, &any),
            Some(S::Paid)
        );
        assert_eq!(
            transition(S::PaymentPending, Trigger::Fail, &any),
            Some(S::PaymentFailed)
        );
        assert_eq!(
            transition(S::PaymentFailed, Trigger::ActionRequired, &any),
            Some(S::PaymentActionRequired)
        );
        assert_eq!(
            transition(S::PaymentActionRequired, Trigger::Paid, &any),
            Some(S::Paid)
        );
        assert_eq!(
            transition(S::PaymentPending, Trigger::Overdue, &any),
            Some(S::Overdue)
        );
        assert_eq!(transition(S::Overdue, Trigger::Paid, &any), Some(S::Paid));
        assert_eq!(
            transition(S::Uncollectible, Trigger::Void, &any),
            Some(S::Voided)
        );
        let synced = Conditions {
            issuing_synced: true,
            ..any
        };
        assert_eq!(settle(S::IssuingSyncing, &synced), S::PaymentPending);
        assert_eq!(settle(S::IssuingSyncing, &any), S::IssuingSyncing);
        assert_eq!(
            settle(S::DraftCreated, &c(false, false, false)),
            S::DraftManualApprovalNeeded
        );
        assert_eq!(
            settle(S::DraftCreated, &c(true, false, false)),
            S::DraftWaitingAutoApproval
        );
        // Auto-approval after the draft period stops where issuing waits for the app.
        assert_eq!(
            settle(S::DraftCreated, &c(true, true, false)),
            S::IssuingSyncing
        );
        assert_eq!(
            settle(S::DraftCreated, &c(true, true, true)),
            S::DraftValidating
        );
    }

    #[test]
    fn statuses_round_trip_and_shorten() {
        for s in ExtendedStatus::ALL {
            assert_eq!(ExtendedStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ExtendedStatus::DraftInvalid.status(), Status::Draft);
        assert_eq!(
            ExtendedStatus::PaymentFailed.status(),
            Status::PaymentProcessing
        );
        assert_eq!(ExtendedStatus::Overdue.status(), Status::Overdue);
        assert_eq!(ExtendedStatus::Gathering.status(), Status::Gathering);
    }

    #[test]
    fn durations_move_the_calendar() {
        let at = crate::timestamp::parse("2024-01-31T10:00:00.000000Z").unwrap();
        let plus = |d: &str| crate::timestamp::format(add_iso_duration(at, d).unwrap());
        assert_eq!(plus("P0D"), "2024-01-31T10:00:00.000000Z");
        assert_eq!(plus("P1D"), "2024-02-01T10:00:00.000000Z");
        assert_eq!(plus("P1M"), "2024-02-29T10:00:00.000000Z");
        assert_eq!(plus("P1Y1M"), "2025-02-28T10:00:00.000000Z");
        assert_eq!(plus("PT1H30M"), "2024-01-31T11:30:00.000000Z");
        assert_eq!(plus("P1W"), "2024-02-07T10:00:00.000000Z");
        assert_eq!(plus("PT0.5S"), "2024-01-31T10:00:00.500000Z");
        assert!(add_iso_duration(at, "1D").is_none());
    }
}
