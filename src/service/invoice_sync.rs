//! The Stripe side of invoicing: issuing an invoice through its invoicing
//! app (a Stripe invoice, one invoice item per line, finalize, and for
//! `charge_automatically` a payment attempt at once), re-attempting a
//! payment, voiding; the `invoice.*` webhooks that move the invoice after;
//! and the background worker that advances due invoices in every process.
//!
//! Safe to crash and to run in several processes: no transaction is open
//! across a Stripe call; every Stripe create carries an idempotency key made
//! of meterpay's ids (`meterpay-invoice-{id}`, `meterpay-invoice-{id}-line-{line}`);
//! each step's outcome is stored before the next step starts, so a sync
//! resumed after a crash skips what is done (and finds items created but not
//! recorded by their line id in Stripe); and one process at a time works on
//! an invoice, holding a lease on it.

use std::sync::LazyLock;
use std::time::Duration;

use time::OffsetDateTime;

use super::Context;
use super::apps::{client_for, note_key_rejected};
use super::invoicing::StripeStep as Step;
use super::webhooks::Outcome;
use crate::billing::app::App;
use crate::billing::invoice::{
    self, ExtendedStatus, Invoice, Severity, Status, Trigger, ValidationIssue,
};
use crate::billing::profile::PaymentSettings;
use crate::error::{Error, Result};
use crate::ids::InvoiceId;
use crate::store::invoices::{Changed, SyncState};
use crate::stripe::StripeError;
use crate::stripe::events::{InvoiceChange, InvoiceEvent};
use crate::stripe::invoices::{
    Collection, PaymentAttempt, StripeInvoice, StripeInvoiceFor, StripeInvoiceItemFor,
    StripeInvoiceStatus, minor_units,
};

/// The component of validation issues the Stripe sync reports.
pub const SYNC_COMPONENT: &str = "app.stripe.invoice";
/// The component of the payment outcomes Stripe reports.
pub const PAYMENT_COMPONENT: &str = "app.stripe.payment";

/// Stripe's code for an automatic-tax invoice whose customer it cannot place.
const TAX_LOCATION_INVALID: &str = "customer_tax_location_invalid";

/// This process's name; each lease it takes is this plus the operation's own id.
static PROCESS: LazyLock<String> = LazyLock::new(|| format!("meterpay-{}", crate::ids::new_ulid()));

/// A lease owner for one operation of this process: sync steps of one
/// invoice exclude each other, in one process as across several. Webhook
/// events take no lease: every save is a compare-and-set on the status the
/// change was computed from, so an event racing a sync step never overwrites
/// it (the loser of a race re-reads; an event answers 503 and Stripe
/// delivers it again).
fn owner() -> String {
    format!("{}-{}", *PROCESS, crate::ids::new_ulid())
}

/// Runs `step` for the invoice under this process's lease. Another process
/// holding the lease is left to finish; the invoice is returned as it is.
pub async fn run(ctx: &Context, ns: &str, id: InvoiceId, step: Step) -> Result<Invoice> {
    let owner = owner();
    if claim(ctx, id, &owner).await? {
        let outcome = match step {
            Step::Issue => issue(ctx, ns, id).await,
            Step::RetryPayment => retry_payment(ctx, ns, id).await,
            Step::Void => void(ctx, ns, id).await,
        };
        if let Err(e) = ctx.store.release_invoice(id, &owner).await {
            tracing::warn!(invoice = %id, error = %e, "could not release an invoice lease");
        }
        outcome?;
    } else {
        // Still held: a sync of another process (the worker resumes an
        // unfinished issue; its outcome is what the invoice shows).
        tracing::info!(invoice = %id, ?step, "another process is working on the invoice");
    }
    ctx.store.require_invoice(ns, id, true).await
}

/// Takes the invoice's lease, waiting (up to 10 s) for a holder that is about
/// to finish (another process's sync step, usually one Stripe call).
async fn claim(ctx: &Context, id: InvoiceId, owner: &str) -> Result<bool> {
    for _ in 0..200 {
        let now = ctx.clock.now();
        if ctx
            .store
            .claim_invoice(id, owner, now + ctx.invoice_lease, now)
            .await?
        {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(false)
}

fn issue_of(
    code: &str,
    component: &str,
    severity: Severity,
    message: String,
    now: OffsetDateTime,
) -> ValidationIssue {
    ValidationIssue {
        id: crate::ids::new_ulid().to_string(),
        severity,
        code: code.to_owned(),
        component: component.to_owned(),
        message,
        field: None,
        created_at: now,
    }
}

/// Drops the issues a component reported before (a new attempt reports anew).
fn clear_issues(invoice: &mut Invoice, component: &str) {
    invoice
        .validation_issues
        .retain(|i| i.component != component);
}

/// Stores `invoice` if its status is still `expected`; `false` when another
/// writer moved it first (the caller stops: the newer state wins).
async fn save(
    ctx: &Context,
    ns: &str,
    invoice: &mut Invoice,
    expected: ExtendedStatus,
) -> Result<bool> {
    invoice.updated_at = ctx.clock.now();
    Ok(ctx.store.save_invoice(ns, invoice, expected).await? == Changed::Yes)
}

/// Backoff of sync retries: 30 s doubling per attempt, at most an hour.
fn retry_delay(attempts: i64) -> time::Duration {
    let shift = attempts.clamp(1, 8) - 1;
    time::Duration::seconds((30i64 << shift).min(3600))
}

/// Stripe could not be reached: the invoice stays in `issuing.syncing` and
/// the worker tries again later (resuming at the stored step).
async fn postpone(ctx: &Context, id: InvoiceId, mut sync: SyncState, detail: String) -> Result<()> {
    sync.attempts += 1;
    sync.error = Some(detail.clone());
    sync.next_attempt_at = Some(ctx.clock.now() + retry_delay(sync.attempts));
    tracing::warn!(invoice = %id, attempts = sync.attempts, detail, "Stripe unavailable; the invoice sync will be retried");
    ctx.store.set_sync_state(id, &sync).await
}

/// Stripe refused a step: `issuing.failed` with the reason as a critical
/// issue; `retry` runs the sync again from the stored step.
async fn fail_issuing(
    ctx: &Context,
    ns: &str,
    mut invoice: Invoice,
    what: &str,
    reason: String,
) -> Result<()> {
    let now = ctx.clock.now();
    let before = invoice.status;
    clear_issues(&mut invoice, SYNC_COMPONENT);
    invoice.validation_issues.push(issue_of(
        "stripe_sync_failed",
        SYNC_COMPONENT,
        Severity::Critical,
        format!("Stripe refused to {what}: {reason}"),
        now,
    ));
    if invoice.fire(Trigger::Fail, now).is_none() {
        return Ok(());
    }
    tracing::warn!(invoice = %invoice.id, what, reason, "invoice sync failed");
    save(ctx, ns, &mut invoice, before).await?;
    Ok(())
}

/// What to do with a Stripe failure of a sync step.
async fn step_failed(
    ctx: &Context,
    ns: &str,
    invoice: Invoice,
    sync: SyncState,
    what: &str,
    err: StripeError,
) -> Result<()> {
    let app_id = invoice.workflow.invoicing_app_id;
    note_key_rejected(ctx, ns, app_id, &err).await;
    match err {
        StripeError::Unavailable { detail, .. } => postpone(ctx, invoice.id, sync, detail).await,
        StripeError::Rejected { message, .. } => {
            fail_issuing(ctx, ns, invoice, what, message).await
        }
        StripeError::KeyRejected { message } => {
            fail_issuing(
                ctx,
                ns,
                invoice,
                what,
                format!("the app's API key was rejected ({message}); update it and retry"),
            )
            .await
        }
    }
}

/// Days from `now` to the end of the workflow's `due_after` period.
fn days_until_due(due_after: &str, now: OffsetDateTime) -> u32 {
    invoice::add_iso_duration(now, due_after)
        .map(|due| ((due - now).whole_seconds() + 86_399) / 86_400)
        .map(|days| u32::try_from(days.max(0)).unwrap_or(u32::MAX))
        .unwrap_or(30)
}

async fn issue(ctx: &Context, ns: &str, id: InvoiceId) -> Result<()> {
    let mut invoice = ctx.store.require_invoice(ns, id, true).await?;
    if invoice.status != ExtendedStatus::IssuingSyncing {
        return Ok(());
    }
    let mut sync = ctx.store.sync_state(id).await?;
    let resumed = sync.step.is_some();
    let app_id = invoice.workflow.invoicing_app_id;
    let client = match client_for(ctx, ns, app_id).await {
        Ok(client) => client,
        Err(Error::Unavailable { detail, .. }) => return postpone(ctx, id, sync, detail).await,
        Err(e) => return fail_issuing(ctx, ns, invoice, "issue the invoice", e.to_string()).await,
    };
    let Some(stripe_customer) = ctx
        .store
        .get_customer_stripe(ns, app_id, invoice.customer.id)
        .await?
    else {
        let reason = format!(
            "customer [{}] has no Stripe customer in app [{app_id}]",
            invoice.customer.id
        );
        return fail_issuing(ctx, ns, invoice, "issue the invoice", reason).await;
    };
    let now = ctx.clock.now();

    // 1. The Stripe invoice (a draft), its id stored before anything is added to it.
    let stripe_invoice_id = match invoice.external.invoice_id.clone() {
        Some(existing) => existing,
        None => {
            let collection = match &invoice.workflow.workflow.payment {
                PaymentSettings::ChargeAutomatically => Collection::ChargeAutomatically {
                    default_payment_method: stripe_customer.default_payment_method_id.clone(),
                },
                PaymentSettings::SendInvoice { due_after } => Collection::SendInvoice {
                    days_until_due: days_until_due(due_after, now),
                },
            };
            let request = StripeInvoiceFor {
                namespace: ns,
                app_id: &app_id.to_string(),
                customer_id: &invoice.customer.id.to_string(),
                invoice_id: &id.to_string(),
                stripe_customer_id: &stripe_customer.stripe_customer_id,
                currency: &invoice.currency,
                collection: &collection,
                automatic_tax: invoice.workflow.workflow.tax.enabled,
                description: invoice.description.as_deref(),
            };
            let created = match client
                .create_invoice(request, &format!("meterpay-invoice-{id}"))
                .await
            {
                Ok(created) => created,
                Err(e) => {
                    return step_failed(ctx, ns, invoice, sync, "create the Stripe invoice", e)
                        .await;
                }
            };
            invoice.external.invoice_id = Some(created.id.clone());
            if !save(ctx, ns, &mut invoice, ExtendedStatus::IssuingSyncing).await? {
                return Ok(());
            }
            sync.step = Some("invoice_created".into());
            ctx.store.set_sync_state(id, &sync).await?;
            created.id
        }
    };

    // 2. One item per line, each recorded as it is made.
    if sync.step.as_deref() == Some("invoice_created") {
        let pending: Vec<_> = invoice
            .live_lines()
            .filter(|l| l.external_id.is_none())
            .cloned()
            .collect();
        let made_before = if resumed && !pending.is_empty() {
            match client.invoice_items_by_line(&stripe_invoice_id).await {
                Ok(found) => found,
                Err(e) => {
                    return step_failed(
                        ctx,
                        ns,
                        invoice,
                        sync,
                        "list the Stripe invoice's items",
                        e,
                    )
                    .await;
                }
            }
        } else {
            Default::default()
        };
        for line in pending {
            let line_id = line.id.to_string();
            let item_id = match made_before.get(&line_id) {
                Some(item) => item.clone(),
                None => {
                    let amount = match minor_units(&invoice.currency, line.amount) {
                        Ok(amount) => amount,
                        Err(e) => {
                            return fail_issuing(
                                ctx,
                                ns,
                                invoice,
                                &format!("bill line [{line_id}]"),
                                e.to_string(),
                            )
                            .await;
                        }
                    };
                    let description = line
                        .description
                        .clone()
                        .unwrap_or_else(|| line.name.clone());
                    let item = StripeInvoiceItemFor {
                        invoice_id: &id.to_string(),
                        line_id: &line_id,
                        stripe_customer_id: &stripe_customer.stripe_customer_id,
                        stripe_invoice_id: &stripe_invoice_id,
                        currency: &invoice.currency,
                        amount,
                        description: &description,
                        period: Some((
                            line.period.from.unix_timestamp(),
                            line.period.to.unix_timestamp(),
                        )),
                        tax_behavior: None,
                        tax_code: None,
                    };
                    match client
                        .create_invoice_item(item, &format!("meterpay-invoice-{id}-line-{line_id}"))
                        .await
                    {
                        Ok(item) => item,
                        Err(e) => {
                            return step_failed(
                                ctx,
                                ns,
                                invoice,
                                sync,
                                &format!("add line [{line_id}] to the Stripe invoice"),
                                e,
                            )
                            .await;
                        }
                    }
                }
            };
            ctx.store.set_line_external_id(line.id, &item_id).await?;
        }
        sync.step = Some("items_created".into());
        ctx.store.set_sync_state(id, &sync).await?;
    }

    // 3. Finalize: Stripe collects (and retries) from here on.
    let mut finalizing = client.finalize_invoice(&stripe_invoice_id).await;
    if let Err(StripeError::Rejected {
        code: Some(code), ..
    }) = &finalizing
        && code == TAX_LOCATION_INVALID
        && !invoice.workflow.workflow.tax.enforced
    {
        // As upstream: tax is wanted but not enforced, and Stripe cannot
        // place the customer; the invoice goes out without automatic tax.
        tracing::info!(invoice = %id, "customer's tax location unknown to Stripe; finalizing without automatic tax");
        if let Err(e) = client.disable_automatic_tax(&stripe_invoice_id).await {
            return step_failed(
                ctx,
                ns,
                invoice,
                sync,
                "turn off automatic tax on the Stripe invoice",
                e,
            )
            .await;
        }
        finalizing = client.finalize_invoice(&stripe_invoice_id).await;
    }
    let finalized = match finalizing {
        Ok(done) => done,
        Err(StripeError::Rejected { message, .. }) => {
            // Finalized before a crash, or refused: the invoice says which.
            match client.retrieve_invoice(&stripe_invoice_id).await {
                Ok(current) if current.status != Some(StripeInvoiceStatus::Draft) => current,
                Ok(current) => {
                    let reason = current.last_finalization_error.unwrap_or(message);
                    return fail_issuing(ctx, ns, invoice, "finalize the Stripe invoice", reason)
                        .await;
                }
                Err(e) => {
                    return step_failed(ctx, ns, invoice, sync, "read the Stripe invoice", e).await;
                }
            }
        }
        Err(e) => {
            return step_failed(ctx, ns, invoice, sync, "finalize the Stripe invoice", e).await;
        }
    };
    let mut invoice = ctx.store.require_invoice(ns, id, true).await?;
    if invoice.status != ExtendedStatus::IssuingSyncing {
        return Ok(());
    }
    clear_issues(&mut invoice, SYNC_COMPONENT);
    record_stripe_invoice(&mut invoice, &finalized);
    invoice.issued_at = Some(now);
    let mut conditions = invoice.conditions(now);
    conditions.issuing_synced = true;
    invoice.status = invoice::settle(ExtendedStatus::IssuingSyncing, &conditions);
    if finalized.status == Some(StripeInvoiceStatus::Paid) {
        invoice.fire(Trigger::Paid, now);
    }
    if !save(ctx, ns, &mut invoice, ExtendedStatus::IssuingSyncing).await? {
        return Ok(());
    }
    sync.step = Some("finalized".into());
    sync.error = None;
    sync.next_attempt_at = None;
    ctx.store.set_sync_state(id, &sync).await?;
    tracing::info!(invoice = %id, stripe_invoice = %stripe_invoice_id, "invoice issued in Stripe");

    // 4. charge_automatically: attempt the payment now, so the outcome is known.
    if invoice.status == ExtendedStatus::PaymentPending
        && finalized.status == Some(StripeInvoiceStatus::Open)
        && matches!(
            invoice.workflow.workflow.payment,
            PaymentSettings::ChargeAutomatically
        )
    {
        attempt_payment(ctx, ns, invoice, &client, &stripe_invoice_id, None).await?;
    }
    Ok(())
}

/// The Stripe invoice's number and pages on the meterpay invoice.
fn record_stripe_invoice(invoice: &mut Invoice, stripe: &StripeInvoice) {
    invoice.external.number = stripe.number.clone().or(invoice.external.number.take());
    invoice.external.hosted_url = stripe
        .hosted_invoice_url
        .clone()
        .or(invoice.external.hosted_url.take());
    invoice.external.pdf_url = stripe
        .invoice_pdf
        .clone()
        .or(invoice.external.pdf_url.take());
    if let Some(due) = stripe
        .due_date
        .and_then(|d| OffsetDateTime::from_unix_timestamp(d).ok())
    {
        invoice.due_at = Some(due);
    }
}

/// Asks Stripe to charge the invoice now and records the outcome: paid,
/// `payment_processing.failed` with Stripe's reason, or
/// `payment_processing.action_required` with where to authenticate.
async fn attempt_payment(
    ctx: &Context,
    ns: &str,
    mut invoice: Invoice,
    client: &crate::stripe::StripeClient,
    stripe_invoice_id: &str,
    payment_method: Option<&str>,
) -> Result<()> {
    let attempt = match client.pay_invoice(stripe_invoice_id, payment_method).await {
        Ok(attempt) => attempt,
        Err(e) => {
            // Stripe keeps collecting on its own schedule; its webhooks report the outcome.
            tracing::warn!(invoice = %invoice.id, error = %e, "payment attempt not made");
            return Ok(());
        }
    };
    let now = ctx.clock.now();
    let before = invoice.status;
    clear_issues(&mut invoice, PAYMENT_COMPONENT);
    match attempt {
        PaymentAttempt::Paid => {
            invoice.fire(Trigger::Paid, now);
        }
        PaymentAttempt::Failed { message, code } => {
            let reason = match code {
                Some(code) => {
                    format!("Stripe could not charge the payment method: {message} ({code})")
                }
                None => format!("Stripe could not charge the payment method: {message}"),
            };
            invoice.validation_issues.push(issue_of(
                "payment_failed",
                PAYMENT_COMPONENT,
                Severity::Warning,
                reason,
                now,
            ));
            invoice.fire(Trigger::Fail, now);
        }
        PaymentAttempt::ActionRequired { message } => {
            let page = invoice.external.hosted_url.clone().unwrap_or_default();
            invoice.validation_issues.push(issue_of(
                "payment_action_required",
                PAYMENT_COMPONENT,
                Severity::Warning,
                format!("{message} The customer can authenticate the payment on the hosted invoice page: {page}"),
                now,
            ));
            invoice.fire(Trigger::ActionRequired, now);
        }
    }
    save(ctx, ns, &mut invoice, before).await?;
    Ok(())
}

async fn retry_payment(ctx: &Context, ns: &str, id: InvoiceId) -> Result<()> {
    let invoice = ctx.store.require_invoice(ns, id, true).await?;
    let Some(stripe_invoice_id) = invoice.external.invoice_id.clone() else {
        return Ok(());
    };
    // Pending after `retry`, or failed again by a late event of the previous
    // attempt that arrived in between: either way the customer asked to pay now.
    if !matches!(
        invoice.status,
        ExtendedStatus::PaymentPending
            | ExtendedStatus::PaymentFailed
            | ExtendedStatus::PaymentActionRequired
    ) {
        return Ok(());
    }
    let app_id = invoice.workflow.invoicing_app_id;
    let client = client_for(ctx, ns, app_id).await?;
    // The invoice names the payment method it was issued with; a new default
    // saved since (a checkout session, or set through the API) is what the
    // customer wants charged now, so the attempt names the current default.
    let default = ctx
        .store
        .get_customer_stripe(ns, app_id, invoice.customer.id)
        .await?
        .and_then(|c| c.default_payment_method_id);
    attempt_payment(
        ctx,
        ns,
        invoice,
        &client,
        &stripe_invoice_id,
        default.as_deref(),
    )
    .await
}

async fn void(ctx: &Context, ns: &str, id: InvoiceId) -> Result<()> {
    let mut invoice = ctx.store.require_invoice(ns, id, true).await?;
    let Some(stripe_invoice_id) = invoice.external.invoice_id.clone() else {
        return Ok(());
    };
    let client = client_for(ctx, ns, invoice.workflow.invoicing_app_id).await?;
    let outcome = match client.retrieve_invoice(&stripe_invoice_id).await {
        Ok(current) if current.status == Some(StripeInvoiceStatus::Draft) => {
            client.delete_invoice(&stripe_invoice_id).await.map(|_| ())
        }
        Ok(current) if current.status == Some(StripeInvoiceStatus::Void) => Ok(()),
        Ok(_) => client.void_invoice(&stripe_invoice_id).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        let now = ctx.clock.now();
        let before = invoice.status;
        invoice.validation_issues.push(issue_of(
            "stripe_void_failed",
            SYNC_COMPONENT,
            Severity::Warning,
            format!("the invoice is voided in meterpay, but Stripe did not void invoice [{stripe_invoice_id}]: {e}; void it in the Stripe dashboard"),
            now,
        ));
        save(ctx, ns, &mut invoice, before).await?;
    }
    Ok(())
}

// ---- webhooks -----------------------------------------------------------------

/// An `invoice.*` event for `app`: moves the meterpay invoice it concerns,
/// exactly once, and leaves alone invoices already past the event's state.
/// Like upstream, the Stripe invoice is read again first, so a late event
/// (a failure delivered after a later success) changes nothing.
pub async fn apply_event(
    ctx: &Context,
    app: &App,
    change: InvoiceChange,
    event: &InvoiceEvent,
) -> Result<Outcome> {
    if let Some(ours) = &event.ours
        && (ours.namespace != app.namespace || ours.app_id != app.id.to_string())
    {
        return Ok(Outcome::Ignored(format!(
            "the event is for app [{}] in namespace [{}], another install of this Stripe account",
            ours.app_id, ours.namespace
        )));
    }
    let Some(stripe_invoice_id) = event.id.as_deref() else {
        return Ok(Outcome::Ignored(
            "invoice event without an invoice id".into(),
        ));
    };
    let Some((ns, id)) = ctx
        .store
        .invoice_by_stripe_id(app.id, stripe_invoice_id)
        .await?
    else {
        return Ok(Outcome::Ignored(format!(
            "Stripe invoice [{stripe_invoice_id}] is not one meterpay issued"
        )));
    };
    let mut invoice = ctx.store.require_invoice(&ns, id, true).await?;
    let now = ctx.clock.now();
    let before = invoice.status;
    use ExtendedStatus as S;
    let (trigger, targets, ignore_in): (Trigger, &[S], &[Status]) = match change {
        InvoiceChange::Paid => (Trigger::Paid, &[S::Paid], &[]),
        InvoiceChange::PaymentFailed => (
            Trigger::Fail,
            &[S::PaymentFailed],
            &[Status::Paid, Status::Uncollectible, Status::Voided],
        ),
        InvoiceChange::PaymentActionRequired => (
            Trigger::ActionRequired,
            &[S::PaymentActionRequired],
            &[Status::Paid, Status::Uncollectible, Status::Voided],
        ),
        InvoiceChange::FinalizationFailed => (
            Trigger::Fail,
            &[S::IssuingFailed, S::PaymentFailed],
            // Issuing: meterpay's own sync finalizes and reports a refusal itself
            // (it also retries without automatic tax where tax is not enforced).
            &[
                Status::Issuing,
                Status::PaymentProcessing,
                Status::Paid,
                Status::Uncollectible,
                Status::Voided,
                Status::Overdue,
            ],
        ),
        InvoiceChange::Overdue => (
            Trigger::Overdue,
            &[S::Overdue],
            &[Status::Uncollectible, Status::Paid, Status::Voided],
        ),
        InvoiceChange::MarkedUncollectible => (
            Trigger::Uncollectible,
            &[S::Uncollectible],
            &[Status::Voided],
        ),
        InvoiceChange::Voided => (Trigger::Void, &[S::Voided], &[Status::Paid]),
        InvoiceChange::Sent => {
            if invoice.sent_to_customer_at.is_some() {
                return Ok(Outcome::Ignored("the invoice was already sent".into()));
            }
            invoice.sent_to_customer_at = Some(now);
            if !save(ctx, &ns, &mut invoice, before).await? {
                return Err(Error::Unavailable {
                    detail: format!("invoice [{id}] changed while the event was applied"),
                    retry_after_secs: Some(5),
                });
            }
            return Ok(Outcome::Processed(Some(invoice.customer.id)));
        }
    };
    // Stripe announces a payment that needs authentication as failed too
    // (`invoice.payment_failed` with `invoice.payment_action_required`): the
    // customer can still authenticate on the hosted invoice page.
    if change == InvoiceChange::PaymentFailed && invoice.status == S::PaymentActionRequired {
        return Ok(Outcome::Ignored(format!(
            "invoice [{id}] waits for the customer's authentication"
        )));
    }
    if targets.contains(&invoice.status) || ignore_in.contains(&invoice.status.status()) {
        return Ok(Outcome::Ignored(format!(
            "invoice [{id}] is {}; the event changes nothing",
            invoice.status.as_str()
        )));
    }
    // The Stripe invoice as it is now decides whether the event still holds.
    let client = client_for(ctx, &ns, app.id).await?;
    let current = client
        .retrieve_invoice(stripe_invoice_id)
        .await
        .map_err(super::apps::stripe_error)?;
    let holds = match change {
        InvoiceChange::Paid => current.status == Some(StripeInvoiceStatus::Paid),
        InvoiceChange::PaymentFailed
        | InvoiceChange::PaymentActionRequired
        | InvoiceChange::Overdue => current.status == Some(StripeInvoiceStatus::Open),
        // Still a draft: finalizing was refused and nothing finalized it since
        // (the sync's own retry without automatic tax does, for one).
        InvoiceChange::FinalizationFailed => {
            current.status == Some(StripeInvoiceStatus::Draft)
                && current.last_finalization_error.is_some()
        }
        InvoiceChange::MarkedUncollectible => {
            current.status == Some(StripeInvoiceStatus::Uncollectible)
        }
        InvoiceChange::Voided => current.status == Some(StripeInvoiceStatus::Void),
        InvoiceChange::Sent => true,
    };
    if !holds {
        return Ok(Outcome::Ignored(format!(
            "Stripe invoice [{stripe_invoice_id}] has moved on since the event"
        )));
    }
    record_stripe_invoice(&mut invoice, &current);
    match change {
        InvoiceChange::Paid => clear_issues(&mut invoice, PAYMENT_COMPONENT),
        InvoiceChange::PaymentFailed => {
            clear_issues(&mut invoice, PAYMENT_COMPONENT);
            invoice.validation_issues.push(issue_of(
                "payment_failed",
                PAYMENT_COMPONENT,
                Severity::Warning,
                format!(
                    "Stripe could not charge the payment method; it retries by the account's settings, or save a new one with a checkout session and retry. Details: {}",
                    current.hosted_invoice_url.clone().unwrap_or_default()
                ),
                now,
            ));
        }
        InvoiceChange::PaymentActionRequired => {
            clear_issues(&mut invoice, PAYMENT_COMPONENT);
            invoice.validation_issues.push(issue_of(
                "payment_action_required",
                PAYMENT_COMPONENT,
                Severity::Warning,
                format!(
                    "the payment needs the customer's authentication on the hosted invoice page: {}",
                    current.hosted_invoice_url.clone().unwrap_or_default()
                ),
                now,
            ));
        }
        InvoiceChange::FinalizationFailed => {
            invoice.validation_issues.push(issue_of(
                "stripe_finalization_failed",
                SYNC_COMPONENT,
                Severity::Critical,
                format!(
                    "Stripe could not finalize the invoice: {}",
                    current.last_finalization_error.clone().unwrap_or_default()
                ),
                now,
            ));
        }
        _ => {}
    }
    if invoice.fire(trigger, now).is_none() {
        return Ok(Outcome::Ignored(format!(
            "invoice [{id}] is {}; the event changes nothing",
            before.as_str()
        )));
    }
    if invoice.status == S::Voided {
        invoice.voided_at = Some(now);
    }
    if !save(ctx, &ns, &mut invoice, before).await? {
        return Err(Error::Unavailable {
            detail: format!("invoice [{id}] changed while the event was applied"),
            retry_after_secs: Some(5),
        });
    }
    tracing::info!(invoice = %id, from = before.as_str(), to = invoice.status.as_str(), "invoice moved by a Stripe event");
    Ok(Outcome::Processed(Some(invoice.customer.id)))
}

// ---- the worker ---------------------------------------------------------------

/// Invoices one pass of the worker looks at, at most.
const BATCH: i64 = 50;

/// One pass: every due invoice (draft period over, sync due or interrupted)
/// is claimed and moved on. Returns how many were worked on.
pub async fn work_once(ctx: &Context) -> Result<usize> {
    let now = ctx.clock.now();
    let due = ctx.store.due_invoices(now, BATCH).await?;
    crate::telemetry::invoice_worker_due(due.len());
    let mut worked = 0;
    for invoice in due {
        let outcome = match invoice.status {
            ExtendedStatus::DraftWaitingAutoApproval => {
                super::invoicing::act(
                    ctx,
                    &invoice.namespace,
                    invoice.id,
                    invoice::Action::Advance,
                )
                .await
            }
            _ => run(ctx, &invoice.namespace, invoice.id, Step::Issue).await,
        };
        match outcome {
            Ok(_) => worked += 1,
            Err(e) => {
                tracing::warn!(invoice = %invoice.id, error = %e, "invoice worker step failed")
            }
        }
    }
    Ok(worked)
}

/// The worker of this process: a pass every `interval` until the process ends.
pub fn spawn_worker(ctx: Context, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = work_once(&ctx).await {
                tracing::warn!(error = %e, "invoice worker pass failed");
            }
        }
    })
}
