//! The invoice status machine (`draft` → `open` → `paid` | `void` | `uncollectible`) and
//! payments: `POST /v1/invoices/{id}/finalize`, `…/pay`, `…/void`, `…/mark_uncollectible`,
//! `…/send`, the automatic work the clock does (finalizing `auto_advance` drafts at
//! `automatically_finalizes_at`, collecting `auto_advance` `charge_automatically` invoices right
//! after finalization and retrying failures, `invoice.overdue` at `due_date`), and charging a
//! card with Stripe's test-card outcomes (`cards::charge_outcome`).
//!
//! A payment attempt: the invoice's payment intent is confirmed with the payment method; a
//! charge is made (`succeeded` / `failed`); a decline leaves the intent in
//! `requires_payment_method` with `last_payment_error`, a card that needs 3D Secure leaves it
//! in `requires_action` (`invoice.payment_action_required`; the hosted invoice page completes
//! it). Success pays the invoice's default invoice payment and the invoice.

use serde_json::{Value, json};

use crate::cards::{self, ChargeOutcome};
use crate::error::{ApiError, ApiResult};
use crate::params;
use crate::resources::{charges, invoice_payments, invoices, payment_intents, payment_methods};
use crate::spec::{self, check};
use crate::state::{ScheduledInvoiceAction, ScheduledInvoiceWork, State};

/// Delay between automatic collection attempts after a failure (Stripe's retry schedules are
/// configurable; the emulator retries every 3 days).
pub const RETRY_DELAY: i64 = 3 * 86_400;
/// Automatic attempts before the emulator stops retrying (the first one included).
pub const MAX_AUTOMATIC_ATTEMPTS: i64 = 4;

fn invoice_id(invoice: &Value) -> String {
    invoice["id"].as_str().unwrap_or_default().to_string()
}

/// Stores the invoice and emits `event_type` with it.
fn save_and_emit(
    state: &mut State,
    account: &str,
    invoice: &Value,
    event_type: &str,
) -> ApiResult<()> {
    state.save(account, invoice.clone())?;
    state.emit(account, event_type, &invoices::present(invoice), None)?;
    Ok(())
}

/// The error a refused finalization answers with and records in `last_finalization_error`.
fn finalization_refusal(state: &State, account: &str, invoice: &Value) -> Option<ApiError> {
    let customer = state.object_of_type(account, invoice["customer"].as_str()?, "customer")?;
    if invoice["automatic_tax"]["enabled"] == true
        && customer["address"]["country"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        return Some(
            ApiError::invalid(
                "The customer's location isn't recognized, so automatic tax can't be calculated. Set a valid address with a country on the customer, then finalize the invoice again.",
                "customer",
            )
            .code("customer_tax_location_invalid"),
        );
    }
    if invoice["collection_method"] == "send_invoice"
        && customer["email"].as_str().is_none_or(str::is_empty)
    {
        return Some(
            ApiError::invalid(
                "Missing email. In order to create invoices that are sent to the customer, the customer must have a valid email.",
                "customer",
            )
            .code("email_invalid"),
        );
    }
    None
}

/// The API error object Stripe stores in `last_finalization_error`.
fn error_object(error: &ApiError) -> Value {
    error.body()["error"].clone()
}

/// Finalizes a draft: assigns the number (`{customer.invoice_prefix}-{NNNN}` from the customer's
/// `next_invoice_sequence`), `hosted_invoice_url`, `invoice_pdf`, `status_transitions`; creates
/// the payment intent and default invoice payment when something is due, or pays a zero
/// invoice at once. Emits `invoice.finalized` (and what follows). A refusal records
/// `last_finalization_error`, emits `invoice.finalization_failed` and is returned.
pub fn finalize(state: &mut State, account: &str, mut invoice: Value) -> ApiResult<Value> {
    let id = invoice_id(&invoice);
    if invoice["status"] != "draft" {
        return Err(ApiError::invalid(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            "invoice",
        )
        .code("invoice_not_editable"));
    }
    if let Some(error) = finalization_refusal(state, account, &invoice) {
        invoice["last_finalization_error"] = error_object(&error);
        save_and_emit(state, account, &invoice, "invoice.finalization_failed")?;
        return Err(error);
    }
    let now = state.now();
    let customer_id = invoice["customer"].as_str().unwrap_or_default().to_string();
    if let Some(mut customer) = state.object_of_type(account, &customer_id, "customer") {
        invoices::copy_customer(&mut invoice, &customer);
        if invoice["number"].is_null() {
            let prefix = customer["invoice_prefix"]
                .as_str()
                .unwrap_or("INV")
                .to_string();
            let sequence = customer["next_invoice_sequence"].as_i64().unwrap_or(1);
            invoice["number"] = format!("{prefix}-{sequence:04}").into();
            customer["next_invoice_sequence"] = (sequence + 1).into();
            state.save(account, customer)?;
        }
    }
    let public_url = state.public_url.clone();
    invoice["status"] = "open".into();
    invoice["status_transitions"]["finalized_at"] = now.into();
    invoice["hosted_invoice_url"] = format!("{public_url}/i/{id}").into();
    invoice["invoice_pdf"] = format!("{public_url}/i/{id}/pdf").into();
    invoice["automatically_finalizes_at"] = Value::Null;
    invoice["last_finalization_error"] = Value::Null;
    invoice["ending_balance"] = 0.into();
    if invoice["effective_at"].is_null() {
        invoice["effective_at"] = now.into();
    }
    invoices::recompute_totals(&mut invoice);
    if invoice["amount_due"].as_i64().unwrap_or(0) == 0 {
        save_and_emit(state, account, &invoice, "invoice.finalized")?;
        return mark_paid(state, account, invoice, now);
    }
    let payment_intent = payment_intents::for_invoice(&invoice, now);
    state.insert(account, payment_intents::KIND, &payment_intent)?;
    state.emit(account, "payment_intent.created", &payment_intent, None)?;
    let payment = invoice_payments::new(&invoice, &payment_intent, now);
    state.insert(account, invoice_payments::KIND, &payment)?;
    if invoice["auto_advance"] == true && invoice["collection_method"] == "charge_automatically" {
        schedule_collection(state, account, &mut invoice);
    }
    if invoice["collection_method"] == "send_invoice"
        && let Some(due_date) = invoice["due_date"].as_i64()
    {
        state.schedule_invoice(account, &id, due_date, ScheduledInvoiceAction::Overdue);
    }
    save_and_emit(state, account, &invoice, "invoice.finalized")?;
    if invoice["auto_advance"] == true && invoice["collection_method"] == "send_invoice" {
        // Stripe emails the invoice (in test mode: only the event).
        state.emit(account, "invoice.sent", &invoices::present(&invoice), None)?;
    }
    Ok(invoice)
}

/// Schedules an automatic collection attempt now (`next_payment_attempt`).
pub fn schedule_collection(state: &mut State, account: &str, invoice: &mut Value) {
    let now = state.now();
    invoice["next_payment_attempt"] = now.into();
    state.schedule_invoice(
        account,
        &invoice_id(invoice),
        now,
        ScheduledInvoiceAction::Collect,
    );
}

/// Marks an invoice paid (amount paid = amount due) and emits `invoice.paid` and
/// `invoice.payment_succeeded`.
fn mark_paid(state: &mut State, account: &str, mut invoice: Value, now: i64) -> ApiResult<Value> {
    let due = invoice["amount_due"].as_i64().unwrap_or(0);
    invoice["status"] = "paid".into();
    invoice["amount_paid"] = due.into();
    invoice["amount_remaining"] = 0.into();
    invoice["status_transitions"]["paid_at"] = now.into();
    invoice["auto_advance"] = false.into();
    invoice["next_payment_attempt"] = Value::Null;
    state.save(account, invoice.clone())?;
    state.emit(account, "invoice.paid", &invoices::present(&invoice), None)?;
    state.emit(
        account,
        "invoice.payment_succeeded",
        &invoices::present(&invoice),
        None,
    )?;
    Ok(invoice)
}

/// Whether payment method `id` was saved through a setup intent that succeeded (what lets
/// 4000 0025 0000 3155 pay off-session without authentication).
fn set_up_through_setup_intent(state: &State, account: &str, id: &str) -> bool {
    let Some(stored) = state.accounts.get(account) else {
        return false;
    };
    stored.lists.get("setup_intent").is_some_and(|ids| {
        ids.iter().rev().any(|setup_intent_id| {
            stored.objects.get(setup_intent_id).is_some_and(|text| {
                let setup_intent = text.value();
                setup_intent["payment_method"] == id && setup_intent["status"] == "succeeded"
            })
        })
    })
}

/// How a payment attempt ended.
pub enum Attempt {
    Paid(Value),
    /// Declined; the invoice stays open. The error is what `pay` answers (402 `card_error`).
    Declined(Value, ApiError),
    /// The card needs 3D Secure; the invoice stays open, its payment intent `requires_action`.
    RequiresAction(Value, ApiError),
}

/// The open payment intent of an invoice (its default payment's), creating one if the last was
/// canceled.
fn open_payment_intent(state: &mut State, account: &str, invoice: &Value) -> ApiResult<Value> {
    let id = invoice_id(invoice);
    if let Some(intent) = invoice_payments::default_payment_intent(state, account, &id)
        && intent["status"] != "canceled"
        && intent["status"] != "succeeded"
    {
        return Ok(intent);
    }
    let now = state.now();
    let intent = payment_intents::for_invoice(invoice, now);
    state.insert(account, payment_intents::KIND, &intent)?;
    state.emit(account, "payment_intent.created", &intent, None)?;
    let payment = invoice_payments::new(invoice, &intent, now);
    state.insert(account, invoice_payments::KIND, &payment)?;
    Ok(intent)
}

/// Completes a successful payment: the charge, the payment intent, the invoice payment and the
/// invoice, with their events.
fn succeed(
    state: &mut State,
    account: &str,
    invoice: Value,
    mut intent: Value,
    payment_method: &Value,
) -> ApiResult<Value> {
    let now = state.now();
    let charge = charges::new(&intent, payment_method, None, now);
    state.insert(account, charges::KIND, &charge)?;
    state.emit(account, "charge.succeeded", &charge, None)?;
    intent["status"] = "succeeded".into();
    intent["amount_received"] = intent["amount"].clone();
    intent["latest_charge"] = charge["id"].clone();
    intent["payment_method"] = payment_method["id"].clone();
    intent["last_payment_error"] = Value::Null;
    intent["next_action"] = Value::Null;
    state.save(account, intent.clone())?;
    state.emit(account, "payment_intent.succeeded", &intent, None)?;
    let id = invoice_id(&invoice);
    if let Some(mut payment) = invoice_payments::for_invoice(state, account, &id)
        .into_iter()
        .find(|payment| payment["payment"]["payment_intent"] == intent["id"])
    {
        payment["status"] = "paid".into();
        payment["amount_paid"] = intent["amount"].clone();
        payment["payment"]["charge"] = charge["id"].clone();
        payment["status_transitions"]["paid_at"] = now.into();
        state.save(account, payment.clone())?;
        state.emit(account, "invoice_payment.paid", &payment, None)?;
    }
    mark_paid(state, account, invoice, now)
}

/// Attempts to pay `invoice` (open or uncollectible) with `payment_method`. `off_session`: the
/// customer is not present (automatic collection, `pay` by default).
pub fn attempt(
    state: &mut State,
    account: &str,
    mut invoice: Value,
    payment_method: &Value,
    off_session: bool,
) -> ApiResult<Attempt> {
    let now = state.now();
    let mut intent = open_payment_intent(state, account, &invoice)?;
    invoice["attempt_count"] = (invoice["attempt_count"].as_i64().unwrap_or(0) + 1).into();
    invoice["attempted"] = true.into();
    let pm_id = payment_method["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let number = payment_method["card"]["fingerprint"]
        .as_str()
        .and_then(cards::test_card_for_fingerprint);
    let set_up =
        number == Some("4000002500003155") && set_up_through_setup_intent(state, account, &pm_id);
    match cards::charge_outcome(number, off_session, set_up) {
        ChargeOutcome::Succeeds => Ok(Attempt::Paid(succeed(
            state,
            account,
            invoice,
            intent,
            payment_method,
        )?)),
        ChargeOutcome::Declined(decline_code) => {
            let error = ApiError::new(402, "card_error", "Your card was declined.")
                .code("card_declined")
                .with("decline_code", json!(decline_code));
            let charge = charges::new(&intent, payment_method, Some(&error), now);
            state.insert(account, charges::KIND, &charge)?;
            state.emit(account, "charge.failed", &charge, None)?;
            intent["status"] = "requires_payment_method".into();
            intent["latest_charge"] = charge["id"].clone();
            intent["payment_method"] = Value::Null;
            intent["next_action"] = Value::Null;
            intent["last_payment_error"] =
                payment_intents::payment_error(&error, payment_method, charge["id"].as_str());
            state.save(account, intent.clone())?;
            state.emit(account, "payment_intent.payment_failed", &intent, None)?;
            state.save(account, invoice.clone())?;
            state.emit(
                account,
                "invoice.payment_failed",
                &invoices::present(&invoice),
                None,
            )?;
            let error = error
                .with("charge", charge["id"].clone())
                .with("payment_intent", intent.clone())
                .with("payment_method", payment_method.clone());
            Ok(Attempt::Declined(invoice, error))
        }
        ChargeOutcome::RequiresAuthentication => {
            let authentication = ApiError::new(
                402,
                "card_error",
                "Your card was declined. This transaction requires authentication.",
            )
            .code("authentication_required")
            .with("decline_code", json!("authentication_required"));
            intent["status"] = "requires_action".into();
            intent["payment_method"] = pm_id.clone().into();
            intent["next_action"] = payment_intents::three_d_secure_action();
            intent["last_payment_error"] =
                payment_intents::payment_error(&authentication, payment_method, None);
            state.save(account, intent.clone())?;
            state.emit(account, "payment_intent.requires_action", &intent, None)?;
            invoice["next_payment_attempt"] = Value::Null;
            state.save(account, invoice.clone())?;
            state.emit(
                account,
                "invoice.payment_failed",
                &invoices::present(&invoice),
                None,
            )?;
            state.emit(
                account,
                "invoice.payment_action_required",
                &invoices::present(&invoice),
                None,
            )?;
            let error = ApiError::new(
                402,
                "card_error",
                "This payment requires additional user action before it can be completed successfully. Payment can be completed using the PaymentIntent associated with the invoice. See https://stripe.com/docs/billing/subscriptions/overview#requires-action for more details.",
            )
            .code("invoice_payment_intent_requires_action")
            .with("payment_intent", intent.clone());
            Ok(Attempt::RequiresAction(invoice, error))
        }
    }
}

/// Answers the 3D Secure challenge of an invoice whose payment intent `requires_action`
/// (the hosted invoice page, or the control route): success pays the invoice, failure leaves
/// the intent in `requires_payment_method` with `payment_intent_authentication_failure`.
pub fn authenticate(
    state: &mut State,
    account: &str,
    invoice: Value,
    succeeded: bool,
) -> ApiResult<Attempt> {
    let id = invoice_id(&invoice);
    let mut intent = invoice_payments::default_payment_intent(state, account, &id)
        .filter(|intent| intent["status"] == "requires_action")
        .ok_or_else(|| {
            ApiError::invalid(
                format!("Invoice {id} has no payment waiting for authentication."),
                "invoice",
            )
            .code("payment_intent_unexpected_state")
        })?;
    let payment_method = intent["payment_method"]
        .as_str()
        .and_then(|pm| state.object_of_type(account, pm, "payment_method"))
        .unwrap_or_else(|| json!({"id": intent["payment_method"]}));
    if succeeded {
        return Ok(Attempt::Paid(succeed(
            state,
            account,
            invoice,
            intent,
            &payment_method,
        )?));
    }
    let error = ApiError::new(
        402,
        "invalid_request_error",
        "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
    )
    .code("payment_intent_authentication_failure");
    intent["status"] = "requires_payment_method".into();
    intent["payment_method"] = Value::Null;
    intent["next_action"] = Value::Null;
    intent["last_payment_error"] = payment_intents::payment_error(&error, &payment_method, None);
    state.save(account, intent.clone())?;
    state.emit(account, "payment_intent.payment_failed", &intent, None)?;
    state.emit(
        account,
        "invoice.payment_failed",
        &invoices::present(&invoice),
        None,
    )?;
    Ok(Attempt::Declined(
        invoice,
        error.with("payment_intent", intent),
    ))
}

/// The payment method an invoice is charged with: the invoice's default, else the customer's
/// `invoice_settings.default_payment_method`.
pub fn default_payment_method(state: &State, account: &str, invoice: &Value) -> Option<Value> {
    let id = invoice["default_payment_method"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            let customer =
                state.object_of_type(account, invoice["customer"].as_str()?, "customer")?;
            customer["invoice_settings"]["default_payment_method"]
                .as_str()
                .map(str::to_string)
        })?;
    state.object_of_type(account, &id, "payment_method")
}

fn no_payment_method() -> ApiError {
    ApiError::invalid(
        "This customer has no attached payment source or default payment method. Please consider adding a default payment method. For more information, visit https://docs.stripe.com/billing/subscriptions/payment-methods-setting#payment-method-priority.",
        "payment_method",
    )
}

/// The stored invoice `id`, with the due clock work done first.
fn load(state: &mut State, account: &str, id: &str) -> ApiResult<Value> {
    invoices::get(state, account, id)
}

/// `POST /v1/invoices/{id}/finalize` (`auto_advance` may be set on the way).
pub fn finalize_request(
    state: &mut State,
    account: &str,
    id: &str,
    params: &Value,
) -> ApiResult<Value> {
    check(&spec::INVOICE_FINALIZE, params, "")?;
    let mut invoice = load(state, account, id)?;
    if invoice["status"] == "draft"
        && let Some(flag) = params::non_empty(params, "auto_advance")
    {
        invoice["auto_advance"] = (flag == "true").into();
    }
    let invoice = finalize(state, account, invoice)?;
    Ok(invoices::present_for(state, account, &invoice, params))
}

/// `POST /v1/invoices/{id}/pay` (`payment_method`, `off_session` (default true),
/// `paid_out_of_band`). A draft is finalized first. Paid → "Invoice is already paid"; void →
/// Stripe's 400.
pub fn pay(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICE_PAY, params, "")?;
    let mut invoice = load(state, account, id)?;
    match invoice["status"].as_str().unwrap_or_default() {
        "paid" => return Err(ApiError::invalid("Invoice is already paid", "invoice")),
        "void" => {
            return Err(ApiError::invalid(
                "This invoice has been voided and can no longer be paid.",
                "invoice",
            ));
        }
        _ => {}
    }
    if params::is_present(params, "source") {
        return Err(ApiError::invalid(
            "Sources are not emulated; pay with a `payment_method`.",
            "source",
        ));
    }
    let payment_method = match params::non_empty(params, "payment_method") {
        Some(pm) => {
            payment_methods::check_attached_to(
                state,
                account,
                invoice["customer"].as_str().unwrap_or_default(),
                pm,
                "payment_method",
            )?;
            Some(payment_methods::get(state, account, pm)?)
        }
        None => None,
    };
    let out_of_band = params::non_empty(params, "paid_out_of_band") == Some("true");
    if invoice["status"] == "draft" {
        invoice = finalize(state, account, invoice)?;
        if invoice["status"] == "paid" {
            return Ok(invoices::present_for(state, account, &invoice, params));
        }
    }
    if out_of_band {
        let now = state.now();
        cancel_payment(state, account, &invoice, None)?;
        let invoice = mark_paid(state, account, invoice, now)?;
        return Ok(invoices::present_for(state, account, &invoice, params));
    }
    let payment_method = payment_method
        .or_else(|| default_payment_method(state, account, &invoice))
        .ok_or_else(no_payment_method)?;
    let off_session = params::non_empty(params, "off_session") != Some("false");
    match attempt(state, account, invoice, &payment_method, off_session)? {
        Attempt::Paid(invoice) => Ok(invoices::present_for(state, account, &invoice, params)),
        Attempt::Declined(_, error) | Attempt::RequiresAction(_, error) => Err(error),
    }
}

/// Cancels the invoice's open payment intent and its default payment (void, out of band).
fn cancel_payment(
    state: &mut State,
    account: &str,
    invoice: &Value,
    reason: Option<&str>,
) -> ApiResult<()> {
    let now = state.now();
    let id = invoice_id(invoice);
    let Some(mut payment) = invoice_payments::default_for(state, account, &id) else {
        return Ok(());
    };
    if payment["status"] != "open" {
        return Ok(());
    }
    payment["status"] = "canceled".into();
    payment["status_transitions"]["canceled_at"] = now.into();
    state.save(account, payment.clone())?;
    if let Some(mut intent) = payment["payment"]["payment_intent"]
        .as_str()
        .and_then(|pi| state.object_of_type(account, pi, payment_intents::KIND))
        && intent["status"] != "succeeded"
        && intent["status"] != "canceled"
    {
        intent["status"] = "canceled".into();
        intent["canceled_at"] = now.into();
        intent["cancellation_reason"] = reason.map(Value::from).unwrap_or(Value::Null);
        intent["next_action"] = Value::Null;
        state.save(account, intent.clone())?;
        state.emit(account, "payment_intent.canceled", &intent, None)?;
    }
    Ok(())
}

/// `POST /v1/invoices/{id}/void`: open or uncollectible invoices only.
pub fn void(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    let mut invoice = load(state, account, id)?;
    let status = invoice["status"].as_str().unwrap_or_default().to_string();
    match status.as_str() {
        "open" | "uncollectible" => {}
        "draft" => {
            return Err(ApiError::invalid(
                "You can only void invoices that have been finalized. Delete a draft invoice instead.",
                "invoice",
            )
            .code("invoice_not_editable"));
        }
        "paid" => {
            return Err(ApiError::invalid(
                "You cannot void an invoice that has already been paid.",
                "invoice",
            )
            .code("invoice_not_editable"));
        }
        _ => {
            return Err(
                ApiError::invalid("This invoice has already been voided.", "invoice")
                    .code("invoice_not_editable"),
            );
        }
    }
    cancel_payment(state, account, &invoice, Some("void_invoice"))?;
    invoice["status"] = "void".into();
    invoice["status_transitions"]["voided_at"] = state.now().into();
    invoice["auto_advance"] = false.into();
    invoice["next_payment_attempt"] = Value::Null;
    save_and_emit(state, account, &invoice, "invoice.voided")?;
    Ok(invoices::present_for(state, account, &invoice, params))
}

/// `POST /v1/invoices/{id}/mark_uncollectible`: open invoices only.
pub fn mark_uncollectible(
    state: &mut State,
    account: &str,
    id: &str,
    params: &Value,
) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    let mut invoice = load(state, account, id)?;
    if invoice["status"] != "open" {
        return Err(ApiError::invalid(
            format!(
                "You can only mark open invoices as uncollectible; this invoice is {}.",
                invoice["status"].as_str().unwrap_or_default()
            ),
            "invoice",
        )
        .code("invoice_not_editable"));
    }
    invoice["status"] = "uncollectible".into();
    invoice["status_transitions"]["marked_uncollectible_at"] = state.now().into();
    invoice["auto_advance"] = false.into();
    invoice["next_payment_attempt"] = Value::Null;
    save_and_emit(state, account, &invoice, "invoice.marked_uncollectible")?;
    Ok(invoices::present_for(state, account, &invoice, params))
}

/// `POST /v1/invoices/{id}/send`: emits `invoice.sent` (in test mode Stripe sends no email
/// either). A draft is finalized first; void invoices cannot be sent.
pub fn send(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    let mut invoice = load(state, account, id)?;
    if invoice["status"] == "void" {
        return Err(
            ApiError::invalid("You can't send a void invoice.", "invoice")
                .code("invoice_not_editable"),
        );
    }
    if invoice["collection_method"] != "send_invoice" {
        return Err(ApiError::invalid(
            "You can only manually send an invoice if its collection method is 'send_invoice'.",
            "invoice",
        ));
    }
    if invoice["status"] == "draft" {
        invoice = finalize(state, account, invoice)?;
        if invoice["auto_advance"] == true {
            // finalize already announced the sending.
            return Ok(invoices::present_for(state, account, &invoice, params));
        }
    }
    state.emit(account, "invoice.sent", &invoices::present(&invoice), None)?;
    Ok(invoices::present_for(state, account, &invoice, params))
}

/// Runs one due entry of the invoice schedule (if the invoice is still where it was).
pub fn run_scheduled(state: &mut State, work: &ScheduledInvoiceWork) -> ApiResult<()> {
    let account = work.account.as_str();
    let Some(invoice) = state.object_of_type(account, &work.invoice, invoices::KIND) else {
        return Ok(());
    };
    match work.action {
        ScheduledInvoiceAction::Finalize => {
            if invoice["status"] == "draft"
                && invoice["auto_advance"] == true
                && invoice["automatically_finalizes_at"].as_i64() == Some(work.at)
            {
                // A refusal is recorded on the invoice (`last_finalization_error`).
                let _ = finalize(state, account, invoice);
            }
        }
        ScheduledInvoiceAction::Collect => {
            if invoice["status"] == "open"
                && invoice["auto_advance"] == true
                && invoice["collection_method"] == "charge_automatically"
                && invoice["next_payment_attempt"].as_i64() == Some(work.at)
            {
                collect(state, account, invoice, work.at)?;
            }
        }
        ScheduledInvoiceAction::Overdue => {
            if invoice["status"] == "open"
                && invoice["collection_method"] == "send_invoice"
                && invoice["due_date"].as_i64() == Some(work.at)
            {
                state.emit(
                    account,
                    "invoice.overdue",
                    &invoices::present(&invoice),
                    None,
                )?;
            }
        }
    }
    Ok(())
}

/// One automatic collection attempt with the default payment method; a failure schedules the
/// next attempt (`RETRY_DELAY` after `at`, the time this attempt was due; at most
/// `MAX_AUTOMATIC_ATTEMPTS`).
pub fn collect(state: &mut State, account: &str, mut invoice: Value, at: i64) -> ApiResult<Value> {
    let Some(payment_method) = default_payment_method(state, account, &invoice) else {
        invoice["attempt_count"] = (invoice["attempt_count"].as_i64().unwrap_or(0) + 1).into();
        invoice["attempted"] = true.into();
        schedule_retry(state, account, &mut invoice, at);
        state.save(account, invoice.clone())?;
        state.emit(
            account,
            "invoice.payment_failed",
            &invoices::present(&invoice),
            None,
        )?;
        return Ok(invoice);
    };
    match attempt(state, account, invoice, &payment_method, true)? {
        Attempt::Paid(invoice) | Attempt::RequiresAction(invoice, _) => Ok(invoice),
        Attempt::Declined(mut invoice, _) => {
            schedule_retry(state, account, &mut invoice, at);
            state.save(account, invoice.clone())?;
            Ok(invoice)
        }
    }
}

fn schedule_retry(state: &mut State, account: &str, invoice: &mut Value, after: i64) {
    let attempts = invoice["attempt_count"].as_i64().unwrap_or(0);
    if attempts >= MAX_AUTOMATIC_ATTEMPTS || invoice["auto_advance"] != true {
        invoice["next_payment_attempt"] = Value::Null;
        return;
    }
    let at = after + RETRY_DELAY;
    invoice["next_payment_attempt"] = at.into();
    state.schedule_invoice(
        account,
        &invoice_id(invoice),
        at,
        ScheduledInvoiceAction::Collect,
    );
}
