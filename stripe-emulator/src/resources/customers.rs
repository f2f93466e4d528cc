//! Customers: create, retrieve, update, delete and list (`/v1/customers`).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids::{new_id, random_alphanumeric};
use crate::pagination::list as list_page;
use crate::params::{self, nullable_string};
use crate::resources::{find, payment_methods};
use crate::spec::{self, check};
use crate::state::{State, previous_attributes};

/// The account's customer `id`, or Stripe's 404.
pub fn get(state: &State, account: &str, id: &str) -> ApiResult<Value> {
    find(state, account, id, "customer", "customer")
}

/// Whether the account has a (not deleted) customer `id`.
pub fn exists(state: &State, account: &str, id: &str) -> bool {
    state.object_of_type(account, id, "customer").is_some()
}

/// Stripe's 400 for a `customer` parameter naming no customer of the account.
pub fn no_such_customer(id: &str) -> ApiError {
    ApiError::invalid(format!("No such customer: '{id}'"), "customer").code("resource_missing")
}

/// `POST /v1/customers`; also how Checkout creates a customer on completion.
pub fn create(state: &mut State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::CUSTOMER_CREATE, params, "")?;
    if let Some(default_payment_method) = params["invoice_settings"]
        .get("default_payment_method")
        .and_then(Value::as_str)
        && !default_payment_method.is_empty()
    {
        // A new customer cannot have a payment method attached yet unless `payment_method` attaches it.
        if params::non_empty(params, "payment_method") != Some(default_payment_method) {
            return Err(ApiError::invalid(
                format!("The customer does not have a payment method with the ID {default_payment_method}. The payment method must be attached to the customer."),
                "invoice_settings[default_payment_method]",
            )
            .code("resource_missing"));
        }
    }
    if let Some(payment_method_id) = params::non_empty(params, "payment_method") {
        let payment_method = state
            .object_of_type(account, payment_method_id, "payment_method")
            .ok_or_else(|| {
                ApiError::invalid(
                    format!("No such PaymentMethod: '{payment_method_id}'"),
                    "payment_method",
                )
                .code("resource_missing")
            })?;
        if !payment_method["customer"].is_null() {
            return Err(ApiError::invalid(
                "The payment method you provided has already been attached to a customer."
                    .to_string(),
                "payment_method",
            ));
        }
    }
    let id = new_id("cus");
    let mut customer = json!({
        "address": null,
        "balance": 0,
        "business_name": null,
        "created": state.now(),
        "currency": null,
        "customer_account": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": null,
        "id": id,
        "individual_name": null,
        "invoice_prefix": random_alphanumeric(8).to_uppercase(),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
        "livemode": false,
        "metadata": {},
        "name": null,
        "next_invoice_sequence": 1,
        "object": "customer",
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    });
    apply_params(&mut customer, params);
    state.insert(account, "customer", &customer)?;
    state.emit(account, "customer.created", &customer, None)?;
    if let Some(payment_method_id) = params::non_empty(params, "payment_method") {
        payment_methods::attach(state, account, payment_method_id, &id)?;
    }
    Ok(customer)
}

/// `GET /v1/customers/{id}`: a deleted customer is `{"deleted": true}`.
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    if state
        .accounts
        .get(account)
        .is_some_and(|stored| stored.deleted_customers.contains(id))
    {
        Ok(deleted(id))
    } else {
        get(state, account, id)
    }
}

/// `POST /v1/customers/{id}`: emits `customer.updated` with `previous_attributes` when
/// anything changed.
pub fn update(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::CUSTOMER_UPDATE, params, "")?;
    let before = get(state, account, id)?;
    if let Some(default_payment_method) = params["invoice_settings"]
        .get("default_payment_method")
        .and_then(Value::as_str)
        && !default_payment_method.is_empty()
    {
        payment_methods::check_attached_to(
            state,
            account,
            id,
            default_payment_method,
            "invoice_settings[default_payment_method]",
        )?;
    }
    let mut customer = before.clone();
    apply_params(&mut customer, params);
    save_changed(state, account, &before, &customer)?;
    Ok(customer)
}

/// Stores `customer` and emits `customer.updated` (with what changed) when it
/// differs from `before`.
fn save_changed(
    state: &mut State,
    account: &str,
    before: &Value,
    customer: &Value,
) -> ApiResult<()> {
    if customer != before {
        state.save(account, customer.clone())?;
        state.emit(
            account,
            "customer.updated",
            customer,
            Some(previous_attributes(before, customer)),
        )?;
    }
    Ok(())
}

/// Sets the customer's `address` (as Checkout does with `customer_update[address]=auto`),
/// emitting `customer.updated` when it changed.
pub fn set_address(state: &mut State, account: &str, id: &str, address: &Value) -> ApiResult<()> {
    let before = get(state, account, id)?;
    let mut customer = before.clone();
    customer["address"] = address.clone();
    save_changed(state, account, &before, &customer)
}

/// `DELETE /v1/customers/{id}`: also detaches the customer's payment methods (without
/// `payment_method.detached` events).
pub fn delete(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::DELETE, params, "")?;
    let customer = get(state, account, id)?;
    let stored = state.account_mut(account)?;
    stored.objects.remove(id);
    stored.deleted_customers.insert(id.to_string());
    if let Some(customer_ids) = stored.lists.get_mut("customer") {
        customer_ids.retain(|listed| listed != id);
    }
    let payment_method_ids = stored
        .lists
        .get("payment_method")
        .cloned()
        .unwrap_or_default();
    for payment_method_id in payment_method_ids {
        if let Some(text) = stored.objects.get_mut(&payment_method_id) {
            let mut object = text.value();
            if object["object"] == "payment_method" && object["customer"] == id {
                object["customer"] = Value::Null;
                *text = crate::state::StoredObject::new(&object);
            }
        }
    }
    state.emit(account, "customer.deleted", &customer, None)?;
    Ok(deleted(id))
}

/// `GET /v1/customers` (filter: `email`).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::CUSTOMER_LIST, params, "")?;
    let email = params::non_empty(params, "email").map(str::to_string);
    list_page(
        state,
        account,
        "customer",
        params,
        "/v1/customers",
        |customer| {
            email
                .as_deref()
                .is_none_or(|email| customer["email"] == email)
        },
    )
}

fn deleted(id: &str) -> Value {
    json!({"id": id, "object": "customer", "deleted": true})
}

/// Applies the create/update parameters to a customer object.
fn apply_params(customer: &mut Value, params: &Value) {
    for key in [
        "description",
        "email",
        "name",
        "phone",
        "business_name",
        "individual_name",
    ] {
        if params.get(key).is_some() {
            customer[key] = nullable_string(params, key);
        }
    }
    if let Some(address) = params.get("address") {
        customer["address"] = if address.as_str() == Some("") {
            Value::Null
        } else {
            params::address(address)
        };
    }
    if let Some(balance) = params::integer(params, "balance") {
        customer["balance"] = balance.into();
    }
    if let Some(sequence) = params::integer(params, "next_invoice_sequence") {
        customer["next_invoice_sequence"] = sequence.into();
    }
    if let Some(prefix) = params::non_empty(params, "invoice_prefix") {
        customer["invoice_prefix"] = prefix.into();
    }
    if let Some(tax_exempt) = params::non_empty(params, "tax_exempt") {
        customer["tax_exempt"] = tax_exempt.into();
    }
    if let Some(locales) = params.get("preferred_locales") {
        customer["preferred_locales"] = match locales {
            Value::Array(_) => locales.clone(),
            _ => json!([]),
        };
    }
    if let Some(shipping) = params.get("shipping") {
        customer["shipping"] = match shipping {
            Value::Object(_) => json!({
                "address": params::address(&shipping["address"]),
                "name": nullable_string(shipping, "name"),
                "phone": nullable_string(shipping, "phone"),
            }),
            _ => Value::Null,
        };
    }
    if let Some(metadata) = params.get("metadata") {
        customer["metadata"] = params::merge_metadata(&customer["metadata"], metadata);
    }
    if let Some(invoice_settings) = params.get("invoice_settings").and_then(Value::as_object) {
        if invoice_settings.contains_key("default_payment_method") {
            customer["invoice_settings"]["default_payment_method"] =
                nullable_string(&params["invoice_settings"], "default_payment_method");
        }
        if invoice_settings.contains_key("footer") {
            customer["invoice_settings"]["footer"] =
                nullable_string(&params["invoice_settings"], "footer");
        }
    }
}
