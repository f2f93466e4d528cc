//! Completing an open `setup` session with a card, as the hosted page or Stripe.js does: the card
//! is checked (`cards.rs`), saved as a payment method, the session's setup intent confirmed and
//! the session completed, with the events Stripe sends.

use serde_json::{Map, Value, json};

use crate::cards::{self, BillingAddress, CardInput, Verdict};
use crate::error::{ApiError, ApiResult};
use crate::resources::{customers, payment_methods, setup_intents};
use crate::state::State;

/// Result of submitting a card for a checkout session.
pub enum Completion {
    /// The completed session.
    Completed(Value),
    /// The card was refused: Stripe's error, carrying the failed setup intent.
    Declined(ApiError),
    /// The card needs a 3D Secure challenge; submit it again with the answer.
    NeedsAuthentication,
}

/// Submits a card for open session `session_id`: decline, 3DS step, or completion.
/// `authenticated`: Some(true/false) answers the 3DS challenge for cards that require it.
pub fn submit_card(
    state: &mut State,
    account: &str,
    session_id: &str,
    card: &CardInput,
    authenticated: Option<bool>,
) -> ApiResult<Completion> {
    let session = super::get(state, account, session_id)?;
    if session["status"] != "open" {
        return Err(ApiError::invalid(
            format!(
                "This Checkout Session is no longer active (status: {}).",
                session["status"].as_str().unwrap_or_default()
            ),
            "session",
        )
        .code("checkout_session_not_open"));
    }
    let setup_intent_id = session["setup_intent"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut setup_intent = setup_intents::get(state, account, &setup_intent_id)?;
    let (outcome, exp_year) = cards::validate(card, state.now())?;
    let collects_address = session["billing_address_collection"] == "required";
    if collects_address && !card.address.as_ref().is_some_and(|a| a.is_complete()) {
        return Err(ApiError::invalid(
            "Your billing address is incomplete: enter the street address and the two-letter country code."
                .to_string(),
            "billing_details[address]",
        )
        .code("incomplete_address"));
    }
    let mut card = card.clone();
    card.exp_year = exp_year;
    if !collects_address {
        card.address = None;
    }
    let verdict = cards::verdict(outcome, authenticated);
    if let Verdict::NeedsAuthentication = verdict {
        // The bank's challenge is pending: the setup intent waits in
        // `requires_action` (announced once) until it is answered.
        if setup_intent["status"] != "requires_action" {
            let payment_method = payment_methods::from_card(state, &card);
            setup_intents::require_action(state, account, setup_intent, &payment_method)?;
        }
        return Ok(Completion::NeedsAuthentication);
    }
    let mut payment_method = payment_methods::from_card(state, &card);
    if let Verdict::Refused(error) = verdict {
        let error = setup_intents::fail(state, account, setup_intent, &payment_method, error)?;
        return Ok(Completion::Declined(error));
    }
    let mut customer = session["customer"].as_str().map(str::to_string);
    if customer.is_none() && session["customer_creation"] == "always" {
        // `customer_creation=always`: Checkout creates the Customer on confirmation.
        let mut customer_params = Map::new();
        if let Some(email) = card
            .email
            .clone()
            .or_else(|| session["customer_email"].as_str().map(str::to_string))
        {
            customer_params.insert("email".into(), email.into());
        }
        if let Some(name) = &card.name {
            customer_params.insert("name".into(), name.clone().into());
        }
        let created = customers::create(state, account, &Value::Object(customer_params))?;
        customer = created["id"].as_str().map(str::to_string);
        setup_intent["customer"] = created["id"].clone();
    }
    state.insert(account, "payment_method", &payment_method)?;
    if let Some(customer) = &customer {
        payment_method = payment_methods::attach(
            state,
            account,
            payment_method["id"].as_str().unwrap_or_default(),
            customer,
        )?;
    }
    setup_intents::succeed(state, account, setup_intent, &payment_method["id"])?;
    let mut completed = session.clone();
    if let Some(customer) = &customer {
        completed["customer"] = customer.as_str().into();
    }
    completed["status"] = "complete".into();
    completed["client_secret"] = Value::Null;
    completed["url"] = Value::Null;
    let customer_object = customer
        .as_deref()
        .and_then(|customer| state.object_of_type(account, customer, "customer"));
    let email = card
        .email
        .clone()
        .or_else(|| session["customer_email"].as_str().map(str::to_string))
        .or_else(|| {
            customer_object
                .as_ref()
                .and_then(|customer| customer["email"].as_str().map(str::to_string))
        });
    let address = card.address.as_ref().map(BillingAddress::to_json);
    if let (Some(address), Some(customer)) = (&address, &customer)
        && session["customer_update"]["address"] == "auto"
    {
        // `customer_update[address]=auto`: the Customer keeps the address entered.
        customers::set_address(state, account, customer, address)?;
    }
    completed["customer_details"] = json!({
        "address": address,
        "business_name": null,
        "email": email,
        "individual_name": null,
        "name": card.name,
        "phone": null,
        "tax_exempt": "none",
        "tax_ids": [],
    });
    state.save(account, completed.clone())?;
    state.emit(account, "checkout.session.completed", &completed, None)?;
    Ok(Completion::Completed(completed))
}
