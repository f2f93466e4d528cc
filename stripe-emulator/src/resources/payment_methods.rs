//! Payment Methods: retrieve, list, list a customer's, attach and detach
//! (`/v1/payment_methods`, `/v1/customers/{id}/payment_methods`). Card payment methods are
//! created by confirming a Checkout Session with a card.

use serde_json::{Value, json};

use crate::cards::{self, CardInput};
use crate::error::{ApiError, ApiResult};
use crate::ids::new_id;
use crate::pagination::list as list_page;
use crate::params::{self, null_address};
use crate::resources::{customers, find};
use crate::spec::{self, check};
use crate::state::State;

/// The account's payment method `id`, or Stripe's 404.
pub fn get(state: &State, account: &str, id: &str) -> ApiResult<Value> {
    find(state, account, id, "payment_method", "PaymentMethod")
}

/// `GET /v1/payment_methods/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    get(state, account, id)
}

/// `GET /v1/payment_methods` (filter: `customer`).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::PM_LIST, params, "")?;
    let customer = params::non_empty(params, "customer").map(str::to_string);
    list_page(
        state,
        account,
        "payment_method",
        params,
        "/v1/payment_methods",
        |payment_method| {
            customer
                .as_deref()
                .is_none_or(|customer| payment_method["customer"] == customer)
        },
    )
}

/// `GET /v1/customers/{customer}/payment_methods` (filter: `type`).
pub fn list_for_customer(
    state: &State,
    account: &str,
    customer: &str,
    params: &Value,
) -> ApiResult<Value> {
    check(&spec::PM_LIST, params, "")?;
    customers::get(state, account, customer)?;
    let payment_method_type = params::non_empty(params, "type").map(str::to_string);
    let url = format!("/v1/customers/{customer}/payment_methods");
    list_page(
        state,
        account,
        "payment_method",
        params,
        &url,
        |payment_method| {
            payment_method["customer"] == customer
                && payment_method_type
                    .as_deref()
                    .is_none_or(|wanted| payment_method["type"] == wanted)
        },
    )
}

/// `POST /v1/payment_methods/{id}/attach`
pub fn attach_request(
    state: &mut State,
    account: &str,
    id: &str,
    params: &Value,
) -> ApiResult<Value> {
    check(&spec::PM_ATTACH, params, "")?;
    let customer =
        params::non_empty(params, "customer").ok_or_else(|| ApiError::missing_param("customer"))?;
    attach(state, account, id, customer)
}

/// Attaches payment method `id` to `customer` and emits `payment_method.attached` (nothing
/// happens if it is attached to that customer already).
pub fn attach(state: &mut State, account: &str, id: &str, customer: &str) -> ApiResult<Value> {
    let mut payment_method = get(state, account, id)?;
    if !customers::exists(state, account, customer) {
        return Err(customers::no_such_customer(customer));
    }
    if payment_method["customer"] == customer {
        return Ok(payment_method);
    }
    if !payment_method["customer"].is_null() {
        return Err(ApiError::invalid(
            "The payment method you provided has already been attached to a customer.".to_string(),
            "payment_method",
        ));
    }
    payment_method["customer"] = customer.into();
    state.save(account, payment_method.clone())?;
    state.emit(account, "payment_method.attached", &payment_method, None)?;
    Ok(payment_method)
}

/// `POST /v1/payment_methods/{id}/detach`: emits `payment_method.detached`.
pub fn detach(state: &mut State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    let mut payment_method = get(state, account, id)?;
    if payment_method["customer"].is_null() {
        return Err(ApiError::invalid(
            "The payment method you provided is not attached to a customer so detachment is impossible.".to_string(),
            "payment_method",
        ));
    }
    payment_method["customer"] = Value::Null;
    state.save(account, payment_method.clone())?;
    state.emit(account, "payment_method.detached", &payment_method, None)?;
    Ok(payment_method)
}

/// Stripe's 400 (naming `param`) unless payment method `id` is attached to `customer`.
pub fn check_attached_to(
    state: &State,
    account: &str,
    customer: &str,
    id: &str,
    param: &str,
) -> ApiResult<()> {
    let payment_method = state
        .object_of_type(account, id, "payment_method")
        .ok_or_else(|| {
            ApiError::invalid(format!("No such PaymentMethod: '{id}'"), param)
                .code("resource_missing")
        })?;
    if payment_method["customer"] != customer {
        return Err(ApiError::invalid(
            format!(
                "The customer does not have a payment method with the ID {id}. The payment method must be attached to the customer."
            ),
            param,
        )
        .code("resource_missing"));
    }
    Ok(())
}

/// A new, unattached and not yet stored card payment method for `card`.
pub fn from_card(state: &State, card: &CardInput) -> Value {
    let brand = cards::brand(&card.number);
    let last4 = &card.number[card.number.len().saturating_sub(4)..];
    let fingerprint = cards::fingerprint(&card.number);
    json!({
        "allow_redisplay": "always",
        "billing_details": {
            "address": card.address.as_ref().map_or_else(null_address, |a| a.to_json()),
            "email": card.email,
            "name": card.name,
            "phone": null,
            "tax_id": null
        },
        "card": {
            "brand": brand,
            "checks": {"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"},
            "country": "US",
            "display_brand": brand,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": fingerprint,
            "funding": "credit",
            "generated_from": null,
            "last4": last4,
            "networks": {"available": [brand], "preferred": null},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": true},
            "wallet": null
        },
        "created": state.now(),
        "customer": null,
        "customer_account": null,
        "id": new_id("pm"),
        "livemode": false,
        "metadata": {},
        "object": "payment_method",
        "type": "card",
    })
}
