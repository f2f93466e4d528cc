//! Invoice Payments: retrieve and list (`/v1/invoice_payments`): how an invoice is paid at
//! this API version. Finalizing an invoice with an amount due creates its default payment
//! (`is_default`, `status: open`, `payment.type: payment_intent`); it becomes `paid` when the
//! payment intent succeeds and `canceled` when the invoice is voided or paid out of band.
//! Failed attempts stay visible on the payment intent (`last_payment_error`) and its charges.

use serde_json::{Value, json};

use crate::error::ApiResult;
use crate::ids::new_id;
use crate::pagination::list as list_page;
use crate::params;
use crate::resources::{find, payment_intents};
use crate::spec::{self, check};
use crate::state::State;

/// The list kind and `object` of invoice payments.
pub const KIND: &str = "invoice_payment";

/// `GET /v1/invoice_payments/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    find(state, account, id, KIND, "invoice_payment")
}

/// `GET /v1/invoice_payments` (filters: `invoice`, `status`, `payment[payment_intent]`).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::INVOICE_PAYMENT_LIST, params, "")?;
    let invoice = params::non_empty(params, "invoice").map(str::to_string);
    let status = params::non_empty(params, "status").map(str::to_string);
    let intent = params
        .get("payment")
        .and_then(|payment| params::non_empty(payment, "payment_intent"))
        .map(str::to_string);
    list_page(
        state,
        account,
        KIND,
        params,
        "/v1/invoice_payments",
        |payment| {
            invoice
                .as_deref()
                .is_none_or(|invoice| payment["invoice"] == invoice)
                && status
                    .as_deref()
                    .is_none_or(|status| payment["status"] == status)
                && intent
                    .as_deref()
                    .is_none_or(|intent| payment["payment"]["payment_intent"] == intent)
        },
    )
}

/// The invoice's payments, newest first.
pub fn for_invoice(state: &State, account: &str, invoice: &str) -> Vec<Value> {
    let Some(stored) = state.accounts.get(account) else {
        return Vec::new();
    };
    stored
        .lists
        .get(KIND)
        .map(|ids| {
            ids.iter()
                .rev()
                .filter_map(|id| stored.objects.get(id).map(|payment| payment.value()))
                .filter(|payment| payment["invoice"] == invoice)
                .collect()
        })
        .unwrap_or_default()
}

/// The invoice's default payment (the one finalization created).
pub fn default_for(state: &State, account: &str, invoice: &str) -> Option<Value> {
    for_invoice(state, account, invoice)
        .into_iter()
        .find(|payment| payment["is_default"] == true)
}

/// The payment intent of the invoice's default payment.
pub fn default_payment_intent(state: &State, account: &str, invoice: &str) -> Option<Value> {
    let payment = default_for(state, account, invoice)?;
    state.object_of_type(
        account,
        payment["payment"]["payment_intent"].as_str()?,
        payment_intents::KIND,
    )
}

/// A new open default payment of `invoice` through `payment_intent`, not stored.
pub fn new(invoice: &Value, payment_intent: &Value, now: i64) -> Value {
    json!({
        "amount_paid": null,
        "amount_requested": invoice["amount_due"],
        "created": now,
        "currency": invoice["currency"],
        "id": new_id("inpay"),
        "invoice": invoice["id"],
        "is_default": true,
        "livemode": false,
        "object": KIND,
        "payment": {"charge": null, "payment_intent": payment_intent["id"], "payment_record": null, "type": "payment_intent"},
        "status": "open",
        "status_transitions": {"canceled_at": null, "paid_at": null},
    })
}
