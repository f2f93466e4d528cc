//! `POST /v1/checkout/sessions` in `setup` mode, with Stripe's validation for that mode. Creating
//! a session also creates the setup intent it confirms.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::ids::{new_id, random_alphanumeric};
use crate::params::{check_url, is_present, non_empty, string_array};
use crate::resources::{customers, setup_intents};
use crate::spec::{self, check};
use crate::state::State;

/// Payment method types Checkout accepts in `allowed_payment_method_types`: async-stripe's
/// `CreateCheckoutSessionAllowedPaymentMethodTypes` without `p24` (which the request spec
/// accepts, so `p24` gets this list's "must be one of" error).
const PAYMENT_METHOD_TYPES: &[&str] = &[
    "acss_debit",
    "affirm",
    "afterpay_clearpay",
    "alipay",
    "alma",
    "amazon_pay",
    "au_becs_debit",
    "bacs_debit",
    "bancontact",
    "billie",
    "bizum",
    "blik",
    "boleto",
    "card",
    "cashapp",
    "crypto",
    "customer_balance",
    "eps",
    "fpx",
    "giropay",
    "grabpay",
    "ideal",
    "kakao_pay",
    "klarna",
    "konbini",
    "kr_card",
    "link",
    "mb_way",
    "mobilepay",
    "multibanco",
    "naver_pay",
    "nz_bank_account",
    "oxxo",
    "pay_by_bank",
    "payco",
    "paynow",
    "paypal",
    "paypay",
    "payto",
    "pix",
    "promptpay",
    "revolut_pay",
    "samsung_pay",
    "satispay",
    "scalapay",
    "sepa_debit",
    "sequra",
    "sofort",
    "sunbit",
    "swish",
    "twint",
    "upi",
    "us_bank_account",
    "wechat_pay",
    "zip",
];

fn custom_text(params: &Value) -> Value {
    let position = |key: &str| match params["custom_text"][key]["message"].as_str() {
        Some(message) if !message.is_empty() => json!({"message": message}),
        _ => Value::Null,
    };
    json!({
        "after_submit": position("after_submit"),
        "shipping_address": position("shipping_address"),
        "submit": position("submit"),
        "terms_of_service_acceptance": position("terms_of_service_acceptance"),
    })
}

/// A checkout session request validated and built without the state: what is left to do
/// under the lock is [`commit`].
pub struct Prepared {
    customer: Option<String>,
    /// The first error Stripe reports after checking that `customer` exists.
    after_customer_check: Option<ApiError>,
    /// `expires_at` as given (its bounds depend on the emulator's clock).
    expires_at: Option<i64>,
    /// The session, without `created` and `expires_at`.
    session: Value,
    /// Its setup intent, without `created`.
    setup_intent: Value,
}

/// `POST /v1/checkout/sessions`
pub fn create(state: &mut State, account: &str, params: &Value) -> ApiResult<Value> {
    let prepared = prepare(params, &state.public_url.clone())?;
    commit(state, account, prepared)
}

/// Validates a `POST /v1/checkout/sessions` request and builds its objects, without the
/// state (errors that need it are kept in order in [`Prepared`]). `public_url` is the base of
/// hosted pages.
pub fn prepare(params: &Value, public_url: &str) -> ApiResult<Prepared> {
    check(&spec::CHECKOUT_CREATE, params, "")?;
    let mode = non_empty(params, "mode").ok_or_else(|| ApiError::missing_param("mode"))?;
    if mode != "setup" {
        return Err(ApiError::invalid(
            format!("The emulator supports Checkout Sessions in `setup` mode only, not `{mode}`."),
            "mode",
        ));
    }
    let ui_mode = non_empty(params, "ui_mode").unwrap_or("hosted_page");
    let hosted = ui_mode == "hosted_page";

    // Parameters that only make sense for payments/subscriptions.
    for key in [
        "line_items",
        "payment_intent_data",
        "subscription_data",
        "submit_type",
        "discounts",
        "optional_items",
        "shipping_options",
        "invoice_creation",
        "payment_method_collection",
    ] {
        if is_present(params, key) {
            return Err(ApiError::invalid(
                format!("You can not pass `{key}` in `setup` mode."),
                key,
            ));
        }
    }
    let allowed_payment_method_types = string_array(params, "allowed_payment_method_types");
    if let Some(types) = &allowed_payment_method_types {
        for (index, payment_method_type) in types.iter().enumerate() {
            if !PAYMENT_METHOD_TYPES.contains(&payment_method_type.as_str()) {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid allowed_payment_method_types[{index}]: must be one of {}",
                        PAYMENT_METHOD_TYPES.join(", ")
                    ),
                    format!("allowed_payment_method_types[{index}]"),
                ));
            }
        }
        if types.is_empty() {
            return Err(ApiError::invalid(
                "Invalid array".to_string(),
                "allowed_payment_method_types",
            ));
        }
    }
    let currency = non_empty(params, "currency").map(str::to_lowercase);
    if let Some(code) = &currency
        && (code.len() != 3 || !code.chars().all(|c| c.is_ascii_alphabetic()))
    {
        return Err(ApiError::invalid(
            format!("Invalid currency: {code}"),
            "currency",
        ));
    }
    if allowed_payment_method_types.is_none() && currency.is_none() {
        return Err(ApiError::invalid(
            "`currency` is required in `setup` mode when `allowed_payment_method_types` is not set.".to_string(),
            "currency",
        ));
    }

    // URLs per ui_mode.
    let redirect = non_empty(params, "redirect_on_completion");
    if hosted {
        if is_present(params, "return_url") {
            return Err(ApiError::invalid(
                "`return_url` can only be used when `ui_mode` is `embedded_page`, `elements` or `form`; use `success_url` with `hosted_page`.".to_string(),
                "return_url",
            ));
        }
        if redirect.is_some() {
            return Err(ApiError::invalid(
                "`redirect_on_completion` can only be used when `ui_mode` is `embedded_page`, `elements` or `form`.".to_string(),
                "redirect_on_completion",
            ));
        }
        for key in ["success_url", "cancel_url"] {
            if let Some(url) = non_empty(params, key) {
                check_url(url, key)?;
            }
        }
    } else {
        for key in ["success_url", "cancel_url"] {
            if is_present(params, key) {
                return Err(ApiError::invalid(
                    format!(
                        "`{key}` cannot be used when `ui_mode` is `{ui_mode}`. Use `return_url` instead."
                    ),
                    key,
                ));
            }
        }
        let redirect = redirect.unwrap_or("always");
        match non_empty(params, "return_url") {
            Some(_) if redirect == "never" => {
                return Err(ApiError::invalid(
                    "`return_url` cannot be passed when `redirect_on_completion` is `never`."
                        .to_string(),
                    "return_url",
                ));
            }
            Some(url) => check_url(url, "return_url")?,
            // Stripe's rule: required when redirect-based payment methods
            // are enabled on the session (and it may redirect at all).
            None if redirect != "never"
                && may_redirect(allowed_payment_method_types.as_deref()) =>
            {
                return Err(ApiError::invalid(
                    format!(
                        "`return_url` is required when `ui_mode` is `{ui_mode}` and redirect-based payment methods are enabled, unless `redirect_on_completion` is `never`."
                    ),
                    "return_url",
                ));
            }
            None => {}
        }
    }

    // Customer.
    let customer = non_empty(params, "customer");
    if customer.is_some() && is_present(params, "customer_email") {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: customer, customer_email.".to_string(),
            "customer_email",
        ));
    }
    // Errors Stripe reports only once the customer is known to exist.
    let mut after_customer_check = after_customer_checks(params, customer);
    let expires_at = match non_empty(params, "expires_at") {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(timestamp) => Some(timestamp),
            Err(_) => {
                after_customer_check.get_or_insert_with(|| {
                    ApiError::invalid(format!("Invalid integer: {text}"), "expires_at")
                });
                None
            }
        },
    };

    let metadata = params
        .get("metadata")
        .filter(|metadata| metadata.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let payment_method_types: Vec<String> = allowed_payment_method_types
        .clone()
        .unwrap_or_else(|| vec!["card".to_string()]);

    // The setup intent the session confirms.
    let setup_intent = setup_intents::for_checkout(setup_intents::ForCheckout {
        customer,
        allowed_payment_method_types: &allowed_payment_method_types,
        payment_method_types: &payment_method_types,
        setup_intent_data: &params["setup_intent_data"],
        created: 0,
    });
    let setup_intent_id = setup_intent["id"].clone();

    let id = new_id("cs_test");
    let url = hosted.then(|| format!("{public_url}/c/pay/{id}"));
    let client_secret = (!hosted).then(|| format!("{id}_secret_{}", random_alphanumeric(24)));
    let session = json!({
        "adaptive_pricing": null,
        "after_expiration": null,
        "allow_promotion_codes": null,
        "allowed_payment_method_types": allowed_payment_method_types,
        "amount_subtotal": null,
        "amount_total": null,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": non_empty(params, "billing_address_collection"),
        "branding_settings": null,
        "cancel_url": non_empty(params, "cancel_url"),
        "client_reference_id": non_empty(params, "client_reference_id"),
        "client_secret": client_secret,
        "collected_information": null,
        "consent": null,
        "consent_collection": null,
        "created": 0,
        "currency": currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": custom_text(params),
        "customer": customer,
        "customer_account": null,
        "customer_creation": non_empty(params, "customer_creation"),
        "customer_details": null,
        "customer_email": non_empty(params, "customer_email"),
        "discounts": null,
        "excluded_payment_method_types": null,
        "expires_at": 0,
        "id": id,
        "integration_identifier": non_empty(params, "integration_identifier"),
        "invoice": null,
        "invoice_creation": null,
        "livemode": false,
        "locale": non_empty(params, "locale"),
        "managed_payments": null,
        "metadata": metadata,
        "mode": "setup",
        "name_collection": null,
        "object": "checkout.session",
        "optional_items": null,
        "origin_context": non_empty(params, "origin_context"),
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": "always",
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": payment_method_types,
        "payment_status": "no_payment_required",
        "permissions": null,
        "phone_number_collection": {"enabled": params["phone_number_collection"]["enabled"] == "true"},
        "recovered_from": null,
        "redirect_on_completion": if hosted { Value::Null } else { json!(redirect.unwrap_or("always")) },
        "return_url": non_empty(params, "return_url"),
        "saved_payment_method_options": null,
        "setup_intent": setup_intent_id,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": non_empty(params, "success_url"),
        "tax_id_collection": null,
        "total_details": null,
        "ui_mode": ui_mode,
        "url": url,
        "wallet_options": null,
    });
    Ok(Prepared {
        customer: customer.map(str::to_string),
        after_customer_check,
        expires_at,
        session,
        setup_intent,
    })
}

/// Creates a prepared session (the part of `POST /v1/checkout/sessions` that needs the state):
/// checks the customer and `expires_at`'s bounds, stores the setup intent (emitting
/// `setup_intent.created`) and the session, and schedules its expiry.
pub fn commit(state: &mut State, account: &str, prepared: Prepared) -> ApiResult<Value> {
    let Prepared {
        customer,
        after_customer_check,
        expires_at,
        mut session,
        mut setup_intent,
    } = prepared;
    if let Some(customer) = &customer
        && !customers::exists(state, account, customer)
    {
        return Err(customers::no_such_customer(customer));
    }
    if let Some(error) = after_customer_check {
        return Err(error);
    }
    // Expiry: 30 minutes to 24 hours from creation.
    let now = state.now();
    let expires_at = match expires_at {
        None => now + 86_400,
        Some(timestamp) => {
            if timestamp < now + 1800 {
                return Err(ApiError::invalid(
                    "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.".to_string(),
                    "expires_at",
                ));
            }
            if timestamp > now + 86_400 {
                return Err(ApiError::invalid(
                    "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.".to_string(),
                    "expires_at",
                ));
            }
            timestamp
        }
    };
    setup_intent["created"] = now.into();
    setup_intents::store_for_checkout(state, account, setup_intent)?;
    session["created"] = now.into();
    session["expires_at"] = expires_at.into();
    let id = session["id"].as_str().unwrap_or_default().to_string();
    state.insert(account, "checkout.session", &session)?;
    state.schedule_expiry(account, &id, expires_at);
    Ok(session)
}

/// Checks of `POST /v1/checkout/sessions` that Stripe makes after finding the customer.
fn after_customer_checks(params: &Value, customer: Option<&str>) -> Option<ApiError> {
    if customer.is_some() && is_present(params, "customer_creation") {
        return Some(ApiError::invalid(
            "You may only specify one of these parameters: customer, customer_creation."
                .to_string(),
            "customer_creation",
        ));
    }
    if is_present(params, "customer_update") && customer.is_none() {
        return Some(ApiError::invalid(
            "`customer_update` can only be used with `customer`.".to_string(),
            "customer_update",
        ));
    }
    if let Some(email) = non_empty(params, "customer_email")
        && !(email.contains('@') && !email.starts_with('@') && !email.ends_with('@'))
    {
        return Some(
            ApiError::invalid(format!("Invalid email address: {email}"), "customer_email")
                .code("email_invalid"),
        );
    }
    None
}

/// Payment method types that confirm without leaving the page (no redirect
/// to a bank or wallet); any other type, or a session whose types Stripe
/// picks itself (none given), may redirect.
const NON_REDIRECT_TYPES: &[&str] = &[
    "card",
    "acss_debit",
    "au_becs_debit",
    "bacs_debit",
    "nz_bank_account",
    "sepa_debit",
    "us_bank_account",
];

fn may_redirect(allowed_payment_method_types: Option<&[String]>) -> bool {
    allowed_payment_method_types.is_none_or(|types| {
        types
            .iter()
            .any(|t| !NON_REDIRECT_TYPES.contains(&t.as_str()))
    })
}
