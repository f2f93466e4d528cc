//! `POST /v1/checkout/sessions` in `setup` mode, with Stripe's validation for that mode.

use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::logic::check_url;
use crate::spec::{self, check};
use crate::state::{State, ne, new_id, rid};

/// Payment method types Checkout accepts (async-stripe's `CreateCheckoutSessionAllowedPaymentMethodTypes`).
const PM_TYPES: &[&str] = &[
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

fn present(p: &Value, k: &str) -> bool {
    match p.get(k) {
        None => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

fn custom_text(p: &Value) -> Value {
    let pos = |k: &str| match p["custom_text"][k]["message"].as_str() {
        Some(m) if !m.is_empty() => json!({"message": m}),
        _ => Value::Null,
    };
    json!({
        "after_submit": pos("after_submit"),
        "shipping_address": pos("shipping_address"),
        "submit": pos("submit"),
        "terms_of_service_acceptance": pos("terms_of_service_acceptance"),
    })
}

pub fn create(st: &mut State, acct: &str, p: &Value) -> ApiResult<Value> {
    check(&spec::CHECKOUT_CREATE, p, "")?;
    let mode = ne(p, "mode").ok_or_else(|| ApiError::missing_param("mode"))?;
    if mode != "setup" {
        return Err(ApiError::invalid(
            format!("The emulator supports Checkout Sessions in `setup` mode only, not `{mode}`."),
            "mode",
        ));
    }
    let ui_mode = ne(p, "ui_mode").unwrap_or("hosted_page");
    let hosted = ui_mode == "hosted_page";

    // Parameters that only make sense for payments/subscriptions.
    for k in [
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
        if present(p, k) {
            return Err(ApiError::invalid(
                format!("You can not pass `{k}` in `setup` mode."),
                k,
            ));
        }
    }
    let apmt: Option<Vec<String>> = p
        .get("allowed_payment_method_types")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        });
    if let Some(types) = &apmt {
        for (i, t) in types.iter().enumerate() {
            if !PM_TYPES.contains(&t.as_str()) {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid allowed_payment_method_types[{i}]: must be one of {}",
                        PM_TYPES.join(", ")
                    ),
                    format!("allowed_payment_method_types[{i}]"),
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
    let currency = ne(p, "currency").map(str::to_lowercase);
    if let Some(c) = &currency
        && (c.len() != 3 || !c.chars().all(|x| x.is_ascii_alphabetic()))
    {
        return Err(ApiError::invalid(
            format!("Invalid currency: {c}"),
            "currency",
        ));
    }
    if apmt.is_none() && currency.is_none() {
        return Err(ApiError::invalid(
            "`currency` is required in `setup` mode when `allowed_payment_method_types` is not set.".to_string(),
            "currency",
        ));
    }

    // URLs per ui_mode.
    let redirect = ne(p, "redirect_on_completion");
    if hosted {
        if present(p, "return_url") {
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
        for k in ["success_url", "cancel_url"] {
            if let Some(u) = ne(p, k) {
                check_url(u, k)?;
            }
        }
    } else {
        for k in ["success_url", "cancel_url"] {
            if present(p, k) {
                return Err(ApiError::invalid(
                    format!(
                        "`{k}` cannot be used when `ui_mode` is `{ui_mode}`. Use `return_url` instead."
                    ),
                    k,
                ));
            }
        }
        let redirect = redirect.unwrap_or("always");
        match ne(p, "return_url") {
            Some(u) if redirect == "never" => {
                let _ = u;
                return Err(ApiError::invalid(
                    "`return_url` cannot be passed when `redirect_on_completion` is `never`."
                        .to_string(),
                    "return_url",
                ));
            }
            Some(u) => check_url(u, "return_url")?,
            None if redirect != "never" => {
                return Err(ApiError::invalid(
                    format!(
                        "`return_url` is required when `ui_mode` is `{ui_mode}` unless `redirect_on_completion` is `never`."
                    ),
                    "return_url",
                ));
            }
            None => {}
        }
    }

    // Customer.
    let customer = ne(p, "customer");
    if customer.is_some() && present(p, "customer_email") {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: customer, customer_email.".to_string(),
            "customer_email",
        ));
    }
    if let Some(c) = customer
        && st.get_of(acct, c, "customer").is_none()
    {
        return Err(
            ApiError::invalid(format!("No such customer: '{c}'"), "customer")
                .code("resource_missing"),
        );
    }
    if customer.is_some() && present(p, "customer_creation") {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: customer, customer_creation."
                .to_string(),
            "customer_creation",
        ));
    }
    if present(p, "customer_update") && customer.is_none() {
        return Err(ApiError::invalid(
            "`customer_update` can only be used with `customer`.".to_string(),
            "customer_update",
        ));
    }
    if let Some(e) = ne(p, "customer_email")
        && !(e.contains('@') && !e.starts_with('@') && !e.ends_with('@'))
    {
        return Err(
            ApiError::invalid(format!("Invalid email address: {e}"), "customer_email")
                .code("email_invalid"),
        );
    }

    // Expiry: 30 minutes to 24 hours from creation.
    let now = st.now();
    let expires_at = match ne(p, "expires_at") {
        None => now + 86_400,
        Some(v) => {
            let t: i64 = v
                .parse()
                .map_err(|_| ApiError::invalid(format!("Invalid integer: {v}"), "expires_at"))?;
            if t < now + 1800 {
                return Err(ApiError::invalid(
                    "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.".to_string(),
                    "expires_at",
                ));
            }
            if t > now + 86_400 {
                return Err(ApiError::invalid(
                    "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.".to_string(),
                    "expires_at",
                ));
            }
            t
        }
    };

    let metadata = p
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let sid = &p["setup_intent_data"];
    let seti_metadata = sid
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let pm_types: Vec<String> = apmt.clone().unwrap_or_else(|| vec!["card".to_string()]);

    // The setup intent the session confirms.
    let seti_id = new_id("seti");
    let seti = json!({
        "allowed_payment_method_types": apmt,
        "application": null,
        "automatic_payment_methods": null,
        "cancellation_reason": null,
        "client_secret": format!("{seti_id}_secret_{}", rid(25)),
        "created": now,
        "customer": customer,
        "customer_account": null,
        "description": ne(sid, "description"),
        "excluded_payment_method_types": null,
        "flow_directions": null,
        "id": seti_id,
        "last_setup_error": null,
        "latest_attempt": null,
        "livemode": false,
        "mandate": null,
        "metadata": seti_metadata,
        "next_action": null,
        "object": "setup_intent",
        "on_behalf_of": ne(sid, "on_behalf_of"),
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"mandate_options": null, "network": null, "request_three_d_secure": "automatic"}},
        "payment_method_types": pm_types,
        "single_use_mandate": null,
        "status": "requires_payment_method",
        "usage": "off_session",
    });
    st.insert(acct, "setup_intent", seti.clone())?;
    st.emit(acct, "setup_intent.created", &seti, None)?;

    let id = new_id("cs_test");
    let url = hosted.then(|| format!("{}/c/pay/{}", st.public_url, id));
    let client_secret = (!hosted).then(|| format!("{id}_secret_{}", rid(24)));
    let cs = json!({
        "adaptive_pricing": null,
        "after_expiration": null,
        "allow_promotion_codes": null,
        "allowed_payment_method_types": apmt,
        "amount_subtotal": null,
        "amount_total": null,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": ne(p, "billing_address_collection"),
        "branding_settings": null,
        "cancel_url": ne(p, "cancel_url"),
        "client_reference_id": ne(p, "client_reference_id"),
        "client_secret": client_secret,
        "collected_information": null,
        "consent": null,
        "consent_collection": null,
        "created": now,
        "currency": currency,
        "currency_conversion": null,
        "custom_fields": [],
        "custom_text": custom_text(p),
        "customer": customer,
        "customer_account": null,
        "customer_creation": ne(p, "customer_creation"),
        "customer_details": null,
        "customer_email": ne(p, "customer_email"),
        "discounts": null,
        "excluded_payment_method_types": null,
        "expires_at": expires_at,
        "id": id,
        "integration_identifier": ne(p, "integration_identifier"),
        "invoice": null,
        "invoice_creation": null,
        "livemode": false,
        "locale": ne(p, "locale"),
        "managed_payments": null,
        "metadata": metadata,
        "mode": "setup",
        "name_collection": null,
        "object": "checkout.session",
        "optional_items": null,
        "origin_context": ne(p, "origin_context"),
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": "always",
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": pm_types,
        "payment_status": "no_payment_required",
        "permissions": null,
        "phone_number_collection": {"enabled": p["phone_number_collection"]["enabled"] == "true"},
        "recovered_from": null,
        "redirect_on_completion": if hosted { Value::Null } else { json!(redirect.unwrap_or("always")) },
        "return_url": ne(p, "return_url"),
        "saved_payment_method_options": null,
        "setup_intent": seti_id,
        "shipping_address_collection": null,
        "shipping_cost": null,
        "shipping_options": [],
        "status": "open",
        "submit_type": null,
        "subscription": null,
        "success_url": ne(p, "success_url"),
        "tax_id_collection": null,
        "total_details": null,
        "ui_mode": ui_mode,
        "url": url,
        "wallet_options": null,
    });
    st.insert(acct, "checkout.session", cs.clone())?;
    Ok(cs)
}
