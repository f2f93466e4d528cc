//! Invoicing: pending lines in, draft invoices out, and the lifecycle
//! actions (approve, advance, retry, void, update, delete) over the graph in
//! `billing::invoice`.
//!
//! Everything up to the hand-over to the invoicing app lives here. Where the
//! lifecycle reaches Stripe — issuing (`issuing.syncing`), re-attempting a
//! payment, voiding an issued invoice — it calls [`sync_to_stripe`], the one
//! seam to the Stripe sync (`invoice_sync`).
//!
//! Validation of the customer for the invoicing app (a Stripe customer, a
//! default payment method for `charge_automatically`, an email for
//! `send_invoice`) needs only stored data; problems become the invoice's
//! `validationIssues` (and keep it in `draft.invalid`), never errors.
//!
//! A line's amount is rounded once, half away from zero, to its currency's
//! minor unit — or to the coarser unit Stripe (the invoicing app) charges
//! the currency in, where Stripe's differs from ISO 4217: whole units of
//! MGA, ISK and UGX, 0.01 of the three-decimal BHD, JOD, KWD, OMR, TND and
//! of IQD and LYD. The invoice then says exactly what Stripe charges, and no
//! sync fails on an amount Stripe cannot take.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::Context;
use crate::billing::currency::CurrencyCode;
use crate::billing::customer::{Address, Customer};
use crate::billing::invoice::{
    self, Action, ExtendedStatus, Invoice, InvoiceCustomer, Line, LineInput, Severity, Status,
    Trigger, ValidationIssue, WorkflowSnapshot,
};
use crate::billing::profile::{
    BillingProfile, Party, PaymentSettings, TaxIdentity, iso_duration_is_zero,
};
use crate::error::{Error, FieldError, Result, Rule, Source, Violations};
use crate::ids::{CustomerId, InvoiceId, LineId};
use crate::store::invoices::{Changed, DraftFromLines, InvoiceQuery, NewInvoice};

/// The component validation issues of the Stripe app name.
pub const STRIPE_COMPONENT: &str = "app.stripe.invoiceCustomers.validate";

/// `createPendingInvoiceLine`'s request, in domain spelling.
#[derive(Debug, Clone)]
pub struct PendingLines {
    pub currency: String,
    pub lines: Vec<LineInput>,
}

/// The decimals a line in `currency` is billed to (see the module doc).
fn billed_decimals(currency: &CurrencyCode) -> u32 {
    crate::billing::money::billed_decimals(
        currency,
        crate::stripe::invoices::charge_decimals(currency),
    )
}

/// The gathering invoice the lines landed on.
#[derive(Debug, Clone)]
pub struct PendingLinesResult {
    pub invoice: Invoice,
    pub lines: Vec<LineId>,
    pub is_new: bool,
}

/// Adds pending lines to the customer's gathering invoice of their
/// currency (a new one when there is none).
pub async fn create_pending_lines(
    ctx: &Context,
    ns: &str,
    customer_id: CustomerId,
    req: PendingLines,
) -> Result<PendingLinesResult> {
    let customer = ctx.store.require_customer(ns, customer_id).await?;
    customer.ensure_live()?;
    let mut v = Violations::default();
    let currency = match CurrencyCode::parse(&req.currency) {
        Ok(c) => Some(c),
        Err(e) => {
            v.push("currency", Rule::MatchesRegex, e.to_string());
            None
        }
    };
    if req.lines.is_empty() {
        v.push("lines", Rule::MinItems(1), "must hold at least one line");
    }
    let mut valid = Vec::with_capacity(req.lines.len());
    if let Some(currency) = &currency {
        for (i, line) in req.lines.iter().enumerate() {
            if let Some(line) =
                line.check(&mut v, &format!("lines[{i}]"), billed_decimals(currency))
            {
                valid.push(line);
            }
        }
    }
    v.into_result()?;
    let currency =
        currency.ok_or_else(|| Error::Internal(anyhow::anyhow!("currency unchecked")))?;
    let profile = profile_for(ctx, ns, &customer).await?;
    let id = InvoiceId::new();
    let template = NewInvoice {
        id,
        customer: InvoiceCustomer::of(&customer),
        number: format!("GATHER-{currency}-{id}"),
        currency,
        status: ExtendedStatus::Gathering,
        supplier: profile.supplier.clone(),
        workflow: WorkflowSnapshot::of(&profile),
    };
    let (invoice, lines, is_new) = ctx
        .store
        .add_pending_lines(ns, template, valid, ctx.clock.now())
        .await?;
    Ok(PendingLinesResult {
        invoice,
        lines,
        is_new,
    })
}

/// The billing profile a customer bills with: its pinned profile (the
/// customer override), else the namespace's default.
async fn profile_for(ctx: &Context, ns: &str, customer: &Customer) -> Result<BillingProfile> {
    if let Some(pinned) = ctx.store.customer_billing_profile(ns, customer.id).await? {
        return ctx.store.require_profile(ns, pinned).await;
    }
    ctx.store.default_profile(ns).await?.ok_or_else(|| {
        Error::Invalid(vec![FieldError::new(
            "customer_id",
            Rule::Invalid,
            format!(
                "customer [{}] has no billing profile to invoice with: make a billing profile \
                 the default or pin one to the customer",
                customer.id
            ),
        )])
    })
}

/// `invoicePendingLinesAction`'s request, in domain spelling.
#[derive(Debug, Clone, Default)]
pub struct InvoiceAction {
    pub customer_id: String,
    /// `filters.line_ids`, as given.
    pub line_ids: Option<Vec<String>>,
    pub as_of: Option<String>,
    pub progressive_billing_override: Option<bool>,
}

/// Turns the customer's pending lines (those due by `as_of`, or exactly
/// the named ones) into draft invoices, one per currency, each with the
/// workflow snapshotted; each then runs as far as its workflow takes it
/// (auto-approval after a zero draft period goes on to issuing).
pub async fn invoice_pending_lines(
    ctx: &Context,
    ns: &str,
    req: InvoiceAction,
) -> Result<Vec<Invoice>> {
    let now = ctx.clock.now();
    let mut v = Violations::default();
    let customer_id = crate::billing::invoice::parse_ulid_field::<CustomerId>(
        &mut v,
        "customer_id",
        &req.customer_id,
    );
    if req.progressive_billing_override == Some(true) {
        v.push(
            "progressive_billing_override",
            Rule::Invalid,
            "progressive billing is not supported by meterpay: each line is invoiced whole \
             (leave it out or give false)",
        );
    }
    let as_of = match &req.as_of {
        Some(text) => invoice::parse_time(&mut v, "as_of", text),
        None => Some(now),
    };
    let mut wanted: Vec<(usize, LineId)> = Vec::new();
    if let Some(ids) = &req.line_ids {
        if ids.is_empty() {
            v.push(
                "filters.line_ids",
                Rule::MinItems(1),
                "must name at least one line (or leave filters out to invoice every due line)",
            );
        }
        for (i, id) in ids.iter().enumerate() {
            if let Some(id) =
                invoice::parse_ulid_field::<LineId>(&mut v, &format!("filters.line_ids[{i}]"), id)
            {
                wanted.push((i, id));
            }
        }
    }
    v.into_result()?;
    let (Some(customer_id), Some(as_of)) = (customer_id, as_of) else {
        return Err(Error::Internal(anyhow::anyhow!("invoice action unchecked")));
    };
    let customer = match ctx.store.get_customer(ns, customer_id).await? {
        Some(c) => c,
        None => {
            return Err(Error::field(
                "customer_id",
                Rule::Invalid,
                format!("customer [{customer_id}] does not exist in this namespace"),
            ));
        }
    };
    customer.ensure_live()?;
    let pending = ctx.store.pending_lines(ns, customer_id).await?;
    let selected: Vec<&Line> = if req.line_ids.is_some() {
        let mut v = Violations::default();
        let mut out = Vec::new();
        for (i, id) in &wanted {
            let field = format!("filters.line_ids[{i}]");
            match pending.iter().find(|l| l.id == *id) {
                None => v.push(
                    field,
                    Rule::Invalid,
                    format!("[{id}] is not a pending line of customer [{customer_id}]"),
                ),
                Some(line) if line.invoice_at > as_of => v.push(
                    field,
                    Rule::Invalid,
                    format!(
                        "line [{id}] is to be invoiced at {}, after asOf {}",
                        crate::timestamp::format(line.invoice_at),
                        crate::timestamp::format(as_of)
                    ),
                ),
                Some(line) if !out.iter().any(|l: &&Line| l.id == line.id) => out.push(line),
                Some(_) => {}
            }
        }
        v.into_result()?;
        out
    } else {
        pending.iter().filter(|l| l.invoice_at <= as_of).collect()
    };
    if selected.is_empty() {
        return Err(Error::field(
            "customer_id",
            Rule::Invalid,
            format!(
                "customer [{customer_id}] has no pending lines to invoice as of {}",
                crate::timestamp::format(as_of)
            ),
        ));
    }
    let profile = profile_for(ctx, ns, &customer).await?;
    let snapshot = WorkflowSnapshot::of(&profile);
    let mut by_currency: BTreeMap<String, Vec<&Line>> = BTreeMap::new();
    for line in selected {
        by_currency
            .entry(line.currency.as_str().to_owned())
            .or_default()
            .push(line);
    }
    let mut drafts = Vec::new();
    for lines in by_currency.into_values() {
        let id = InvoiceId::new();
        let mut draft = Invoice {
            id,
            namespace: ns.to_owned(),
            customer: InvoiceCustomer::of(&customer),
            number: format!("DRAFT-{id}"),
            currency: lines[0].currency.clone(),
            status: ExtendedStatus::DraftCreated,
            description: None,
            metadata: None,
            supplier: profile.supplier.clone(),
            workflow: snapshot.clone(),
            period: None,
            totals: invoice::Totals::default(),
            issued_at: None,
            draft_until: Some(invoice::draft_until(&snapshot.workflow, now)),
            due_at: None,
            voided_at: None,
            sent_to_customer_at: None,
            validation_issues: Vec::new(),
            external: invoice::External::default(),
            lines: Some(
                lines
                    .iter()
                    .map(|l| Line {
                        invoice_id: id,
                        ..(*l).clone()
                    })
                    .collect(),
            ),
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        draft.recalculate();
        draft.validation_issues = validate(ctx, ns, &draft, &customer, now).await?;
        run(&mut draft, now);
        drafts.push(DraftFromLines {
            lines: lines.iter().map(|l| (l.id, l.invoice_id)).collect(),
            invoice: draft,
        });
    }
    if ctx
        .store
        .create_drafts(ns, customer_id, &drafts, now)
        .await?
        == Changed::Moved
    {
        return Err(Error::field(
            "customer_id",
            Rule::Invalid,
            format!(
                "the pending lines of customer [{customer_id}] changed while they were being \
                 invoiced; try again"
            ),
        ));
    }
    let mut out = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let invoice = if draft.invoice.status == ExtendedStatus::IssuingSyncing {
            sync_to_stripe(ctx, ns, draft.invoice.id, StripeStep::Issue).await?
        } else {
            ctx.store
                .require_invoice(ns, draft.invoice.id, true)
                .await?
        };
        out.push(invoice);
    }
    Ok(out)
}

/// Runs a draft forward as far as its conditions allow now; a draft whose
/// validation finds critical issues stops in `draft.invalid`.
fn run(invoice: &mut Invoice, now: OffsetDateTime) {
    let c = invoice.conditions(now);
    invoice.status = invoice::settle(invoice.status, &c);
    if invoice.status == ExtendedStatus::DraftValidating && c.critical_issues {
        invoice.status = invoice::transition(invoice.status, Trigger::Fail, &c)
            .unwrap_or(ExtendedStatus::DraftInvalid);
    }
}

/// Checks what issuing through the invoicing app needs of the customer,
/// from stored data only.
async fn validate(
    ctx: &Context,
    ns: &str,
    invoice: &Invoice,
    customer: &Customer,
    now: OffsetDateTime,
) -> Result<Vec<ValidationIssue>> {
    let app_id = invoice.workflow.invoicing_app_id;
    let mut issues = Vec::new();
    let mut issue = |code: &str, field: Option<&str>, message: String| {
        issues.push(ValidationIssue {
            id: crate::ids::new_ulid().to_string(),
            severity: Severity::Critical,
            code: code.to_owned(),
            component: STRIPE_COMPONENT.to_owned(),
            message,
            field: field.map(str::to_owned),
            created_at: now,
        });
    };
    let app = ctx.store.get_app(ns, app_id).await?;
    if app.as_ref().is_none_or(|a| a.deleted_at.is_some()) {
        issue(
            "invoicing_app_unavailable",
            None,
            format!(
                "the invoicing app [{app_id}] of billing profile [{}] was uninstalled; \
                 install a Stripe app and bill the customer with a profile that uses it",
                invoice.workflow.source_profile_id
            ),
        );
        return Ok(issues);
    }
    let stripe = ctx
        .store
        .get_customer_stripe(ns, app_id, customer.id)
        .await?;
    let Some(stripe) = stripe else {
        issue(
            "stripe_customer_missing",
            Some("customer"),
            format!(
                "customer [{}] has no Stripe customer in app [{app_id}]: create a checkout \
                 session for it (which makes one and collects a payment method) or link an \
                 existing Stripe customer",
                customer.id
            ),
        );
        return Ok(issues);
    };
    match &invoice.workflow.workflow.payment {
        PaymentSettings::ChargeAutomatically => {
            if stripe.default_payment_method_id.is_none() {
                issue(
                    "payment_method_missing",
                    Some("customer"),
                    format!(
                        "customer [{}] has no default payment method, which collection method \
                         charge_automatically needs: collect one with a checkout session",
                        customer.id
                    ),
                );
            }
        }
        PaymentSettings::SendInvoice { .. } => {
            if customer.primary_email.is_none() {
                issue(
                    "email_missing",
                    Some("customer"),
                    format!(
                        "customer [{}] has no email, which collection method send_invoice \
                         needs to send the invoice: set the customer's primary email",
                        customer.id
                    ),
                );
            }
        }
    }
    Ok(issues)
}

/// One invoice (deleted ones too), with its lines.
pub async fn get(ctx: &Context, ns: &str, id: InvoiceId) -> Result<Invoice> {
    ctx.store.require_invoice(ns, id, true).await
}

/// A page of invoices and how many match.
pub async fn list(ctx: &Context, ns: &str, q: &InvoiceQuery) -> Result<(Vec<Invoice>, u64)> {
    ctx.store.list_invoices(ns, q).await
}

/// The time invoicing goes by (for rendering status details).
pub fn now(ctx: &Context) -> OffsetDateTime {
    ctx.clock.now()
}

/// Refuses `action` unless the invoice's status details list it now.
fn require_action(invoice: &Invoice, action: Action, now: OffsetDateTime) -> Result<()> {
    let details = invoice.status_details(now);
    let actions = details.available_actions;
    let available = match action {
        Action::Advance => actions.advance.is_some(),
        Action::Approve => actions.approve.is_some(),
        Action::Retry => actions.retry.is_some(),
        Action::Void => actions.void.is_some(),
        Action::Delete => actions.delete.is_some(),
        Action::Update => !details.immutable,
    };
    if available {
        Ok(())
    } else {
        Err(invoice::action_refused(
            invoice.id,
            details.extended_status,
            action,
            &actions.names(),
        ))
    }
}

/// `approve`, `advance`, `retry` and `void`.
pub async fn act(ctx: &Context, ns: &str, id: InvoiceId, action: Action) -> Result<Invoice> {
    let now = ctx.clock.now();
    let mut invoice = ctx.store.require_invoice(ns, id, true).await?;
    require_action(&invoice, action, now)?;
    let before = invoice.status;
    if before.status() == Status::Draft {
        // A draft is checked again before it moves: the customer may have
        // lost (or found) what issuing needs since.
        let customer = ctx.store.require_customer(ns, invoice.customer.id).await?;
        customer.ensure_live()?;
        invoice.validation_issues = validate(ctx, ns, &invoice, &customer, now).await?;
        if invoice.has_critical_issues() && action != Action::Retry {
            invoice.status = ExtendedStatus::DraftInvalid;
        } else {
            invoice.fire(action.trigger(), now);
            run(&mut invoice, now);
        }
    } else {
        invoice.fire(action.trigger(), now);
    }
    if invoice.status == ExtendedStatus::Voided {
        invoice.voided_at = Some(now);
    }
    invoice.updated_at = now;
    if ctx.store.save_invoice(ns, &invoice, before).await? == Changed::Moved {
        return Err(moved(id));
    }
    let step = match (before, invoice.status) {
        (_, ExtendedStatus::IssuingSyncing) => Some(StripeStep::Issue),
        (_, ExtendedStatus::Voided) => Some(StripeStep::Void),
        (b, ExtendedStatus::PaymentPending) if b != ExtendedStatus::Issued => {
            Some(StripeStep::RetryPayment)
        }
        _ => None,
    };
    match step {
        Some(step) => sync_to_stripe(ctx, ns, id, step).await,
        None => ctx.store.require_invoice(ns, id, true).await,
    }
}

fn moved(id: InvoiceId) -> Error {
    Error::Invalid(vec![
        FieldError::new(
            "invoiceId",
            Rule::Invalid,
            format!("invoice [{id}] changed while this request was served; read it and try again"),
        )
        .in_source(Source::Path),
    ])
}

/// Deletes a gathering or draft invoice (and its lines).
pub async fn delete(ctx: &Context, ns: &str, id: InvoiceId) -> Result<()> {
    let now = ctx.clock.now();
    let invoice = ctx.store.require_invoice(ns, id, true).await?;
    require_action(&invoice, Action::Delete, now)?;
    if ctx
        .store
        .delete_invoice(ns, id, invoice.status, now)
        .await?
        == Changed::Moved
    {
        return Err(moved(id));
    }
    Ok(())
}

/// What a client may change on a gathering or draft invoice.
#[derive(Debug, Clone, Default)]
pub struct InvoiceUpdate {
    pub description: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub supplier: Option<Party>,
    pub customer: Option<CustomerUpdate>,
    pub workflow: Option<WorkflowUpdate>,
    /// The invoice's lines after the update: existing ones by id, new ones
    /// without; lines left out are deleted. `None` keeps the lines.
    pub lines: Option<Vec<LineUpdate>>,
}

#[derive(Debug, Clone, Default)]
pub struct CustomerUpdate {
    pub name: Option<String>,
    pub key: Option<String>,
    pub tax_id: Option<TaxIdentity>,
    pub billing_address: Option<Address>,
}

#[derive(Debug, Clone, Default)]
pub struct WorkflowUpdate {
    pub auto_advance: Option<bool>,
    pub draft_period: Option<String>,
    pub payment: Option<PaymentSettings>,
}

#[derive(Debug, Clone)]
pub struct LineUpdate {
    /// The field path the line was given at (`lines[0]`).
    pub field: String,
    pub id: Option<String>,
    pub line: LineInput,
    /// An existing line given without a quantity keeps its own (v3 lines
    /// carry none in the contract).
    pub keep_quantity: bool,
}

/// Updates a gathering or draft invoice; a draft is validated again and runs
/// on from its first step (a changed draft is reviewed anew).
pub async fn update(ctx: &Context, ns: &str, id: InvoiceId, req: InvoiceUpdate) -> Result<Invoice> {
    let now = ctx.clock.now();
    let mut invoice = ctx.store.require_invoice(ns, id, true).await?;
    require_action(&invoice, Action::Update, now)?;
    let before = invoice.status;
    let mut v = Violations::default();
    if let Some(description) = &req.description {
        v.max_len("description", description, 1024);
    }
    invoice.description = req.description;
    invoice.metadata = req.metadata;
    if let Some(supplier) = req.supplier {
        invoice.supplier = supplier;
    }
    if let Some(c) = req.customer {
        if let Some(name) = c.name {
            v.len_between("customer.name", &name, 1, 256);
            invoice.customer.name = name;
        }
        invoice.customer.key = c.key.or(invoice.customer.key.take());
        invoice.customer.tax_id = c.tax_id;
        invoice.customer.billing_address = c.billing_address;
    }
    if let Some(w) = req.workflow {
        let settings = &mut invoice.workflow.workflow;
        if let Some(auto) = w.auto_advance {
            settings.invoicing.auto_advance = auto;
        }
        if let Some(period) = w.draft_period {
            if iso_duration_is_zero(&period).is_none() {
                v.push(
                    "workflow.invoicing.draft_period",
                    Rule::MatchesRegex,
                    "must be an ISO 8601 duration such as P1D, PT1H or P1M",
                );
            } else if period != settings.invoicing.draft_period {
                invoice.draft_until = Some(invoice::draft_until_from(&period, invoice.created_at));
                settings.invoicing.draft_period = period;
            }
        }
        if let Some(payment) = w.payment {
            if let PaymentSettings::SendInvoice { due_after } = &payment
                && iso_duration_is_zero(due_after).is_none()
            {
                v.push(
                    "workflow.payment.due_after",
                    Rule::MatchesRegex,
                    "must be an ISO 8601 duration such as P30D",
                );
            }
            settings.payment = payment;
        }
    }
    if let Some(updates) = req.lines {
        let current: Vec<Line> = invoice.live_lines().cloned().collect();
        let mut seen = BTreeSet::new();
        let mut lines = Vec::with_capacity(updates.len());
        for update in updates {
            let existing = match &update.id {
                None => None,
                Some(text) => {
                    let field = format!("{}.id", update.field);
                    match invoice::parse_ulid_field::<LineId>(&mut v, &field, text) {
                        None => continue,
                        Some(line_id) => match current.iter().find(|l| l.id == line_id) {
                            Some(line) if seen.insert(line_id) => Some(line.clone()),
                            Some(_) => {
                                v.push(field, Rule::Invalid, "names a line given twice");
                                continue;
                            }
                            None => {
                                v.push(
                                    field,
                                    Rule::Invalid,
                                    format!("[{line_id}] is not a line of invoice [{id}]"),
                                );
                                continue;
                            }
                        },
                    }
                }
            };
            let mut input = update.line;
            if update.keep_quantity && input.quantity.is_none() {
                input.quantity = existing
                    .as_ref()
                    .and_then(|l| l.quantity)
                    .map(crate::billing::money::format);
            }
            if input.invoice_at.is_empty() {
                // v3 lines have no invoice time of their own: an existing
                // line keeps its own, a new one is due with the period's end.
                input.invoice_at = crate::timestamp::format(existing.as_ref().map_or_else(
                    || {
                        invoice::parse_time(&mut Violations::default(), "", &input.period_to)
                            .unwrap_or(now)
                    },
                    |l| l.invoice_at,
                ));
            }
            let Some(valid) =
                input.check(&mut v, &update.field, billed_decimals(&invoice.currency))
            else {
                continue;
            };
            let base = existing.unwrap_or_else(|| Line {
                id: LineId::new(),
                invoice_id: id,
                name: String::new(),
                description: None,
                metadata: None,
                currency: invoice.currency.clone(),
                period: valid.period,
                invoice_at: valid.invoice_at,
                price: valid.price.clone(),
                quantity: None,
                tax_config: None,
                amount: valid.amount,
                external_id: None,
                created_at: now,
                updated_at: now,
                deleted_at: None,
            });
            lines.push(Line {
                name: valid.name,
                description: valid.description,
                metadata: valid.metadata,
                period: valid.period,
                invoice_at: valid.invoice_at,
                price: valid.price,
                quantity: valid.quantity,
                tax_config: valid.tax_config,
                amount: valid.amount,
                updated_at: now,
                ..base
            });
        }
        if lines.is_empty() && before.status() == Status::Draft && v.is_empty() {
            v.push(
                "lines",
                Rule::MinItems(1),
                "a draft invoice needs at least one line; delete the invoice instead",
            );
        }
        invoice.lines = Some(lines);
    }
    v.into_result()?;
    invoice.recalculate();
    if before.status() == Status::Draft {
        let customer = ctx.store.require_customer(ns, invoice.customer.id).await?;
        invoice.validation_issues = validate(ctx, ns, &invoice, &customer, now).await?;
        invoice.fire(Trigger::Update, now);
        run(&mut invoice, now);
    }
    invoice.updated_at = now;
    if ctx.store.replace_invoice(ns, &invoice, before).await? == Changed::Moved {
        return Err(moved(id));
    }
    if invoice.status == ExtendedStatus::IssuingSyncing {
        return sync_to_stripe(ctx, ns, id, StripeStep::Issue).await;
    }
    ctx.store.require_invoice(ns, id, true).await
}

/// What the invoicing app is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeStep {
    /// The invoice entered `issuing.syncing`: create the Stripe invoice and
    /// its items, finalize it, attempt the payment; then `issued` (and on
    /// to `payment_processing.*`) or `issuing.failed`.
    Issue,
    /// `retry` of a failed or pending-action payment: attempt it again.
    RetryPayment,
    /// The invoice was voided in meterpay: void the Stripe invoice.
    Void,
}

/// The seam where invoicing hands an invoice to Stripe (the invoicing and
/// payment app). Called after the invoice's new status is stored, with no
/// transaction open; returns the invoice as it then is.
pub async fn sync_to_stripe(
    ctx: &Context,
    ns: &str,
    id: InvoiceId,
    step: StripeStep,
) -> Result<Invoice> {
    super::invoice_sync::run(ctx, ns, id, step).await
}
