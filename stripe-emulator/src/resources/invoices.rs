//! Invoices: create, retrieve, update, delete, list, the lines (`GET …/lines`,
//! `POST …/lines/{line}`, `add_lines`, `update_lines`, `remove_lines`) and totals
//! (`/v1/invoices`). The status transitions (finalize, pay, void, mark_uncollectible, send) and
//! automatic collection are in `invoice_transitions`.
//!
//! Every line of an emulated invoice is an invoice item's line (`parent.type =
//! invoice_item_details`); lines are kept inside the stored invoice and rebuilt from its items
//! whenever one changes. Totals as Stripe computes them without discounts, taxes, credit notes
//! or customer balance: `subtotal` = `total` = Σ line amounts, `amount_due` = `total`,
//! `amount_remaining` = `amount_due` − `amount_paid`. Amounts are integers in the currency's
//! minor unit, whatever its decimal places.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids::new_id;
use crate::money;
use crate::pagination::list as list_page;
use crate::params::{self, nullable_string};
use crate::resources::{customers, find, invoice_items, invoice_payments, payment_methods};
use crate::spec::{self, check};
use crate::state::{ScheduledInvoiceAction, State, previous_attributes};

/// The list kind and `object` of invoices.
pub const KIND: &str = "invoice";

/// How long Stripe waits before finalizing an `auto_advance` draft (its default grace period).
pub const AUTO_FINALIZE_DELAY: i64 = 3600;

/// Lines embedded in an invoice object (more: `GET /v1/invoices/{id}/lines`).
const EMBEDDED_LINES: usize = 10;

/// The account's invoice `id`, or Stripe's 404.
pub fn get(state: &State, account: &str, id: &str) -> ApiResult<Value> {
    find(state, account, id, KIND, "invoice")
}

/// Stripe's 400 `invoice_not_editable` unless the invoice is a draft.
pub fn ensure_draft(invoice: &Value, param: &str) -> ApiResult<()> {
    if invoice["status"] == "draft" {
        return Ok(());
    }
    Err(ApiError::invalid(
        format!(
            "You can only modify draft invoices. Invoice {} has status {}.",
            invoice["id"].as_str().unwrap_or_default(),
            invoice["status"].as_str().unwrap_or_default()
        ),
        param,
    )
    .code("invoice_not_editable"))
}

/// The customer fields an invoice copies (at creation, and again at finalization).
pub fn copy_customer(invoice: &mut Value, customer: &Value) {
    invoice["customer_address"] = customer["address"].clone();
    invoice["customer_email"] = customer["email"].clone();
    invoice["customer_name"] = customer["name"].clone();
    invoice["customer_phone"] = customer["phone"].clone();
    invoice["customer_shipping"] = customer["shipping"].clone();
    invoice["customer_tax_exempt"] = customer["tax_exempt"].clone();
    refresh_automatic_tax(invoice);
}

/// `automatic_tax.status`: `requires_location_inputs` until the customer has an address with a
/// country, then `complete` (no tax is calculated: amounts stay as they are).
fn refresh_automatic_tax(invoice: &mut Value) {
    if invoice["automatic_tax"]["enabled"] == true {
        let located = invoice["customer_address"]["country"]
            .as_str()
            .is_some_and(|country| !country.is_empty());
        invoice["automatic_tax"]["status"] = if located {
            "complete"
        } else {
            "requires_location_inputs"
        }
        .into();
        invoice["automatic_tax"]["liability"] = json!({"type": "self"});
    } else {
        invoice["automatic_tax"] = json!({"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null});
    }
}

/// Recomputes the totals from the lines (and `amount_paid`).
pub fn recompute_totals(invoice: &mut Value) {
    let subtotal: i64 = invoice["lines"]["data"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|line| line["amount"].as_i64())
                .sum()
        })
        .unwrap_or(0);
    let amount_paid = invoice["amount_paid"].as_i64().unwrap_or(0);
    invoice["subtotal"] = subtotal.into();
    invoice["subtotal_excluding_tax"] = subtotal.into();
    invoice["total"] = subtotal.into();
    invoice["total_excluding_tax"] = subtotal.into();
    invoice["amount_due"] = subtotal.max(0).into();
    invoice["amount_remaining"] = (subtotal.max(0) - amount_paid).max(0).into();
    let count = invoice["lines"]["data"].as_array().map_or(0, Vec::len);
    invoice["lines"]["total_count"] = count.into();
}

/// An invoice item's line on `invoice_id`, with id `line_id`.
fn line_for(item: &Value, line_id: &str, invoice_id: &str) -> Value {
    json!({
        "amount": item["amount"],
        "currency": item["currency"],
        "description": item["description"],
        "discount_amounts": [],
        "discountable": item["discountable"],
        "discounts": [],
        "id": line_id,
        "invoice": invoice_id,
        "livemode": false,
        "metadata": item["metadata"],
        "object": "line_item",
        "parent": {
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": false,
                "proration_details": {"credited_items": null},
                "subscription": null,
            },
            "subscription_item_details": null,
            "type": "invoice_item_details",
        },
        "period": item["period"],
        "pretax_credit_amounts": [],
        "pricing": item["pricing"],
        "quantity": item["quantity"],
        "quantity_decimal": item["quantity_decimal"],
        "subscription": null,
        "subtotal": item["amount"],
        "taxes": [],
    })
}

/// The invoice item behind a line.
fn item_of_line(line: &Value) -> Option<&str> {
    line["parent"]["invoice_item_details"]["invoice_item"].as_str()
}

/// Rebuilds the lines of `invoice` from its items (keeping line ids) and its totals.
fn rebuild(state: &State, account: &str, invoice: &mut Value) {
    let invoice_id = invoice["id"].as_str().unwrap_or_default().to_string();
    let existing: Vec<(String, String)> = invoice["lines"]["data"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|line| {
                    Some((
                        item_of_line(line)?.to_string(),
                        line["id"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut lines = Vec::new();
    for item_id in invoice_items::ids_on_invoice(state, account, &invoice_id) {
        let Some(item) = state.object_of_type(account, &item_id, invoice_items::KIND) else {
            continue;
        };
        let line_id = existing
            .iter()
            .find(|(known, _)| *known == item_id)
            .map(|(_, line)| line.clone())
            .unwrap_or_else(|| new_id("il"));
        lines.push(line_for(&item, &line_id, &invoice_id));
    }
    invoice["lines"]["data"] = Value::Array(lines);
    recompute_totals(invoice);
}

/// Stores a changed invoice and emits `invoice.updated` with what changed.
pub fn save_changed(
    state: &mut State,
    account: &str,
    before: &Value,
    invoice: &Value,
) -> ApiResult<()> {
    if invoice == before {
        return Ok(());
    }
    state.save(account, invoice.clone())?;
    let mut previous = previous_attributes(before, invoice);
    if let Some(lines) = previous.get_mut("lines") {
        // As Stripe does for lists: no line data in previous_attributes.
        *lines = json!({"total_count": before["lines"]["total_count"]});
    }
    state.emit(
        account,
        "invoice.updated",
        &present(invoice),
        Some(previous),
    )?;
    Ok(())
}

/// Rebuilds the line of `item` on draft `invoice_id` and the totals (`invoice.updated`).
pub fn sync_item(
    state: &mut State,
    account: &str,
    invoice_id: &str,
    _item: &Value,
) -> ApiResult<()> {
    let Some(before) = state.object_of_type(account, invoice_id, KIND) else {
        return Ok(());
    };
    let mut invoice = before.clone();
    rebuild(state, account, &mut invoice);
    save_changed(state, account, &before, &invoice)
}

/// Drops the line of a deleted item from `invoice_id`.
pub fn remove_item_line(
    state: &mut State,
    account: &str,
    invoice_id: &str,
    _item: &str,
) -> ApiResult<()> {
    sync_item(state, account, invoice_id, &Value::Null)
}

/// The invoice as the API shows it: at most 10 embedded lines (`has_more` tells of others).
pub fn present(invoice: &Value) -> Value {
    let mut shown = invoice.clone();
    if let Some(lines) = shown["lines"]["data"].as_array_mut()
        && lines.len() > EMBEDDED_LINES
    {
        lines.truncate(EMBEDDED_LINES);
        shown["lines"]["has_more"] = true.into();
    }
    shown
}

/// `present`, plus the includable fields the request's `expand[]` asks for: `payments` (the
/// invoice's payments) and `confirmation_secret` (its payment intent's client secret).
pub fn present_for(state: &State, account: &str, invoice: &Value, params: &Value) -> Value {
    let mut shown = present(invoice);
    let expand = params::string_array(params, "expand").unwrap_or_default();
    let asks = |field: &str| {
        expand
            .iter()
            .any(|path| path == field || path.starts_with(&format!("{field}.")))
    };
    let id = invoice["id"].as_str().unwrap_or_default();
    if asks("payments") {
        let payments = invoice_payments::for_invoice(state, account, id);
        shown["payments"] = json!({
            "data": payments,
            "has_more": false,
            "object": "list",
            "url": format!("/v1/invoice_payments?invoice={id}"),
        });
    }
    if asks("confirmation_secret")
        && let Some(payment_intent) = invoice_payments::default_payment_intent(state, account, id)
    {
        shown["confirmation_secret"] = json!({
            "client_secret": payment_intent["client_secret"],
            "type": "payment_intent",
        });
    }
    shown
}

/// A collection method from the parameters (or `current`).
fn collection_method<'a>(params: &'a Value, current: &'a str) -> &'a str {
    params::non_empty(params, "collection_method").unwrap_or(current)
}

/// Applies `days_until_due` / `due_date` for `send_invoice` invoices (Stripe's rules: one of
/// them for `send_invoice`, neither for `charge_automatically`).
fn apply_due(invoice: &mut Value, params: &Value, now: i64, creating: bool) -> ApiResult<()> {
    let method = invoice["collection_method"]
        .as_str()
        .unwrap_or("charge_automatically")
        .to_string();
    let days = params::integer(params, "days_until_due");
    let due_date = params::integer(params, "due_date");
    if method == "charge_automatically" {
        if days.is_some() {
            return Err(ApiError::invalid(
                "Invoices with `collection_method=charge_automatically` cannot have `days_until_due`; it applies to `collection_method=send_invoice` only.".to_string(),
                "days_until_due",
            ));
        }
        if due_date.is_some() {
            return Err(ApiError::invalid(
                "Invoices with `collection_method=charge_automatically` cannot have a `due_date`; it applies to `collection_method=send_invoice` only.".to_string(),
                "due_date",
            ));
        }
        invoice["due_date"] = Value::Null;
        return Ok(());
    }
    if days.is_some() && due_date.is_some() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: days_until_due, due_date.".to_string(),
            "due_date",
        ));
    }
    if let Some(days) = days {
        if days < 0 {
            return Err(ApiError::invalid(
                "`days_until_due` must be zero or more.".to_string(),
                "days_until_due",
            ));
        }
        let from = invoice["created"].as_i64().unwrap_or(now);
        invoice["due_date"] = (from + days * 86_400).into();
    } else if let Some(due_date) = due_date {
        if due_date < now {
            return Err(ApiError::invalid(
                "The `due_date` must be in the future.".to_string(),
                "due_date",
            ));
        }
        invoice["due_date"] = due_date.into();
    } else if invoice["due_date"].is_null()
        && (creating || params.get("collection_method").is_some())
    {
        return Err(ApiError::invalid(
            "Invoices with `collection_method=send_invoice` need `days_until_due` or `due_date`."
                .to_string(),
            "days_until_due",
        ));
    }
    Ok(())
}

/// `auto_advance` and the scheduled finalization of a draft.
fn apply_auto_advance(state: &mut State, account: &str, invoice: &mut Value, params: &Value) {
    if let Some(flag) = params::non_empty(params, "auto_advance") {
        invoice["auto_advance"] = (flag == "true").into();
    }
    if invoice["status"] != "draft" {
        return;
    }
    if invoice["auto_advance"] == true {
        let at = params::integer(params, "automatically_finalizes_at")
            .or_else(|| invoice["automatically_finalizes_at"].as_i64())
            .unwrap_or_else(|| state.now() + AUTO_FINALIZE_DELAY);
        invoice["automatically_finalizes_at"] = at.into();
        state.schedule_invoice(
            account,
            invoice["id"].as_str().unwrap_or_default(),
            at,
            ScheduledInvoiceAction::Finalize,
        );
    } else {
        invoice["automatically_finalizes_at"] = Value::Null;
    }
}

/// Fields a create or update on a draft sets directly.
fn apply_fields(invoice: &mut Value, params: &Value) {
    for key in ["description", "footer", "statement_descriptor", "number"] {
        if params.get(key).is_some() {
            invoice[key] = nullable_string(params, key);
        }
    }
    if let Some(metadata) = params.get("metadata") {
        invoice["metadata"] = params::merge_metadata(&invoice["metadata"], metadata);
    }
    if let Some(automatic_tax) = params.get("automatic_tax").filter(|v| v.is_object())
        && let Some(enabled) = params::non_empty(automatic_tax, "enabled")
    {
        invoice["automatic_tax"]["enabled"] = (enabled == "true").into();
    }
    if let Some(fields) = params.get("custom_fields") {
        invoice["custom_fields"] = match fields.as_array() {
            Some(fields) => Value::Array(
                fields
                    .iter()
                    .map(|field| json!({"name": field["name"], "value": field["value"]}))
                    .collect(),
            ),
            None => Value::Null,
        };
    }
    if let Some(effective_at) = params::integer(params, "effective_at") {
        invoice["effective_at"] = effective_at.into();
    }
}

/// Stripe's 400 unless `default_payment_method` is one of the customer's payment methods.
fn check_default_payment_method(
    state: &State,
    account: &str,
    customer: &str,
    params: &Value,
) -> ApiResult<()> {
    if let Some(payment_method) = params::non_empty(params, "default_payment_method") {
        payment_methods::check_attached_to(
            state,
            account,
            customer,
            payment_method,
            "default_payment_method",
        )?;
    }
    Ok(())
}

/// `POST /v1/invoices`
pub fn create(state: &mut State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICE_CREATE, params, "")?;
    for unsupported in ["subscription", "from_invoice"] {
        if params::is_present(params, unsupported) {
            return Err(ApiError::invalid(
                format!("The emulator does not support `{unsupported}` on invoices."),
                unsupported,
            ));
        }
    }
    let customer_id =
        params::non_empty(params, "customer").ok_or_else(|| ApiError::missing_param("customer"))?;
    let customer = state
        .object_of_type(account, customer_id, "customer")
        .ok_or_else(|| customers::no_such_customer(customer_id))?;
    check_default_payment_method(state, account, customer_id, params)?;
    let currency = match params::non_empty(params, "currency") {
        Some(currency) if money::is_currency(currency) => currency.to_ascii_lowercase(),
        Some(currency) => {
            return Err(ApiError::invalid(
                format!("Invalid currency: {currency}"),
                "currency",
            ));
        }
        None => customer["currency"].as_str().unwrap_or("usd").to_string(),
    };
    let now = state.now();
    let id = new_id("in");
    let mut invoice = json!({
        "account_country": "US",
        "account_name": crate::resources::account::ACCOUNT_NAME,
        "account_tax_ids": null,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": null,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": null,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": false,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null},
        "automatically_finalizes_at": null,
        "billing_reason": "manual",
        "collection_method": collection_method(params, "charge_automatically"),
        "confirmation_secret": null,
        "created": now,
        "currency": currency,
        "custom_fields": null,
        "customer": customer_id,
        "customer_account": null,
        "customer_address": null,
        "customer_email": null,
        "customer_name": null,
        "customer_phone": null,
        "customer_shipping": null,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": nullable_string(params, "default_payment_method"),
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "due_date": null,
        "effective_at": null,
        "ending_balance": null,
        "footer": customer["invoice_settings"]["footer"],
        "from_invoice": null,
        "hosted_invoice_url": null,
        "id": id,
        "invoice_pdf": null,
        "issuer": {"type": "self"},
        "last_finalization_error": null,
        "latest_revision": null,
        "lines": {"data": [], "has_more": false, "object": "list", "total_count": 0, "url": format!("/v1/invoices/{id}/lines")},
        "livemode": false,
        "metadata": {},
        "next_payment_attempt": null,
        "number": null,
        "object": KIND,
        "on_behalf_of": null,
        "parent": null,
        "payment_settings": {"default_mandate": null, "payment_method_options": null, "payment_method_types": null},
        "payments": null,
        "period_end": now,
        "period_start": now,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": null,
        "rendering": null,
        "shipping_cost": null,
        "shipping_details": null,
        "starting_balance": 0,
        "statement_descriptor": null,
        "status": "draft",
        "status_details": null,
        "status_transitions": {"finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null},
        "subscription": null,
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": null,
        "threshold_reason": null,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": now,
    });
    apply_fields(&mut invoice, params);
    copy_customer(&mut invoice, &customer);
    apply_due(&mut invoice, params, now, true)?;
    if params::non_empty(params, "pending_invoice_items_behavior") == Some("include") {
        for mut item in invoice_items::pending_for(state, account, customer_id, &currency) {
            item["invoice"] = id.clone().into();
            state.save(account, item.clone())?;
        }
    }
    apply_auto_advance(state, account, &mut invoice, params);
    rebuild(state, account, &mut invoice);
    state.insert(account, KIND, &invoice)?;
    state.emit(account, "invoice.created", &present(&invoice), None)?;
    Ok(present_for(state, account, &invoice, params))
}

/// `GET /v1/invoices/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    let invoice = get(state, account, id)?;
    Ok(present_for(state, account, &invoice, params))
}

/// Parameters that may still be updated once an invoice is finalized (Stripe: monetary values
/// and `collection_method` become uneditable).
const EDITABLE_WHEN_FINALIZED: &[&str] = &[
    "auto_advance",
    "custom_fields",
    "default_payment_method",
    "description",
    "expand",
    "footer",
    "metadata",
    "payment_settings",
    "rendering",
    "statement_descriptor",
];

/// `POST /v1/invoices/{id}`: drafts fully; finalized invoices only in the fields above.
pub fn update(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICE_UPDATE, params, "")?;
    let before = get(state, account, id)?;
    let customer_id = before["customer"].as_str().unwrap_or_default().to_string();
    let status = before["status"].as_str().unwrap_or_default().to_string();
    if status != "draft"
        && let Some(field) = params.as_object().and_then(|fields| {
            fields
                .keys()
                .find(|key| !EDITABLE_WHEN_FINALIZED.contains(&key.as_str()))
        })
    {
        return Err(ApiError::invalid(
            "Finalized invoices can't be updated in this way".to_string(),
            field.clone(),
        )
        .code("invoice_not_editable"));
    }
    if params.get("auto_advance").is_some() && status != "draft" && status != "open" {
        return Err(ApiError::invalid(
            format!("`auto_advance` can only be changed on draft and open invoices; this invoice is {status}."),
            "auto_advance",
        )
        .code("invoice_not_editable"));
    }
    check_default_payment_method(state, account, &customer_id, params)?;
    let now = state.now();
    let mut invoice = before.clone();
    apply_fields(&mut invoice, params);
    if params.get("default_payment_method").is_some() {
        invoice["default_payment_method"] = nullable_string(params, "default_payment_method");
    }
    if status == "draft" {
        if let Some(method) = params::non_empty(params, "collection_method") {
            invoice["collection_method"] = method.into();
        }
        apply_due(&mut invoice, params, now, false)?;
        refresh_automatic_tax(&mut invoice);
    }
    apply_auto_advance(state, account, &mut invoice, params);
    if status == "open" && invoice["auto_advance"] == true && before["auto_advance"] != true {
        crate::resources::invoice_transitions::schedule_collection(state, account, &mut invoice);
    }
    if invoice["auto_advance"] != true && status == "open" {
        invoice["next_payment_attempt"] = Value::Null;
    }
    save_changed(state, account, &before, &invoice)?;
    Ok(present_for(state, account, &invoice, params))
}

/// `DELETE /v1/invoices/{id}`: drafts only; their items become pending again.
pub fn delete(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::DELETE, params, "")?;
    let invoice = get(state, account, id)?;
    if invoice["status"] != "draft" {
        return Err(ApiError::invalid(
            "You can only delete draft invoices. Finalized invoices can be voided instead."
                .to_string(),
            "id",
        )
        .code("invoice_not_editable"));
    }
    for item_id in invoice_items::ids_on_invoice(state, account, id) {
        if let Some(before) = state.object_of_type(account, &item_id, invoice_items::KIND) {
            let mut item = before.clone();
            item["invoice"] = Value::Null;
            state.save(account, item.clone())?;
        }
    }
    let stored = state.account_mut(account)?;
    stored.objects.remove(id);
    if let Some(ids) = stored.lists.get_mut(KIND) {
        ids.retain(|listed| listed != id);
    }
    state.emit(account, "invoice.deleted", &present(&invoice), None)?;
    Ok(json!({"deleted": true, "id": id, "object": KIND}))
}

/// `GET /v1/invoices` (filters: `customer`, `status`, `collection_method`).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICE_LIST, params, "")?;
    if params::is_present(params, "subscription") {
        // No subscriptions are emulated: no invoice belongs to one.
        return Ok(json!({"data": [], "has_more": false, "object": "list", "url": "/v1/invoices"}));
    }
    let customer = params::non_empty(params, "customer").map(str::to_string);
    let status = params::non_empty(params, "status").map(str::to_string);
    let method = params::non_empty(params, "collection_method").map(str::to_string);
    let mut page = list_page(state, account, KIND, params, "/v1/invoices", |invoice| {
        customer
            .as_deref()
            .is_none_or(|customer| invoice["customer"] == customer)
            && status
                .as_deref()
                .is_none_or(|status| invoice["status"] == status)
            && method
                .as_deref()
                .is_none_or(|method| invoice["collection_method"] == method)
    })?;
    if let Some(invoices) = page["data"].as_array_mut() {
        for invoice in invoices {
            *invoice = present(invoice);
        }
    }
    Ok(page)
}

/// `GET /v1/invoices/{id}/lines`: the lines in invoice order, with Stripe's cursor paging.
pub fn lines(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICE_LINES_LIST, params, "")?;
    let invoice = get(state, account, id)?;
    let all = invoice["lines"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let limit = match params::non_empty(params, "limit") {
        None => 10,
        Some(limit) => match limit.parse::<usize>() {
            Ok(limit) if (1..=100).contains(&limit) => limit,
            _ => {
                return Err(ApiError::invalid(
                    "Invalid limit: must be between 1 and 100".to_string(),
                    "limit",
                ));
            }
        },
    };
    let position = |param: &str| -> ApiResult<Option<usize>> {
        match params::non_empty(params, param) {
            None => Ok(None),
            Some(cursor) => all
                .iter()
                .position(|line| line["id"] == cursor)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::invalid(format!("No such line item: '{cursor}'"), param)
                        .code("resource_missing")
                }),
        }
    };
    let (page, has_more) = if let Some(after) = position("starting_after")? {
        let rest = &all[after + 1..];
        (
            rest.iter().take(limit).cloned().collect::<Vec<_>>(),
            rest.len() > limit,
        )
    } else if let Some(before) = position("ending_before")? {
        let start = before.saturating_sub(limit);
        (all[start..before].to_vec(), start > 0)
    } else {
        (all.iter().take(limit).cloned().collect(), all.len() > limit)
    };
    Ok(json!({
        "data": page,
        "has_more": has_more,
        "object": "list",
        "url": format!("/v1/invoices/{id}/lines"),
    }))
}

/// The item behind line `line_id` of `invoice`, or Stripe's 400 naming `param`.
fn item_for_line(
    state: &State,
    account: &str,
    invoice: &Value,
    line_id: &str,
    param: &str,
) -> ApiResult<Value> {
    invoice["lines"]["data"]
        .as_array()
        .and_then(|lines| lines.iter().find(|line| line["id"] == line_id))
        .and_then(item_of_line)
        .and_then(|item| state.object_of_type(account, item, invoice_items::KIND))
        .ok_or_else(|| {
            ApiError::invalid(
                format!(
                    "No such line item: '{line_id}' on invoice {}",
                    invoice["id"].as_str().unwrap_or_default()
                ),
                param,
            )
            .code("resource_missing")
        })
}

/// The `lines` array parameter of the line endpoints.
fn lines_param(params: &Value) -> ApiResult<Vec<Value>> {
    match params.get("lines") {
        Some(Value::Array(lines)) if !lines.is_empty() => Ok(lines.clone()),
        Some(Value::Object(lines)) if !lines.is_empty() => Ok(lines.values().cloned().collect()),
        _ => Err(ApiError::missing_param("lines")),
    }
}

/// Applies `invoice_metadata`, rebuilds and saves a draft after a line endpoint.
fn finish_line_change(
    state: &mut State,
    account: &str,
    before: &Value,
    params: &Value,
) -> ApiResult<Value> {
    let mut invoice = state
        .object_of_type(account, before["id"].as_str().unwrap_or_default(), KIND)
        .unwrap_or_else(|| before.clone());
    if let Some(metadata) = params.get("invoice_metadata") {
        invoice["metadata"] = params::merge_metadata(&invoice["metadata"], metadata);
    }
    rebuild(state, account, &mut invoice);
    save_changed(state, account, before, &invoice)?;
    Ok(present_for(state, account, &invoice, params))
}

/// `POST /v1/invoices/{id}/add_lines`: each line names a pending `invoice_item` of the
/// customer to attach, or gives the new item's `amount` | `unit_amount_decimal` (+ quantity),
/// `description`, `period`, `metadata`.
pub fn add_lines(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICE_ADD_LINES, params, "")?;
    let before = get(state, account, id)?;
    ensure_draft(&before, "invoice")?;
    let lines = lines_param(params)?;
    let customer = before["customer"].as_str().unwrap_or_default().to_string();
    let currency = before["currency"].as_str().unwrap_or_default().to_string();
    // Check everything before changing anything.
    for (index, line) in lines.iter().enumerate() {
        if let Some(item_id) = params::non_empty(line, "invoice_item") {
            let param = format!("lines[{index}][invoice_item]");
            let item = state
                .object_of_type(account, item_id, invoice_items::KIND)
                .ok_or_else(|| {
                    ApiError::invalid(format!("No such invoiceitem: '{item_id}'"), &param)
                        .code("resource_missing")
                })?;
            if !item["invoice"].is_null()
                || item["customer"] != customer.as_str()
                || item["currency"] != currency.as_str()
            {
                return Err(ApiError::invalid(
                    format!(
                        "The invoice item {item_id} must be a pending item of customer {customer} in {currency}."
                    ),
                    param,
                ));
            }
        }
    }
    for (index, line) in lines.iter().enumerate() {
        if let Some(item_id) = params::non_empty(line, "invoice_item") {
            let item_before = state
                .object_of_type(account, item_id, invoice_items::KIND)
                .unwrap_or_default();
            let mut item = item_before.clone();
            item["invoice"] = id.into();
            invoice_items::apply_update(state, &mut item, line, &format!("lines[{index}]"))?;
            state.save(account, item.clone())?;
        } else {
            invoice_items::create_item(
                state,
                account,
                invoice_items::NewItem {
                    customer: &customer,
                    currency: &currency,
                    invoice: Some(id),
                    params: line,
                    prefix: &format!("lines[{index}]"),
                },
            )?;
        }
    }
    finish_line_change(state, account, &before, params)
}

/// `POST /v1/invoices/{id}/update_lines`: `lines[i][id]` (an `il_…` of this invoice) with the
/// fields to change.
pub fn update_lines(
    state: &mut State,
    account: &str,
    id: &str,
    params: &Value,
) -> ApiResult<Value> {
    check(&spec::INVOICE_UPDATE_LINES, params, "")?;
    let before = get(state, account, id)?;
    ensure_draft(&before, "invoice")?;
    let lines = lines_param(params)?;
    let mut changes = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let line_id = params::non_empty(line, "id")
            .ok_or_else(|| ApiError::missing_param(&format!("lines[{index}][id]")))?;
        let item_before = item_for_line(
            state,
            account,
            &before,
            line_id,
            &format!("lines[{index}][id]"),
        )?;
        let mut item = item_before.clone();
        invoice_items::apply_update(state, &mut item, line, &format!("lines[{index}]"))?;
        changes.push((item_before, item));
    }
    for (item_before, item) in changes {
        if item != item_before {
            state.save(account, item.clone())?;
        }
    }
    finish_line_change(state, account, &before, params)
}

/// `POST /v1/invoices/{id}/remove_lines`: `lines[i][id]` with `behavior` `delete` (the item is
/// deleted) or `unassign` (the item becomes pending).
pub fn remove_lines(
    state: &mut State,
    account: &str,
    id: &str,
    params: &Value,
) -> ApiResult<Value> {
    check(&spec::INVOICE_REMOVE_LINES, params, "")?;
    let before = get(state, account, id)?;
    ensure_draft(&before, "invoice")?;
    let lines = lines_param(params)?;
    let mut removals = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let line_id = params::non_empty(line, "id")
            .ok_or_else(|| ApiError::missing_param(&format!("lines[{index}][id]")))?;
        let behavior = params::non_empty(line, "behavior")
            .ok_or_else(|| ApiError::missing_param(&format!("lines[{index}][behavior]")))?;
        let item = item_for_line(
            state,
            account,
            &before,
            line_id,
            &format!("lines[{index}][id]"),
        )?;
        removals.push((item, behavior == "delete"));
    }
    for (item, delete) in removals {
        if delete {
            let stored = state.account_mut(account)?;
            let item_id = item["id"].as_str().unwrap_or_default().to_string();
            stored.objects.remove(&item_id);
            if let Some(ids) = stored.lists.get_mut(invoice_items::KIND) {
                ids.retain(|listed| *listed != item_id);
            }
            state.emit(account, "invoiceitem.deleted", &item, None)?;
        } else {
            let mut pending = item.clone();
            pending["invoice"] = Value::Null;
            state.save(account, pending.clone())?;
        }
    }
    finish_line_change(state, account, &before, params)
}

/// `POST /v1/invoices/{id}/lines/{line}`: updates one line of a draft (its item); returns the
/// line.
pub fn update_line(
    state: &mut State,
    account: &str,
    id: &str,
    line_id: &str,
    params: &Value,
) -> ApiResult<Value> {
    check(&spec::INVOICE_LINE_UPDATE, params, "")?;
    let before = get(state, account, id)?;
    ensure_draft(&before, "invoice")?;
    let item_before = item_for_line(state, account, &before, line_id, "line_item_id")?;
    let mut item = item_before.clone();
    invoice_items::apply_update(state, &mut item, params, "")?;
    invoice_items::save_changed(state, account, &item_before, &item)?;
    let invoice = get(state, account, id)?;
    invoice["lines"]["data"]
        .as_array()
        .and_then(|lines| lines.iter().find(|line| line["id"] == line_id).cloned())
        .ok_or_else(|| ApiError::no_such("line item", line_id, None))
}
