//! Charges: retrieve and list (`/v1/charges`). The emulator creates one per card payment
//! attempt of an invoice's payment intent that reaches the card network (`succeeded` or
//! `failed` with `failure_code` / `failure_message` and an `outcome` as Stripe reports them).

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids::new_id;
use crate::pagination::list as list_page;
use crate::params;
use crate::resources::find;
use crate::spec::{self, check};
use crate::state::State;

/// The list kind and `object` of charges.
pub const KIND: &str = "charge";

/// `GET /v1/charges/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    find(state, account, id, KIND, "charge")
}

/// `GET /v1/charges` (filters: `customer`, `payment_intent`).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::CHARGE_LIST, params, "")?;
    let customer = params::non_empty(params, "customer").map(str::to_string);
    let payment_intent = params::non_empty(params, "payment_intent").map(str::to_string);
    list_page(state, account, KIND, params, "/v1/charges", |charge| {
        customer
            .as_deref()
            .is_none_or(|customer| charge["customer"] == customer)
            && payment_intent
                .as_deref()
                .is_none_or(|intent| charge["payment_intent"] == intent)
    })
}

/// A new charge of `payment_intent` with `payment_method`: succeeded, or failed with `error`.
pub fn new(
    payment_intent: &Value,
    payment_method: &Value,
    error: Option<&ApiError>,
    now: i64,
) -> Value {
    let amount = payment_intent["amount"].as_i64().unwrap_or(0);
    let succeeded = error.is_none();
    let decline_code = error
        .and_then(|error| error.extra.get("decline_code"))
        .and_then(Value::as_str);
    let outcome = if succeeded {
        json!({
            "advice_code": null, "network_advice_code": null, "network_decline_code": null,
            "network_status": "approved_by_network", "reason": null, "risk_level": "normal",
            "risk_score": 20, "rule": null, "seller_message": "Payment complete.", "type": "authorized",
        })
    } else {
        json!({
            "advice_code": "try_again_later", "network_advice_code": null, "network_decline_code": null,
            "network_status": "declined_by_network", "reason": decline_code, "risk_level": "normal",
            "risk_score": 20, "rule": null,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        })
    };
    json!({
        "amount": amount,
        "amount_captured": if succeeded { amount } else { 0 },
        "amount_refunded": 0,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "authorization_code": null,
        "balance_transaction": null,
        "billing_details": payment_method["billing_details"],
        "calculated_statement_descriptor": "METERPAY EMULATED",
        "captured": succeeded,
        "created": now,
        "currency": payment_intent["currency"],
        "customer": payment_intent["customer"],
        "description": payment_intent["description"],
        "disputed": false,
        "failure_balance_transaction": null,
        "failure_code": error.and_then(|error| error.code.clone()),
        "failure_message": error.map(|error| error.message.clone()),
        "fraud_details": null,
        "id": new_id("ch"),
        "level3": null,
        "livemode": false,
        "metadata": {},
        "object": KIND,
        "on_behalf_of": null,
        "outcome": outcome,
        "paid": succeeded,
        "payment_intent": payment_intent["id"],
        "payment_method": payment_method["id"],
        "payment_method_details": null,
        "presentment_details": null,
        "radar_options": null,
        "receipt_email": null,
        "receipt_number": null,
        "receipt_url": null,
        "refunded": false,
        "refunds": null,
        "review": null,
        "shipping": null,
        "source": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": if succeeded { "succeeded" } else { "failed" },
        "transfer": null,
        "transfer_data": null,
        "transfer_group": null,
    })
}
