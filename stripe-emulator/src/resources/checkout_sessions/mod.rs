//! Checkout Sessions (`/v1/checkout/sessions`), in `setup` mode: create (`create.rs`), expire,
//! retrieve, list and list line items; and completing a session with a card, as the hosted page
//! or Stripe.js does (`complete.rs`).

mod complete;
mod create;

pub use complete::{Completion, submit_card};
pub use create::{commit, create, prepare};

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::pagination::list as list_page;
use crate::params;
use crate::resources::{find, setup_intents};
use crate::spec::{self, check};
use crate::state::State;

/// The account's checkout session `id`, or Stripe's 404.
pub fn get(state: &State, account: &str, id: &str) -> ApiResult<Value> {
    find(state, account, id, "checkout.session", "checkout.session")
}

/// `POST /v1/checkout/sessions/{id}/expire`: only open sessions.
pub fn expire_request(
    state: &mut State,
    account: &str,
    id: &str,
    params: &Value,
) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    let session = get(state, account, id)?;
    if session["status"] != "open" {
        return Err(ApiError::invalid(
            format!(
                "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                session["status"].as_str().unwrap_or_default()
            ),
            "session",
        )
        .code("checkout_session_not_open"));
    }
    expire(state, account, id)
}

/// Expires a session (by API call or by the clock), cancelling its setup intent, and emits
/// `setup_intent.canceled` and `checkout.session.expired`.
pub fn expire(state: &mut State, account: &str, id: &str) -> ApiResult<Value> {
    let mut session = get(state, account, id)?;
    session["status"] = "expired".into();
    session["client_secret"] = Value::Null;
    session["url"] = Value::Null;
    state.save(account, session.clone())?;
    if let Some(setup_intent_id) = session["setup_intent"].as_str() {
        setup_intents::cancel_abandoned(state, account, setup_intent_id)?;
    }
    state.emit(account, "checkout.session.expired", &session, None)?;
    Ok(session)
}

/// `GET /v1/checkout/sessions/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::RETRIEVE, params, "")?;
    get(state, account, id)
}

/// `GET /v1/checkout/sessions` (filters: `customer`, `status`).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::CHECKOUT_LIST, params, "")?;
    let customer = params::non_empty(params, "customer").map(str::to_string);
    let status = params::non_empty(params, "status").map(str::to_string);
    list_page(
        state,
        account,
        "checkout.session",
        params,
        "/v1/checkout/sessions",
        |session| {
            customer
                .as_deref()
                .is_none_or(|customer| session["customer"] == customer)
                && status
                    .as_deref()
                    .is_none_or(|status| session["status"] == status)
        },
    )
}

/// `GET /v1/checkout/sessions/{id}/line_items`: always empty in `setup` mode.
pub fn line_items(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::PLAIN_LIST, params, "")?;
    get(state, account, id)?;
    Ok(json!({
        "object": "list",
        "data": [],
        "has_more": false,
        "url": format!("/v1/checkout/sessions/{id}/line_items"),
    }))
}
