//! Invoice Items: create, retrieve, update, delete and list (`/v1/invoiceitems`). An item is
//! either pending (no `invoice`; a later invoice of the customer created with
//! `pending_invoice_items_behavior=include` pulls it in) or on a draft invoice, where it is one
//! line (`il_…`, its `parent.invoice_item_details.invoice_item`). Every change to an item on an
//! invoice rebuilds that line and the invoice's totals (see `invoices::sync_item`).
//!
//! Pricing forms accepted at this API version: `amount` (the total, quantity 1),
//! `unit_amount_decimal` with `quantity` or `quantity_decimal`. `price_data` and `pricing[price]`
//! need Stripe products and prices, which the emulator does not have: they answer Stripe's 400
//! `resource_missing` for the product or price named. `tax_behavior` and `tax_code` are
//! validated and accepted; the item object has no field for them at this version (they live on
//! prices) and there is no tax calculation.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids::new_id;
use crate::money;
use crate::pagination::list as list_page;
use crate::params::{self, nullable_string};
use crate::resources::{customers, find, invoices};
use crate::spec::{self, check};
use crate::state::State;

/// The list kind and `object` of invoice items.
pub const KIND: &str = "invoiceitem";

/// The account's invoice item `id`, or Stripe's 404.
pub fn get(state: &State, account: &str, id: &str) -> ApiResult<Value> {
    find(state, account, id, KIND, "invoiceitem")
}

/// The ids of the account's invoice items attached to `invoice`, oldest first.
pub fn ids_on_invoice(state: &State, account: &str, invoice: &str) -> Vec<String> {
    let Some(stored) = state.accounts.get(account) else {
        return Vec::new();
    };
    stored
        .lists
        .get(KIND)
        .map(|ids| {
            ids.iter()
                .filter(|id| {
                    stored
                        .objects
                        .get(*id)
                        .is_some_and(|item| item.value()["invoice"] == invoice)
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The customer's pending items (no invoice yet) in `currency`, oldest first.
pub fn pending_for(state: &State, account: &str, customer: &str, currency: &str) -> Vec<Value> {
    let Some(stored) = state.accounts.get(account) else {
        return Vec::new();
    };
    stored
        .lists
        .get(KIND)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| stored.objects.get(id).map(|item| item.value()))
                .filter(|item| {
                    item["invoice"].is_null()
                        && item["customer"] == customer
                        && item["currency"] == currency
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The unit amount and quantity an item's `amount` is computed from (scaled decimals).
struct Pricing {
    unit: i128,
    quantity: i128,
}

impl Pricing {
    fn amount(&self, param: &str) -> ApiResult<i64> {
        money::amount_of(self.unit, self.quantity).ok_or_else(|| {
            ApiError::invalid(
                "The amount (unit amount times quantity) is too large.".to_string(),
                param,
            )
        })
    }
}

fn invalid_decimal(param: &str, value: &str) -> ApiError {
    ApiError::invalid(format!("Invalid decimal: {value}"), param)
}

/// A `quantity` / `quantity_decimal` pair of parameters (at most one), as a scaled decimal.
fn quantity_param(params: &Value) -> ApiResult<Option<i128>> {
    let quantity = params::non_empty(params, "quantity");
    let quantity_decimal = params::non_empty(params, "quantity_decimal");
    match (quantity, quantity_decimal) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "You may only specify one of these parameters: quantity, quantity_decimal.".to_string(),
            "quantity_decimal",
        )),
        (Some(quantity), None) => match quantity.parse::<i64>() {
            Ok(quantity) if quantity >= 0 => Ok(Some(money::from_integer(quantity))),
            _ => Err(ApiError::invalid(
                format!("Invalid non-negative integer: {quantity}"),
                "quantity",
            )),
        },
        (None, Some(text)) => match money::parse_decimal(text) {
            Some(quantity) if quantity >= 0 => Ok(Some(quantity)),
            _ => Err(invalid_decimal("quantity_decimal", text)),
        },
        (None, None) => Ok(None),
    }
}

/// Products and prices are not emulated: any id named is missing.
fn reject_catalog_pricing(params: &Value, prefix: &str) -> ApiResult<()> {
    let param = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}[{name}]")
        }
    };
    if let Some(price_data) = params.get("price_data").filter(|v| v.is_object()) {
        let product = params::non_empty(price_data, "product")
            .ok_or_else(|| ApiError::missing_param(&param("price_data[product]")))?;
        return Err(ApiError::invalid(
            format!("No such product: '{product}'"),
            param("price_data[product]"),
        )
        .code("resource_missing"));
    }
    if let Some(price) = params
        .get("pricing")
        .and_then(|pricing| params::non_empty(pricing, "price"))
    {
        return Err(ApiError::invalid(
            format!("No such price: '{price}'"),
            param("pricing[price]"),
        )
        .code("resource_missing"));
    }
    Ok(())
}

/// The pricing of a new item or line from `amount` | `unit_amount_decimal` (+ quantity).
/// `prefix` names the parameters inside a `lines[i]` array.
fn pricing_for_create(params: &Value, prefix: &str) -> ApiResult<Pricing> {
    reject_catalog_pricing(params, prefix)?;
    let param = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}[{name}]")
        }
    };
    let amount = params::non_empty(params, "amount");
    let unit = params::non_empty(params, "unit_amount_decimal");
    let quantity = quantity_param(params).map_err(|mut error| {
        error.param = error.param.map(|name| param(&name));
        error
    })?;
    match (amount, unit) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "You may only specify one of these parameters: amount, unit_amount_decimal."
                .to_string(),
            param("unit_amount_decimal"),
        )),
        (Some(amount), None) => {
            let amount: i64 = amount
                .parse()
                .map_err(|_| ApiError::invalid(format!("Invalid integer: {amount}"), param("amount")))?;
            if quantity.is_some_and(|quantity| quantity != money::from_integer(1)) {
                return Err(ApiError::invalid(
                    "When passing `amount`, `quantity` must be 1 (or left out): `amount` is the item's total. Pass `unit_amount_decimal` with `quantity` instead.".to_string(),
                    param("quantity"),
                ));
            }
            Ok(Pricing {
                unit: money::from_integer(amount),
                quantity: money::from_integer(1),
            })
        }
        (None, Some(text)) => {
            let unit = money::parse_decimal(text)
                .ok_or_else(|| invalid_decimal(&param("unit_amount_decimal"), text))?;
            Ok(Pricing {
                unit,
                quantity: quantity.unwrap_or_else(|| money::from_integer(1)),
            })
        }
        (None, None) => Err(ApiError::invalid(
            "You must specify `amount` or `unit_amount_decimal` (products and prices for `price_data` / `pricing[price]` are not emulated).".to_string(),
            param("amount"),
        )),
    }
}

/// `period[start]` / `period[end]` (default: both now); start after end is Stripe's 400.
fn period_param(
    params: &Value,
    now: i64,
    current: Option<&Value>,
    param: &str,
) -> ApiResult<Value> {
    let start_default = current
        .and_then(|period| period["start"].as_i64())
        .unwrap_or(now);
    let end_default = current
        .and_then(|period| period["end"].as_i64())
        .unwrap_or(now);
    let Some(period) = params.get("period").filter(|period| period.is_object()) else {
        return Ok(json!({"end": end_default, "start": start_default}));
    };
    let start = params::integer(period, "start").unwrap_or(start_default);
    let end = params::integer(period, "end").unwrap_or(end_default);
    if start > end {
        return Err(ApiError::invalid(
            "The period start must be before or equal to the period end.".to_string(),
            format!("{param}[start]"),
        ));
    }
    Ok(json!({"end": end, "start": start}))
}

/// Sets an item's pricing fields and `amount` from a unit amount and quantity.
fn apply_pricing(item: &mut Value, pricing: &Pricing, param: &str) -> ApiResult<()> {
    let amount = pricing.amount(param)?;
    item["amount"] = amount.into();
    item["net_amount"] = amount.into();
    item["quantity_decimal"] = money::format_decimal(pricing.quantity).into();
    // `quantity` is the whole part (Stripe rounds fractional quantities down there).
    item["quantity"] = ((pricing.quantity / money::from_integer(1)).max(0) as u64).into();
    item["pricing"] = json!({
        "price_details": null,
        "type": "price_details",
        "unit_amount_decimal": money::format_decimal(pricing.unit),
    });
    Ok(())
}

/// What a new item is made from, shared by `POST /v1/invoiceitems` and `add_lines`.
pub struct NewItem<'a> {
    pub customer: &'a str,
    pub currency: &'a str,
    pub invoice: Option<&'a str>,
    /// The item's parameters (`amount`, `description`, `metadata`, `period`, ...).
    pub params: &'a Value,
    /// How to name parameters in errors (`""` or `lines[0]`).
    pub prefix: &'a str,
}

/// Builds, stores and announces (`invoiceitem.created`) a new item; does not touch the invoice.
pub fn create_item(state: &mut State, account: &str, new: NewItem<'_>) -> ApiResult<Value> {
    let pricing = pricing_for_create(new.params, new.prefix)?;
    let now = state.now();
    let period_name = if new.prefix.is_empty() {
        "period".to_string()
    } else {
        format!("{}[period]", new.prefix)
    };
    let period = period_param(new.params, now, None, &period_name)?;
    let mut item = json!({
        "amount": 0,
        "currency": new.currency,
        "customer": new.customer,
        "customer_account": null,
        "date": now,
        "description": nullable_string(new.params, "description"),
        "discountable": true,
        "discounts": [],
        "frozen_fields": null,
        "id": new_id("ii"),
        "invoice": new.invoice,
        "invoicing_rules": null,
        "livemode": false,
        "metadata": {},
        "net_amount": 0,
        "object": KIND,
        "parent": null,
        "period": period,
        "pricing": null,
        "proration": false,
        "proration_details": {"credited_items": null, "discount_amounts": []},
        "quantity": 1,
        "quantity_decimal": "1",
        "tax_rates": [],
        "test_clock": null,
    });
    apply_pricing(&mut item, &pricing, &format!("{}amount", new.prefix))?;
    item["discountable"] = match params::non_empty(new.params, "discountable") {
        Some(flag) => (flag == "true").into(),
        // Stripe: negative items are not discountable unless asked.
        None => (item["amount"].as_i64().unwrap_or(0) >= 0).into(),
    };
    if let Some(metadata) = new.params.get("metadata") {
        item["metadata"] = params::merge_metadata(&json!({}), metadata);
    }
    state.insert(account, KIND, &item)?;
    state.emit(account, "invoiceitem.created", &item, None)?;
    Ok(item)
}

/// `POST /v1/invoiceitems`
pub fn create(state: &mut State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICEITEM_CREATE, params, "")?;
    let customer_id =
        params::non_empty(params, "customer").ok_or_else(|| ApiError::missing_param("customer"))?;
    let customer = state
        .object_of_type(account, customer_id, "customer")
        .ok_or_else(|| customers::no_such_customer(customer_id))?;
    if params::is_present(params, "subscription") {
        let subscription = params::non_empty(params, "subscription").unwrap_or_default();
        return Err(ApiError::invalid(
            format!("No such subscription: '{subscription}'"),
            "subscription",
        )
        .code("resource_missing"));
    }
    let invoice = match params::non_empty(params, "invoice") {
        Some(invoice_id) => {
            let invoice = state
                .object_of_type(account, invoice_id, "invoice")
                .ok_or_else(|| {
                    ApiError::invalid(format!("No such invoice: '{invoice_id}'"), "invoice")
                        .code("resource_missing")
                })?;
            if invoice["customer"] != customer_id {
                return Err(ApiError::invalid(
                    format!(
                        "The invoice {invoice_id} belongs to another customer than {customer_id}."
                    ),
                    "invoice",
                ));
            }
            invoices::ensure_draft(&invoice, "invoice")?;
            Some(invoice)
        }
        None => None,
    };
    let currency = match params::non_empty(params, "currency") {
        Some(currency) => {
            if !money::is_currency(currency) {
                return Err(ApiError::invalid(
                    format!("Invalid currency: {currency}"),
                    "currency",
                ));
            }
            currency.to_ascii_lowercase()
        }
        None => invoice
            .as_ref()
            .and_then(|invoice| invoice["currency"].as_str())
            .or_else(|| customer["currency"].as_str())
            .map(str::to_string)
            .ok_or_else(|| ApiError::missing_param("currency"))?,
    };
    if let Some(invoice) = &invoice
        && invoice["currency"] != currency.as_str()
    {
        return Err(ApiError::invalid(
            format!(
                "The currency of this invoice item ({currency}) must match the currency of the invoice ({}).",
                invoice["currency"].as_str().unwrap_or_default()
            ),
            "currency",
        ));
    }
    let invoice_id = invoice
        .as_ref()
        .and_then(|invoice| invoice["id"].as_str().map(str::to_string));
    let item = create_item(
        state,
        account,
        NewItem {
            customer: customer_id,
            currency: &currency,
            invoice: invoice_id.as_deref(),
            params,
            prefix: "",
        },
    )?;
    if let Some(invoice_id) = &invoice_id {
        invoices::sync_item(state, account, invoice_id, &item)?;
    }
    Ok(item)
}

/// `GET /v1/invoiceitems/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    get(state, account, id)
}

/// Stripe's 400 unless the item is pending or on a draft invoice.
fn ensure_editable(state: &State, account: &str, item: &Value) -> ApiResult<()> {
    if let Some(invoice_id) = item["invoice"].as_str()
        && let Some(invoice) = state.object_of_type(account, invoice_id, "invoice")
        && invoice["status"] != "draft"
    {
        return Err(ApiError::invalid(
            format!(
                "The invoice item {} is on invoice {invoice_id}, which is no longer a draft (status {}); items of finalized invoices can't be changed.",
                item["id"].as_str().unwrap_or_default(),
                invoice["status"].as_str().unwrap_or_default()
            ),
            "invoice",
        )
        .code("invoice_not_editable"));
    }
    Ok(())
}

/// Applies update parameters (also those of `update_lines` / a line update) to an item.
/// `prefix` names the parameters in errors.
pub fn apply_update(
    state: &State,
    item: &mut Value,
    params: &Value,
    prefix: &str,
) -> ApiResult<()> {
    reject_catalog_pricing(params, prefix)?;
    let param = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}[{name}]")
        }
    };
    let current_unit = item["pricing"]["unit_amount_decimal"]
        .as_str()
        .and_then(money::parse_decimal)
        .unwrap_or_else(|| money::from_integer(item["amount"].as_i64().unwrap_or(0)));
    let current_quantity = item["quantity_decimal"]
        .as_str()
        .and_then(money::parse_decimal)
        .unwrap_or_else(|| money::from_integer(1));
    let quantity = quantity_param(params).map_err(|mut error| {
        error.param = error.param.map(|name| param(&name));
        error
    })?;
    let amount = params::non_empty(params, "amount");
    let unit = params::non_empty(params, "unit_amount_decimal");
    let new_pricing = match (amount, unit) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: amount, unit_amount_decimal."
                    .to_string(),
                param("unit_amount_decimal"),
            ));
        }
        (Some(amount), None) => {
            let amount: i64 = amount.parse().map_err(|_| {
                ApiError::invalid(format!("Invalid integer: {amount}"), param("amount"))
            })?;
            Some(Pricing {
                unit: money::from_integer(amount),
                quantity: money::from_integer(1),
            })
        }
        (None, Some(text)) => Some(Pricing {
            unit: money::parse_decimal(text)
                .ok_or_else(|| invalid_decimal(&param("unit_amount_decimal"), text))?,
            quantity: quantity.unwrap_or(current_quantity),
        }),
        (None, None) => quantity.map(|quantity| Pricing {
            unit: current_unit,
            quantity,
        }),
    };
    if let Some(pricing) = new_pricing {
        apply_pricing(item, &pricing, &param("amount"))?;
    }
    if params.get("description").is_some() {
        item["description"] = nullable_string(params, "description");
    }
    if let Some(flag) = params::non_empty(params, "discountable") {
        item["discountable"] = (flag == "true").into();
    }
    if let Some(metadata) = params.get("metadata") {
        item["metadata"] = params::merge_metadata(&item["metadata"], metadata);
    }
    if params.get("period").is_some() {
        let current = item["period"].clone();
        item["period"] = period_param(params, state.now(), Some(&current), &param("period"))?;
    }
    Ok(())
}

/// Stores a changed item and rebuilds its invoice's line. No event: Stripe has no
/// `invoiceitem.updated` event at this API version (only `invoiceitem.created` / `.deleted`).
pub fn save_changed(
    state: &mut State,
    account: &str,
    before: &Value,
    item: &Value,
) -> ApiResult<()> {
    if item == before {
        return Ok(());
    }
    state.save(account, item.clone())?;
    if let Some(invoice_id) = item["invoice"].as_str() {
        invoices::sync_item(state, account, invoice_id, item)?;
    }
    Ok(())
}

/// `POST /v1/invoiceitems/{id}`: pending items and items of draft invoices only.
pub fn update(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICEITEM_UPDATE, params, "")?;
    let before = get(state, account, id)?;
    ensure_editable(state, account, &before)?;
    let mut item = before.clone();
    apply_update(state, &mut item, params, "")?;
    save_changed(state, account, &before, &item)?;
    Ok(item)
}

/// Removes an item (announcing `invoiceitem.deleted`) and its line.
pub fn delete_item(state: &mut State, account: &str, item: &Value) -> ApiResult<()> {
    let id = item["id"].as_str().unwrap_or_default().to_string();
    let stored = state.account_mut(account)?;
    stored.objects.remove(&id);
    if let Some(ids) = stored.lists.get_mut(KIND) {
        ids.retain(|listed| *listed != id);
    }
    state.emit(account, "invoiceitem.deleted", item, None)?;
    if let Some(invoice_id) = item["invoice"].as_str() {
        invoices::remove_item_line(state, account, invoice_id, &id)?;
    }
    Ok(())
}

/// `DELETE /v1/invoiceitems/{id}`: pending items and items of draft invoices only.
pub fn delete(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::DELETE, params, "")?;
    let item = get(state, account, id)?;
    ensure_editable(state, account, &item)?;
    delete_item(state, account, &item)?;
    Ok(json!({"deleted": true, "id": id, "object": KIND}))
}

/// `GET /v1/invoiceitems` (filters: `customer`, `invoice`, `pending`).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICEITEM_LIST, params, "")?;
    let customer = params::non_empty(params, "customer").map(str::to_string);
    let invoice = params::non_empty(params, "invoice").map(str::to_string);
    let pending = params::non_empty(params, "pending").map(|flag| flag == "true");
    list_page(state, account, KIND, params, "/v1/invoiceitems", |item| {
        customer
            .as_deref()
            .is_none_or(|customer| item["customer"] == customer)
            && invoice
                .as_deref()
                .is_none_or(|invoice| item["invoice"] == invoice)
            && pending.is_none_or(|pending| item["invoice"].is_null() == pending)
    })
}
