//! Setup Intents: retrieve and list (`/v1/setup_intents`). The emulator creates them only for
//! Checkout Sessions (one per session), confirms them when the session's card is submitted and
//! cancels them when the session expires.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids::{new_id, random_alphanumeric};
use crate::pagination::list as list_page;
use crate::params;
use crate::resources::find;
use crate::spec::{self, check};
use crate::state::State;

/// The account's setup intent `id`, or Stripe's 404.
pub fn get(state: &State, account: &str, id: &str) -> ApiResult<Value> {
    find(state, account, id, "setup_intent", "setupintent")
}

/// `GET /v1/setup_intents/{id}`
pub fn retrieve(state: &State, account: &str, id: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::SETUP_INTENT_RETRIEVE, params, "")?;
    get(state, account, id)
}

/// `GET /v1/setup_intents` (filter: `customer`).
pub fn list(state: &State, account: &str, params: &Value) -> ApiResult<Value> {
    check(&spec::SETUP_INTENT_LIST, params, "")?;
    let customer = params::non_empty(params, "customer").map(str::to_string);
    list_page(
        state,
        account,
        "setup_intent",
        params,
        "/v1/setup_intents",
        |setup_intent| {
            customer
                .as_deref()
                .is_none_or(|customer| setup_intent["customer"] == customer)
        },
    )
}

/// What a Checkout Session passes on to the setup intent it creates.
pub struct ForCheckout<'a> {
    pub customer: Option<&'a str>,
    /// `allowed_payment_method_types` as given (None when not given).
    pub allowed_payment_method_types: &'a Option<Vec<String>>,
    /// The payment method types in effect (`["card"]` unless given).
    pub payment_method_types: &'a [String],
    /// The session's `setup_intent_data` parameter.
    pub setup_intent_data: &'a Value,
    pub created: i64,
}

/// The setup intent of a new Checkout Session (`requires_payment_method`), not yet stored.
pub fn for_checkout(session: ForCheckout<'_>) -> Value {
    let data = session.setup_intent_data;
    let metadata = data
        .get("metadata")
        .filter(|metadata| metadata.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let id = new_id("seti");
    json!({
        "allowed_payment_method_types": session.allowed_payment_method_types,
        "application": null,
        "automatic_payment_methods": null,
        "cancellation_reason": null,
        "client_secret": format!("{id}_secret_{}", random_alphanumeric(25)),
        "created": session.created,
        "customer": session.customer,
        "customer_account": null,
        "description": params::non_empty(data, "description"),
        "excluded_payment_method_types": null,
        "flow_directions": null,
        "id": id,
        "last_setup_error": null,
        "latest_attempt": null,
        "livemode": false,
        "mandate": null,
        "metadata": metadata,
        "next_action": null,
        "object": "setup_intent",
        "on_behalf_of": params::non_empty(data, "on_behalf_of"),
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"mandate_options": null, "network": null, "request_three_d_secure": "automatic"}},
        "payment_method_types": session.payment_method_types,
        "single_use_mandate": null,
        "status": "requires_payment_method",
        "usage": "off_session",
    })
}

/// Stores the setup intent of a new Checkout Session and emits `setup_intent.created`.
pub fn store_for_checkout(state: &mut State, account: &str, setup_intent: Value) -> ApiResult<()> {
    state.emit(account, "setup_intent.created", &setup_intent, None)?;
    state.insert(account, "setup_intent", &setup_intent)?;
    Ok(())
}

/// Records a failed setup attempt with `payment_method` (stored unattached): the setup intent
/// gets `last_setup_error` and goes back to `requires_payment_method`, and
/// `setup_intent.setup_failed` is emitted. Returns `error` carrying the setup intent.
pub fn fail(
    state: &mut State,
    account: &str,
    mut setup_intent: Value,
    payment_method: &Value,
    error: ApiError,
) -> ApiResult<ApiError> {
    state.insert(account, "payment_method", payment_method)?;
    let mut last_setup_error = Map::new();
    if let Some(code) = &error.code {
        last_setup_error.insert("code".into(), json!(code));
        last_setup_error.insert(
            "doc_url".into(),
            json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            )),
        );
    }
    if let Some(decline_code) = error.extra.get("decline_code") {
        last_setup_error.insert("decline_code".into(), decline_code.clone());
    }
    last_setup_error.insert("message".into(), json!(error.message));
    last_setup_error.insert("payment_method".into(), payment_method.clone());
    last_setup_error.insert("type".into(), json!(error.kind));
    setup_intent["last_setup_error"] = Value::Object(last_setup_error);
    setup_intent["status"] = "requires_payment_method".into();
    setup_intent["payment_method"] = Value::Null;
    setup_intent["next_action"] = Value::Null;
    state.save(account, setup_intent.clone())?;
    state.emit(account, "setup_intent.setup_failed", &setup_intent, None)?;
    Ok(error.with("setup_intent", setup_intent))
}

/// The card needs 3D Secure: `payment_method` (stored, not attached) waits on the setup
/// intent, which goes to `requires_action` with the next action Stripe.js performs, and
/// `setup_intent.requires_action` is emitted.
pub fn require_action(
    state: &mut State,
    account: &str,
    mut setup_intent: Value,
    payment_method: &Value,
) -> ApiResult<()> {
    state.insert(account, "payment_method", payment_method)?;
    setup_intent["status"] = "requires_action".into();
    setup_intent["payment_method"] = payment_method["id"].clone();
    setup_intent["next_action"] = json!({
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": null},
    });
    state.save(account, setup_intent.clone())?;
    state.emit(account, "setup_intent.requires_action", &setup_intent, None)?;
    Ok(())
}

/// Marks the setup intent `succeeded` with `payment_method_id` and emits
/// `setup_intent.succeeded`.
pub fn succeed(
    state: &mut State,
    account: &str,
    mut setup_intent: Value,
    payment_method_id: &Value,
) -> ApiResult<()> {
    setup_intent["status"] = "succeeded".into();
    setup_intent["payment_method"] = payment_method_id.clone();
    setup_intent["next_action"] = Value::Null;
    setup_intent["last_setup_error"] = Value::Null;
    setup_intent["latest_attempt"] = json!(new_id("setatt"));
    state.save(account, setup_intent.clone())?;
    state.emit(account, "setup_intent.succeeded", &setup_intent, None)?;
    Ok(())
}

/// Cancels a setup intent that has neither succeeded nor been canceled
/// (`cancellation_reason: abandoned`) and emits `setup_intent.canceled`; other ids are left alone.
pub fn cancel_abandoned(state: &mut State, account: &str, id: &str) -> ApiResult<()> {
    if let Some(mut setup_intent) = state.object_of_type(account, id, "setup_intent")
        && setup_intent["status"] != "succeeded"
        && setup_intent["status"] != "canceled"
    {
        setup_intent["status"] = "canceled".into();
        setup_intent["cancellation_reason"] = "abandoned".into();
        state.save(account, setup_intent.clone())?;
        state.emit(account, "setup_intent.canceled", &setup_intent, None)?;
    }
    Ok(())
}
