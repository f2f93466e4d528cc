//! Payment Intents: retrieve and list (`/v1/payment_intents`). The emulator creates them only
//! for invoices (one per finalized invoice with an amount due, as Stripe does) and moves them
//! through `requires_payment_method` → `requires_action` → `succeeded` (or back to
//! `requires_payment_method` with `last_payment_error`) as the invoice's payment attempts go;
//! `canceled` when the invoice is voided or paid out of band.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids::{new_id, random_alphanumeric};
use crate::pagination::list as list_page;
use crate::params;
use crate::resources::find;
use crate::spec::{self, check};
use crate::state::State;

/// The list kind and `object` of payment intents.
pub const KIND: &str = "payment_intent";

/// The account's payment intent `id`, or Stripe's 404.
pub fn get(state: &State, account: &str, id: &str) -> ApiResult<Value> {
    find(state, account, id, KIND, "payment_intent")
}

/// `GET /v1/payment_intents/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::SETUP_INTENT_RETRIEVE, params, "")?;
    get(state, account, id)
}

/// `GET /v1/payment_intents` (filter: `customer`).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::PAYMENT_INTENT_LIST, params, "")?;
    let customer = params::non_empty(params, "customer").map(str::to_string);
    list_page(
        state,
        account,
        KIND,
        params,
        "/v1/payment_intents",
        |intent| {
            customer
                .as_deref()
                .is_none_or(|customer| intent["customer"] == customer)
        },
    )
}

/// A new payment intent for an invoice's amount due (`requires_payment_method`), not stored.
pub fn for_invoice(invoice: &Value, now: i64) -> Value {
    let id = new_id("pi");
    json!({
        "allowed_payment_method_types": null,
        "amount": invoice["amount_due"],
        "amount_capturable": 0,
        "amount_details": null,
        "amount_received": 0,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": null,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic",
        "client_secret": format!("{id}_secret_{}", random_alphanumeric(25)),
        "confirmation_method": "automatic",
        "created": now,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "customer_account": null,
        "description": invoice["number"].as_str().map(|number| format!("Invoice {number}")),
        "excluded_payment_method_types": null,
        "hooks": null,
        "id": id,
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "managed_payments": null,
        "metadata": {},
        "next_action": null,
        "object": KIND,
        "on_behalf_of": null,
        "payment_details": null,
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": null,
        "payment_method_types": ["card"],
        "payment_record": null,
        "presentment_details": null,
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "requires_payment_method",
        "transfer_data": null,
        "transfer_group": null,
    })
}

/// Stripe's `last_payment_error` (an API error object) for `error`, with the payment method
/// tried and, when there was one, the failed charge.
pub fn payment_error(error: &ApiError, payment_method: &Value, charge: Option<&str>) -> Value {
    let mut object = Map::new();
    if let Some(charge) = charge {
        object.insert("charge".into(), json!(charge));
    }
    if let Some(code) = &error.code {
        object.insert("code".into(), json!(code));
        object.insert(
            "doc_url".into(),
            json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            )),
        );
    }
    if let Some(decline_code) = error.extra.get("decline_code") {
        object.insert("decline_code".into(), decline_code.clone());
    }
    object.insert("message".into(), json!(error.message));
    object.insert("payment_method".into(), payment_method.clone());
    object.insert("type".into(), json!(error.kind));
    Value::Object(object)
}

/// The 3D Secure step Stripe.js (here: the hosted invoice page) performs.
pub fn three_d_secure_action() -> Value {
    json!({
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": null},
    })
}
