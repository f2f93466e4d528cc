//! Stripe API endpoints: routing, validation and the objects they return. Object shapes follow
//! Stripe's example objects (OpenAPI `fixtures3.json`) plus the fields added by API version
//! 2026-09-30.endive.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::spec::{self, check};
use crate::state::{State, ne, new_id, previous_attributes, rid, s};

/// Routes one authenticated `/v1/...` request.
pub fn route(st: &mut State, acct: &str, method: &str, path: &str, p: &Value) -> ApiResult<Value> {
    let segs: Vec<&str> = path
        .trim_start_matches("/v1/")
        .trim_end_matches('/')
        .split('/')
        .collect();
    let out = match (method, segs.as_slice()) {
        ("GET", ["account"]) => {
            check(&spec::RETRIEVE, p, "")?;
            account_object(st, acct)
        }
        ("POST", ["customers"]) => customer_create(st, acct, p)?,
        ("GET", ["customers"]) => {
            check(&spec::CUSTOMER_LIST, p, "")?;
            let email = ne(p, "email").map(str::to_string);
            list(st, acct, "customer", p, "/v1/customers", |o| {
                email.as_deref().is_none_or(|e| o["email"] == e)
            })?
        }
        ("GET", ["customers", id]) => {
            check(&spec::RETRIEVE, p, "")?;
            if st
                .accounts
                .get(acct)
                .is_some_and(|a| a.deleted.contains(*id))
            {
                json!({"id": id, "object": "customer", "deleted": true})
            } else {
                get(st, acct, id, "customer", "customer")?
            }
        }
        ("POST", ["customers", id]) => customer_update(st, acct, id, p)?,
        ("DELETE", ["customers", id]) => {
            check(&spec::DELETE, p, "")?;
            let cus = get(st, acct, id, "customer", "customer")?;
            let a = st.acct(acct)?;
            a.objects.remove(*id);
            a.deleted.insert(id.to_string());
            if let Some(l) = a.lists.get_mut("customer") {
                l.retain(|x| x != id);
            }
            // Deleting a customer detaches its payment methods.
            for o in a.objects.values_mut() {
                if o["object"] == "payment_method" && o["customer"] == *id {
                    o["customer"] = Value::Null;
                }
            }
            st.emit(acct, "customer.deleted", &cus, None)?;
            json!({"id": id, "object": "customer", "deleted": true})
        }
        ("GET", ["customers", id, "payment_methods"]) => {
            check(&spec::PM_LIST, p, "")?;
            get(st, acct, id, "customer", "customer")?;
            let typ = ne(p, "type").map(str::to_string);
            let url = format!("/v1/customers/{id}/payment_methods");
            list(st, acct, "payment_method", p, &url, |o| {
                o["customer"] == *id && typ.as_deref().is_none_or(|t| o["type"] == t)
            })?
        }
        ("POST", ["checkout", "sessions"]) => crate::checkout::create(st, acct, p)?,
        ("GET", ["checkout", "sessions"]) => {
            check(&spec::CHECKOUT_LIST, p, "")?;
            let customer = ne(p, "customer").map(str::to_string);
            let status = ne(p, "status").map(str::to_string);
            list(
                st,
                acct,
                "checkout.session",
                p,
                "/v1/checkout/sessions",
                |o| {
                    customer.as_deref().is_none_or(|c| o["customer"] == c)
                        && status.as_deref().is_none_or(|x| o["status"] == x)
                },
            )?
        }
        ("GET", ["checkout", "sessions", id]) => {
            check(&spec::RETRIEVE, p, "")?;
            get(st, acct, id, "checkout.session", "checkout.session")?
        }
        ("GET", ["checkout", "sessions", id, "line_items"]) => {
            check(&spec::PLAIN_LIST, p, "")?;
            get(st, acct, id, "checkout.session", "checkout.session")?;
            json!({"object": "list", "data": [], "has_more": false, "url": format!("/v1/checkout/sessions/{id}/line_items")})
        }
        ("POST", ["checkout", "sessions", id, "expire"]) => {
            check(&spec::RETRIEVE, p, "")?;
            let cs = get(st, acct, id, "checkout.session", "checkout.session")?;
            if cs["status"] != "open" {
                return Err(ApiError::invalid(
                    format!(
                        "Only Checkout Sessions with a status in [\"open\"] can be expired. This Checkout Session has a status of \"{}\".",
                        cs["status"].as_str().unwrap_or_default()
                    ),
                    "session",
                )
                .code("checkout_session_not_open"));
            }
            expire_session(st, acct, id)?
        }
        ("GET", ["setup_intents"]) => {
            check(&spec::SETUP_INTENT_LIST, p, "")?;
            let customer = ne(p, "customer").map(str::to_string);
            list(st, acct, "setup_intent", p, "/v1/setup_intents", |o| {
                customer.as_deref().is_none_or(|c| o["customer"] == c)
            })?
        }
        ("GET", ["setup_intents", id]) => {
            check(&spec::SETUP_INTENT_RETRIEVE, p, "")?;
            get(st, acct, id, "setup_intent", "setupintent")?
        }
        ("GET", ["payment_methods", id]) => {
            check(&spec::RETRIEVE, p, "")?;
            get(st, acct, id, "payment_method", "PaymentMethod")?
        }
        ("GET", ["payment_methods"]) => {
            check(&spec::PM_LIST, p, "")?;
            let customer = ne(p, "customer").map(str::to_string);
            list(st, acct, "payment_method", p, "/v1/payment_methods", |o| {
                customer.as_deref().is_none_or(|c| o["customer"] == c)
            })?
        }
        ("POST", ["payment_methods", id, "attach"]) => {
            check(&spec::PM_ATTACH, p, "")?;
            let cus = ne(p, "customer").ok_or_else(|| ApiError::missing_param("customer"))?;
            attach_payment_method(st, acct, id, cus)?
        }
        ("POST", ["payment_methods", id, "detach"]) => {
            check(&spec::RETRIEVE, p, "")?;
            let mut pm = get(st, acct, id, "payment_method", "PaymentMethod")?;
            if pm["customer"].is_null() {
                return Err(ApiError::invalid(
                    "The payment method you provided is not attached to a customer so detachment is impossible.".to_string(),
                    "payment_method",
                ));
            }
            pm["customer"] = Value::Null;
            st.put(acct, pm.clone())?;
            st.emit(acct, "payment_method.detached", &pm, None)?;
            pm
        }
        ("POST", ["billing_portal", "sessions"]) => portal_create(st, acct, p)?,
        ("POST", ["webhook_endpoints"]) => webhook_create(st, acct, p)?,
        ("GET", ["webhook_endpoints"]) => {
            check(&spec::PLAIN_LIST, p, "")?;
            list(
                st,
                acct,
                "webhook_endpoint",
                p,
                "/v1/webhook_endpoints",
                |_| true,
            )?
        }
        ("GET", ["webhook_endpoints", id]) => {
            check(&spec::RETRIEVE, p, "")?;
            get(st, acct, id, "webhook_endpoint", "webhook endpoint")?
        }
        ("POST", ["webhook_endpoints", id]) => webhook_update(st, acct, id, p)?,
        ("DELETE", ["webhook_endpoints", id]) => {
            check(&spec::DELETE, p, "")?;
            get(st, acct, id, "webhook_endpoint", "webhook endpoint")?;
            let a = st.acct(acct)?;
            a.objects.remove(*id);
            a.webhook_secrets.remove(*id);
            if let Some(l) = a.lists.get_mut("webhook_endpoint") {
                l.retain(|x| x != id);
            }
            json!({"id": id, "object": "webhook_endpoint", "deleted": true})
        }
        ("GET", ["events"]) => {
            check(&spec::EVENT_LIST, p, "")?;
            let typ = ne(p, "type").map(str::to_string);
            let types: Option<Vec<String>> = p.get("types").and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            });
            list(st, acct, "event", p, "/v1/events", |o| {
                let t = o["type"].as_str().unwrap_or_default();
                typ.as_deref().is_none_or(|x| type_matches(x, t))
                    && types
                        .as_ref()
                        .is_none_or(|ts| ts.iter().any(|x| type_matches(x, t)))
            })?
        }
        ("GET", ["events", id]) => {
            check(&spec::RETRIEVE, p, "")?;
            get(st, acct, id, "event", "event")?
        }
        _ => return Err(ApiError::not_found_url(method, path)),
    };
    expand_all(st, acct, out, p)
}

fn type_matches(pattern: &str, t: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => t.starts_with(prefix),
        None => pattern == t,
    }
}

/// Retrieves an object of the given `object` type, or Stripe's 404 `resource_missing`.
pub fn get(st: &State, acct: &str, id: &str, object: &str, what: &str) -> ApiResult<Value> {
    st.get_of(acct, id, object)
        .ok_or_else(|| ApiError::no_such(what, id, None))
}

fn expand_all(st: &State, acct: &str, mut out: Value, p: &Value) -> ApiResult<Value> {
    let paths: Vec<String> = match p.get("expand") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => return Ok(out),
    };
    for (i, path) in paths.iter().enumerate() {
        let segs: Vec<&str> = path.split('.').collect();
        if segs.len() > 4 {
            return Err(ApiError::invalid(
                format!("You cannot expand more than 4 levels of a property. Property: {path}"),
                format!("expand[{i}]"),
            ));
        }
        expand_path(st, acct, &mut out, &segs, i)?;
    }
    Ok(out)
}

fn expand_path(st: &State, acct: &str, v: &mut Value, segs: &[&str], i: usize) -> ApiResult<()> {
    let Some((first, rest)) = segs.split_first() else {
        return Ok(());
    };
    if v["object"] == "list" && *first == "data" {
        if let Some(items) = v.get_mut("data").and_then(Value::as_array_mut) {
            for it in items {
                expand_path(st, acct, it, rest, i)?;
            }
        }
        return Ok(());
    }
    let cannot = || {
        ApiError::invalid(
            format!("This property cannot be expanded ({}).", segs.join(".")),
            format!("expand[{i}]"),
        )
    };
    let Some(field) = v.get_mut(*first) else {
        return Err(cannot());
    };
    if let Value::String(id) = field {
        match st.get(acct, id) {
            Some(obj) => *field = obj.clone(),
            None if id.contains('_') => {}
            None => return Err(cannot()),
        }
    } else if !field.is_object() && !field.is_null() {
        return Err(cannot());
    }
    if !rest.is_empty() && field.is_object() {
        expand_path(st, acct, field, rest, i)?;
    }
    Ok(())
}

/// Stripe's cursor pagination over a list kind, newest first.
pub fn list(
    st: &State,
    acct: &str,
    kind: &'static str,
    p: &Value,
    url: &str,
    filter: impl Fn(&Value) -> bool,
) -> ApiResult<Value> {
    let limit = match ne(p, "limit") {
        None => 10,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=100).contains(&n) => n as usize,
            _ => {
                return Err(ApiError::invalid(
                    "Invalid limit: must be between 1 and 100".to_string(),
                    "limit",
                ));
            }
        },
    };
    let empty = Vec::new();
    let a = st.accounts.get(acct);
    let ids = a.and_then(|a| a.lists.get(kind)).unwrap_or(&empty);
    let items: Vec<&Value> = ids
        .iter()
        .rev()
        .filter_map(|id| a.and_then(|a| a.objects.get(id)))
        .filter(|o| filter(o))
        .collect();
    let pos_of = |param: &str, id: &str| -> ApiResult<usize> {
        items.iter().position(|o| o["id"] == id).ok_or_else(|| {
            ApiError::invalid(format!("No such {kind}: '{id}'"), param).code("resource_missing")
        })
    };
    let (page, has_more): (Vec<&Value>, bool) = if let Some(after) = ne(p, "starting_after") {
        let pos = pos_of("starting_after", after)?;
        let rest = &items[pos + 1..];
        (
            rest.iter().take(limit).copied().collect(),
            rest.len() > limit,
        )
    } else if let Some(before) = ne(p, "ending_before") {
        let pos = pos_of("ending_before", before)?;
        let head = &items[..pos];
        let start = head.len().saturating_sub(limit);
        (head[start..].to_vec(), start > 0)
    } else {
        (
            items.iter().take(limit).copied().collect(),
            items.len() > limit,
        )
    };
    Ok(json!({
        "object": "list",
        "data": page.into_iter().cloned().collect::<Vec<_>>(),
        "has_more": has_more,
        "url": url,
    }))
}

fn account_object(st: &State, acct: &str) -> Value {
    let created = st.accounts.get(acct).map(|a| a.created).unwrap_or(0);
    json!({
        "business_profile": {
            "annual_revenue": null, "estimated_worker_count": null, "mcc": null,
            "minority_owned_business_designation": null, "name": "meterpay emulated account",
            "product_description": null, "support_address": null, "support_email": null,
            "support_phone": null, "support_url": null, "url": null
        },
        "business_type": null,
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": true,
        "controller": {"type": "account"},
        "country": "US",
        "created": created,
        "default_currency": "usd",
        "details_submitted": true,
        "email": "emulator@example.com",
        "external_accounts": {"data": [], "has_more": false, "object": "list", "url": format!("/v1/accounts/{acct}/external_accounts")},
        "future_requirements": {"alternatives": [], "current_deadline": null, "currently_due": [], "disabled_reason": null, "errors": [], "eventually_due": [], "past_due": [], "pending_verification": []},
        "id": acct,
        "metadata": {},
        "object": "account",
        "payouts_enabled": true,
        "requirements": {"alternatives": [], "current_deadline": null, "currently_due": [], "disabled_reason": null, "errors": [], "eventually_due": [], "past_due": [], "pending_verification": []},
        "settings": {
            "bacs_debit_payments": {"display_name": null, "service_user_number": null},
            "branding": {"icon": null, "logo": null, "primary_color": null, "secondary_color": null},
            "card_issuing": {"tos_acceptance": {"date": null, "ip": null}},
            "card_payments": {"decline_on": {"avs_failure": false, "cvc_failure": false}, "statement_descriptor_prefix": null, "statement_descriptor_prefix_kana": null, "statement_descriptor_prefix_kanji": null},
            "dashboard": {"display_name": "meterpay emulated account", "timezone": "Etc/UTC"},
            "invoices": {"default_account_tax_ids": null, "hosted_payment_method_save": "always"},
            "payments": {"statement_descriptor": null, "statement_descriptor_kana": null, "statement_descriptor_kanji": null, "statement_descriptor_prefix_kana": null, "statement_descriptor_prefix_kanji": null},
            "payouts": {"debit_negative_balances": true, "schedule": {"delay_days": 2, "interval": "daily"}, "statement_descriptor": null},
            "sepa_debit_payments": {}
        },
        "tos_acceptance": {"date": null, "ip": null, "user_agent": null},
        "type": "standard"
    })
}

fn null_address() -> Value {
    json!({"city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null})
}

/// A string param where the empty string means "unset".
fn opt_str(p: &Value, k: &str) -> Value {
    ne(p, k).map(Value::from).unwrap_or(Value::Null)
}

fn address_from(p: &Value) -> Value {
    let mut a = null_address();
    if let Some(m) = p.as_object() {
        for (k, v) in m {
            a[k] = v
                .as_str()
                .filter(|s| !s.is_empty())
                .map(Value::from)
                .unwrap_or(Value::Null);
        }
    }
    a
}

fn metadata_merge(old: &Value, p: &Value) -> Value {
    // Stripe: `metadata=` clears; `metadata[k]=` removes k; other keys are merged.
    match p {
        Value::String(s) if s.is_empty() => json!({}),
        Value::Object(m) => {
            let mut out = old.as_object().cloned().unwrap_or_default();
            for (k, v) in m {
                match v.as_str() {
                    Some("") | None => {
                        out.remove(k);
                    }
                    Some(x) => {
                        out.insert(k.clone(), Value::from(x));
                    }
                }
            }
            Value::Object(out)
        }
        _ => old.clone(),
    }
}

fn int(p: &Value, k: &str) -> Option<i64> {
    ne(p, k).and_then(|v| v.parse().ok())
}

fn check_pm_for_customer(
    st: &State,
    acct: &str,
    cus: &str,
    pm: &str,
    param: &str,
) -> ApiResult<()> {
    let obj = st.get_of(acct, pm, "payment_method").ok_or_else(|| {
        ApiError::invalid(format!("No such PaymentMethod: '{pm}'"), param).code("resource_missing")
    })?;
    if obj["customer"] != cus {
        return Err(ApiError::invalid(
            format!(
                "The customer does not have a payment method with the ID {pm}. The payment method must be attached to the customer."
            ),
            param,
        )
        .code("resource_missing"));
    }
    Ok(())
}

fn apply_customer_params(c: &mut Value, p: &Value) {
    for k in [
        "description",
        "email",
        "name",
        "phone",
        "business_name",
        "individual_name",
    ] {
        if p.get(k).is_some() {
            c[k] = opt_str(p, k);
        }
    }
    if let Some(a) = p.get("address") {
        c["address"] = if a.as_str() == Some("") {
            Value::Null
        } else {
            address_from(a)
        };
    }
    if let Some(b) = int(p, "balance") {
        c["balance"] = b.into();
    }
    if let Some(n) = int(p, "next_invoice_sequence") {
        c["next_invoice_sequence"] = n.into();
    }
    if let Some(x) = ne(p, "invoice_prefix") {
        c["invoice_prefix"] = x.into();
    }
    if let Some(x) = ne(p, "tax_exempt") {
        c["tax_exempt"] = x.into();
    }
    if let Some(l) = p.get("preferred_locales") {
        c["preferred_locales"] = match l {
            Value::Array(_) => l.clone(),
            _ => json!([]),
        };
    }
    if let Some(sh) = p.get("shipping") {
        c["shipping"] = match sh {
            Value::Object(_) => json!({
                "address": address_from(&sh["address"]),
                "name": opt_str(sh, "name"),
                "phone": opt_str(sh, "phone"),
            }),
            _ => Value::Null,
        };
    }
    if let Some(m) = p.get("metadata") {
        c["metadata"] = metadata_merge(&c["metadata"], m);
    }
    if let Some(is) = p.get("invoice_settings").and_then(Value::as_object) {
        if is.contains_key("default_payment_method") {
            c["invoice_settings"]["default_payment_method"] =
                opt_str(&p["invoice_settings"], "default_payment_method");
        }
        if is.contains_key("footer") {
            c["invoice_settings"]["footer"] = opt_str(&p["invoice_settings"], "footer");
        }
    }
}

fn customer_create(st: &mut State, acct: &str, p: &Value) -> ApiResult<Value> {
    check(&spec::CUSTOMER_CREATE, p, "")?;
    if let Some(pm) = p["invoice_settings"]
        .get("default_payment_method")
        .and_then(Value::as_str)
        && !pm.is_empty()
    {
        // A new customer cannot have a payment method attached yet unless `payment_method` attaches it.
        if ne(p, "payment_method") != Some(pm) {
            return Err(ApiError::invalid(
                format!("The customer does not have a payment method with the ID {pm}. The payment method must be attached to the customer."),
                "invoice_settings[default_payment_method]",
            )
            .code("resource_missing"));
        }
    }
    if let Some(pm) = ne(p, "payment_method") {
        let obj = st.get_of(acct, pm, "payment_method").ok_or_else(|| {
            ApiError::invalid(format!("No such PaymentMethod: '{pm}'"), "payment_method")
                .code("resource_missing")
        })?;
        if !obj["customer"].is_null() {
            return Err(ApiError::invalid(
                "The payment method you provided has already been attached to a customer."
                    .to_string(),
                "payment_method",
            ));
        }
    }
    let id = new_id("cus");
    let mut c = json!({
        "address": null,
        "balance": 0,
        "business_name": null,
        "created": st.now(),
        "currency": null,
        "customer_account": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": null,
        "id": id,
        "individual_name": null,
        "invoice_prefix": rid(8).to_uppercase(),
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
    apply_customer_params(&mut c, p);
    st.insert(acct, "customer", c.clone())?;
    st.emit(acct, "customer.created", &c, None)?;
    if let Some(pm) = ne(p, "payment_method") {
        attach_payment_method(st, acct, pm, &id)?;
    }
    Ok(c)
}

fn customer_update(st: &mut State, acct: &str, id: &str, p: &Value) -> ApiResult<Value> {
    check(&spec::CUSTOMER_UPDATE, p, "")?;
    let old = get(st, acct, id, "customer", "customer")?;
    if let Some(pm) = p["invoice_settings"]
        .get("default_payment_method")
        .and_then(Value::as_str)
        && !pm.is_empty()
    {
        check_pm_for_customer(st, acct, id, pm, "invoice_settings[default_payment_method]")?;
    }
    let mut c = old.clone();
    apply_customer_params(&mut c, p);
    if c != old {
        st.put(acct, c.clone())?;
        st.emit(
            acct,
            "customer.updated",
            &c,
            Some(previous_attributes(&old, &c)),
        )?;
    }
    Ok(c)
}

pub fn attach_payment_method(
    st: &mut State,
    acct: &str,
    pm_id: &str,
    cus: &str,
) -> ApiResult<Value> {
    let mut pm = get(st, acct, pm_id, "payment_method", "PaymentMethod")?;
    if st.get_of(acct, cus, "customer").is_none() {
        return Err(
            ApiError::invalid(format!("No such customer: '{cus}'"), "customer")
                .code("resource_missing"),
        );
    }
    if pm["customer"] == cus {
        return Ok(pm);
    }
    if !pm["customer"].is_null() {
        return Err(ApiError::invalid(
            "The payment method you provided has already been attached to a customer.".to_string(),
            "payment_method",
        ));
    }
    pm["customer"] = cus.into();
    st.put(acct, pm.clone())?;
    st.emit(acct, "payment_method.attached", &pm, None)?;
    Ok(pm)
}

fn portal_create(st: &mut State, acct: &str, p: &Value) -> ApiResult<Value> {
    check(&spec::PORTAL_CREATE, p, "")?;
    let cus = ne(p, "customer").ok_or_else(|| ApiError::missing_param("customer"))?;
    if st.get_of(acct, cus, "customer").is_none() {
        return Err(
            ApiError::invalid(format!("No such customer: '{cus}'"), "customer")
                .code("resource_missing"),
        );
    }
    if let Some(u) = ne(p, "return_url") {
        check_url(u, "return_url")?;
    }
    let id = new_id("bps");
    let config = st
        .accounts
        .get(acct)
        .map(|a| {
            format!(
                "bpc_1{}",
                &a.id.trim_start_matches("acct_1")[..]
                    .chars()
                    .take(23)
                    .collect::<String>()
            )
        })
        .unwrap_or_default();
    // The account has one portal configuration, its default; Stripe refuses
    // any other id.
    if let Some(asked) = ne(p, "configuration")
        && asked != config
    {
        return Err(ApiError::invalid(
            format!("No such configuration: '{asked}'"),
            "configuration",
        )
        .code("resource_missing"));
    }
    let obj = json!({
        "configuration": config,
        "created": st.now(),
        "customer": cus,
        "customer_account": null,
        "flow": null,
        "id": id,
        "livemode": false,
        "locale": opt_str(p, "locale"),
        "object": "billing_portal.session",
        "on_behalf_of": opt_str(p, "on_behalf_of"),
        "return_url": opt_str(p, "return_url"),
        "url": format!("{}/p/session/{}", st.public_url, id),
    });
    st.insert(acct, "billing_portal.session", obj.clone())?;
    Ok(obj)
}

pub fn check_url(u: &str, param: &str) -> ApiResult<()> {
    let ok = (u.starts_with("http://") || u.starts_with("https://"))
        && u.split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid("Not a valid URL".to_string(), param).code("url_invalid"))
    }
}

fn check_events(p: &Value) -> ApiResult<()> {
    if let Some(evs) = p.get("enabled_events").and_then(Value::as_array) {
        for (i, e) in evs.iter().enumerate() {
            let e = e.as_str().unwrap_or_default();
            let ok = e == "*"
                || (e.contains('.')
                    && e.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'));
            if !ok {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid enabled_events[{i}]: must be one of the event types Stripe sends, or '*'"
                    ),
                    format!("enabled_events[{i}]"),
                ));
            }
        }
    }
    Ok(())
}

fn webhook_create(st: &mut State, acct: &str, p: &Value) -> ApiResult<Value> {
    check(&spec::WEBHOOK_CREATE, p, "")?;
    let url = ne(p, "url").ok_or_else(|| ApiError::missing_param("url"))?;
    check_url(url, "url")?;
    if p.get("enabled_events")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        return Err(ApiError::missing_param("enabled_events"));
    }
    check_events(p)?;
    let id = new_id("we");
    let secret = format!("whsec_{}", rid(32));
    let obj = json!({
        "api_version": opt_str(p, "api_version"),
        "application": null,
        "created": st.now(),
        "description": opt_str(p, "description"),
        "enabled_events": p["enabled_events"],
        "id": id,
        "livemode": false,
        "metadata": metadata_merge(&json!({}), p.get("metadata").unwrap_or(&Value::Null)),
        "object": "webhook_endpoint",
        "status": "enabled",
        "url": url,
    });
    st.insert(acct, "webhook_endpoint", obj.clone())?;
    st.acct(acct)?.webhook_secrets.insert(id, secret.clone());
    let mut out = obj;
    out["secret"] = secret.into();
    Ok(out)
}

fn webhook_update(st: &mut State, acct: &str, id: &str, p: &Value) -> ApiResult<Value> {
    check(&spec::WEBHOOK_UPDATE, p, "")?;
    let mut we = get(st, acct, id, "webhook_endpoint", "webhook endpoint")?;
    if let Some(u) = p.get("url") {
        let u = u.as_str().unwrap_or_default();
        check_url(u, "url")?;
        we["url"] = u.into();
    }
    if let Some(ev) = p.get("enabled_events") {
        check_events(p)?;
        if ev.as_array().is_none_or(Vec::is_empty) {
            return Err(ApiError::invalid(
                "Invalid array".to_string(),
                "enabled_events",
            ));
        }
        we["enabled_events"] = ev.clone();
    }
    if p.get("description").is_some() {
        we["description"] = opt_str(p, "description");
    }
    if let Some(d) = s(p, "disabled") {
        we["status"] = if d == "true" { "disabled" } else { "enabled" }.into();
    }
    if let Some(m) = p.get("metadata") {
        we["metadata"] = metadata_merge(&we["metadata"], m);
    }
    st.put(acct, we.clone())?;
    Ok(we)
}

/// Expires an open session (API call or clock), cancelling its setup intent, and emits events.
pub fn expire_session(st: &mut State, acct: &str, id: &str) -> ApiResult<Value> {
    let mut cs = get(st, acct, id, "checkout.session", "checkout.session")?;
    cs["status"] = "expired".into();
    cs["client_secret"] = Value::Null;
    cs["url"] = Value::Null;
    st.put(acct, cs.clone())?;
    if let Some(seti_id) = cs["setup_intent"].as_str()
        && let Some(mut si) = st.get_of(acct, seti_id, "setup_intent")
        && si["status"] != "succeeded"
        && si["status"] != "canceled"
    {
        si["status"] = "canceled".into();
        si["cancellation_reason"] = "abandoned".into();
        st.put(acct, si.clone())?;
        st.emit(acct, "setup_intent.canceled", &si, None)?;
    }
    st.emit(acct, "checkout.session.expired", &cs, None)?;
    Ok(cs)
}

/// Card behaviour by Stripe test card number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardOutcome {
    Succeeds,
    Declined,
    RequiresAuthentication,
    Invalid,
}

pub fn card_outcome(number: &str) -> CardOutcome {
    match number {
        "4000000000000002" => CardOutcome::Declined,
        "4000000000009995" => CardOutcome::Declined,
        "4000000000003220" | "4000002500003155" | "4000002760003184" => {
            CardOutcome::RequiresAuthentication
        }
        n if n.len() >= 12 && n.len() <= 19 && n.chars().all(|c| c.is_ascii_digit()) && luhn(n) => {
            CardOutcome::Succeeds
        }
        _ => CardOutcome::Invalid,
    }
}

fn luhn(n: &str) -> bool {
    let sum: u32 = n
        .chars()
        .rev()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn brand(n: &str) -> &'static str {
    match n.as_bytes().first() {
        Some(b'4') => "visa",
        Some(b'5') | Some(b'2') => "mastercard",
        Some(b'3') if n.starts_with("34") || n.starts_with("37") => "amex",
        Some(b'6') => "discover",
        _ => "unknown",
    }
}

/// Card details as entered on the hosted page or sent to the control route.
#[derive(Debug, Clone, Default)]
pub struct CardInput {
    pub number: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub name: Option<String>,
    pub email: Option<String>,
}

pub fn payment_method_object(st: &State, card: &CardInput) -> Value {
    let b = brand(&card.number);
    let last4 = &card.number[card.number.len().saturating_sub(4)..];
    let fp: String = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        card.number.as_bytes(),
    ))
    .chars()
    .take(16)
    .collect();
    json!({
        "allow_redisplay": "always",
        "billing_details": {
            "address": null_address(),
            "email": card.email,
            "name": card.name,
            "phone": null,
            "tax_id": null
        },
        "card": {
            "brand": b,
            "checks": {"address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass"},
            "country": "US",
            "display_brand": b,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": fp,
            "funding": "credit",
            "generated_from": null,
            "last4": last4,
            "networks": {"available": [b], "preferred": null},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": true},
            "wallet": null
        },
        "created": st.now(),
        "customer": null,
        "customer_account": null,
        "id": new_id("pm"),
        "livemode": false,
        "metadata": {},
        "object": "payment_method",
        "type": "card",
    })
}

/// Result of submitting a card for a checkout session.
pub enum Completion {
    Completed(Value),
    Declined(ApiError),
    NeedsAuthentication,
}

/// Submits a card for an open setup-mode session: decline, 3DS step, or completion.
/// `authenticated`: Some(true/false) answers the 3DS challenge for cards that require it.
pub fn submit_card(
    st: &mut State,
    acct: &str,
    cs_id: &str,
    card: &CardInput,
    authenticated: Option<bool>,
) -> ApiResult<Completion> {
    let cs = get(st, acct, cs_id, "checkout.session", "checkout.session")?;
    if cs["status"] != "open" {
        return Err(ApiError::invalid(
            format!(
                "This Checkout Session is no longer active (status: {}).",
                cs["status"].as_str().unwrap_or_default()
            ),
            "session",
        )
        .code("checkout_session_not_open"));
    }
    let seti_id = cs["setup_intent"].as_str().unwrap_or_default().to_string();
    let mut si = get(st, acct, &seti_id, "setup_intent", "setupintent")?;
    let outcome = card_outcome(&card.number);
    if outcome == CardOutcome::Invalid {
        return Err(
            ApiError::new(402, "card_error", "Your card number is incorrect.")
                .code("incorrect_number")
                .with("param", json!("number")),
        );
    }
    let now = st.now();
    let exp_year = if card.exp_year < 100 {
        card.exp_year + 2000
    } else {
        card.exp_year
    };
    let (cy, cm) = year_month(now);
    if !(1..=12).contains(&card.exp_month) {
        return Err(ApiError::new(
            402,
            "card_error",
            "Your card's expiration month is invalid.",
        )
        .code("invalid_expiry_month")
        .with("param", json!("exp_month")));
    }
    if exp_year < cy || (exp_year == cy && card.exp_month < cm) {
        return Err(ApiError::new(
            402,
            "card_error",
            "Your card's expiration year is in the past.",
        )
        .code("invalid_expiry_year")
        .with("param", json!("exp_year")));
    }
    if outcome == CardOutcome::RequiresAuthentication && authenticated.is_none() {
        return Ok(Completion::NeedsAuthentication);
    }
    let mut card = card.clone();
    card.exp_year = exp_year;
    let mut pm = payment_method_object(st, &card);
    let failure = match (outcome, authenticated) {
        (CardOutcome::Declined, _) => Some(
            ApiError::new(402, "card_error", "Your card was declined.")
                .code("card_declined")
                .with("decline_code", json!("generic_decline")),
        ),
        (CardOutcome::RequiresAuthentication, Some(false)) => Some(
            ApiError::new(
                402,
                "invalid_request_error",
                "We are unable to authenticate your payment method. Please choose a different payment method and try again.",
            )
            .code("setup_intent_authentication_failure"),
        ),
        _ => None,
    };
    if let Some(mut err) = failure {
        st.insert(acct, "payment_method", pm.clone())?;
        let mut lse = Map::new();
        if let Some(c) = &err.code {
            lse.insert("code".into(), json!(c));
            lse.insert(
                "doc_url".into(),
                json!(format!(
                    "https://stripe.com/docs/error-codes/{}",
                    c.replace('_', "-")
                )),
            );
        }
        if let Some(dc) = err.extra.get("decline_code") {
            lse.insert("decline_code".into(), dc.clone());
        }
        lse.insert("message".into(), json!(err.message));
        lse.insert("payment_method".into(), pm.clone());
        lse.insert("type".into(), json!(err.kind));
        si["last_setup_error"] = Value::Object(lse);
        si["status"] = "requires_payment_method".into();
        si["payment_method"] = Value::Null;
        st.put(acct, si.clone())?;
        st.emit(acct, "setup_intent.setup_failed", &si, None)?;
        err = err.with("setup_intent", si);
        return Ok(Completion::Declined(err));
    }
    let mut customer = cs["customer"].as_str().map(str::to_string);
    if customer.is_none() && cs["customer_creation"] == "always" {
        // `customer_creation=always`: Checkout creates the Customer on confirmation.
        let mut params = Map::new();
        if let Some(e) = card
            .email
            .clone()
            .or_else(|| cs["customer_email"].as_str().map(str::to_string))
        {
            params.insert("email".into(), e.into());
        }
        if let Some(n) = &card.name {
            params.insert("name".into(), n.clone().into());
        }
        let created = customer_create(st, acct, &Value::Object(params))?;
        customer = created["id"].as_str().map(str::to_string);
        si["customer"] = created["id"].clone();
    }
    st.insert(acct, "payment_method", pm.clone())?;
    if let Some(c) = &customer {
        pm = attach_payment_method(st, acct, pm["id"].as_str().unwrap_or_default(), c)?;
    }
    si["status"] = "succeeded".into();
    si["payment_method"] = pm["id"].clone();
    si["last_setup_error"] = Value::Null;
    si["latest_attempt"] = json!(new_id("setatt"));
    st.put(acct, si.clone())?;
    st.emit(acct, "setup_intent.succeeded", &si, None)?;
    let mut done = cs.clone();
    if let Some(c) = &customer {
        done["customer"] = c.as_str().into();
    }
    done["status"] = "complete".into();
    done["client_secret"] = Value::Null;
    done["url"] = Value::Null;
    let cus_obj = customer
        .as_deref()
        .and_then(|c| st.get_of(acct, c, "customer"));
    let email = card
        .email
        .clone()
        .or_else(|| cs["customer_email"].as_str().map(str::to_string))
        .or_else(|| {
            cus_obj
                .as_ref()
                .and_then(|c| c["email"].as_str().map(str::to_string))
        });
    done["customer_details"] = json!({
        "address": null,
        "business_name": null,
        "email": email,
        "individual_name": null,
        "name": card.name,
        "phone": null,
        "tax_exempt": "none",
        "tax_ids": [],
    });
    st.put(acct, done.clone())?;
    st.emit(acct, "checkout.session.completed", &done, None)?;
    Ok(Completion::Completed(done))
}

/// (year, month) of a Unix timestamp (UTC).
pub fn year_month(ts: i64) -> (i64, i64) {
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = ts.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m)
}
