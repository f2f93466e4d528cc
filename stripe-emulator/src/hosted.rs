//! The hosted checkout page (`url` of `hosted_page` sessions) and the billing portal page.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use crate::Shared;
use crate::api::{account_of, redirect_url};
use crate::cards::{BillingAddress, CardInput};
use crate::resources::checkout_sessions::{Completion, submit_card};

type Ctx = Arc<Shared>;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/c/pay/{id}", get(page).post(submit))
        .route(
            "/c/pay/{id}/authenticate",
            axum::routing::post(authenticate),
        )
        .route("/p/session/{id}", get(portal))
}

/// `text` escaped for HTML text and attribute values.
pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub(crate) fn layout(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0}}
main{{max-width:420px;margin:48px auto;background:#fff;border-radius:8px;box-shadow:0 2px 8px rgba(0,0,0,.08);padding:32px}}
label{{display:block;font-size:14px;margin:14px 0 4px}} input{{width:100%;box-sizing:border-box;padding:10px;border:1px solid #ccd;border-radius:6px;font-size:16px}}
.row{{display:flex;gap:12px}} .row>div{{flex:1}}
button{{margin-top:20px;width:100%;padding:12px;border:0;border-radius:6px;background:#635bff;color:#fff;font-size:16px;cursor:pointer}}
button.secondary{{background:#e3e8ee;color:#1a1f36}}
.error{{background:#fde8e8;color:#9b1c1c;padding:10px;border-radius:6px;margin-top:12px}}
.note{{font-size:12px;color:#697386;margin-top:18px}} .badge{{font-size:12px;background:#ffde92;padding:2px 6px;border-radius:4px}}
</style></head><body><main>
<p><span class="badge">TEST MODE · Stripe emulator</span></p>
{body}
</main></body></html>"#
    )
}

/// The hosted session `id` and its account.
fn find(ctx: &Shared, id: &str) -> Option<(String, Value)> {
    let account = account_of(ctx, id)?;
    let mut state = ctx.lock();
    state.current_request = None;
    state.sweep_expired();
    let session = state.object_of_type(&account, id, "checkout.session")?;
    // Only hosted sessions have a page; embedded ones are completed by Stripe.js (here: the control route).
    (session["ui_mode"] == "hosted_page").then_some((account, session))
}

pub(crate) fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(layout(
            "Not found",
            "<h1>Something went wrong</h1><p>The page you were looking for could not be found.</p>",
        )),
    )
        .into_response()
}

fn inactive(session: &Value) -> Response {
    let status = session["status"].as_str().unwrap_or_default();
    let msg = if status == "complete" {
        "<h1 id=\"status\" data-status=\"complete\">Setup complete</h1><p>Your payment method has been saved. You can close this page.</p>"
    } else {
        "<h1 id=\"status\" data-status=\"expired\">This Checkout Session is no longer active</h1><p>The session has expired. Please return to the merchant and try again.</p>"
    };
    Html(layout("Checkout", msg)).into_response()
}

fn form_page(session: &Value, error: Option<&str>) -> Response {
    let id = session["id"].as_str().unwrap_or_default();
    let submit_text = session["custom_text"]["submit"]["message"]
        .as_str()
        .map(esc)
        .unwrap_or_default();
    let email_field = if session["customer"].is_null() && session["customer_email"].is_null() {
        r#"<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="email">"#
    } else {
        ""
    };
    let email_shown = session["customer_email"]
        .as_str()
        .map(|email| format!("<p>{}</p>", esc(email)))
        .unwrap_or_default();
    let cancel = session["cancel_url"]
        .as_str()
        .map(|url| {
            format!(
                r#"<p class="note"><a id="cancel" href="{}">← Cancel and return</a></p>"#,
                esc(url)
            )
        })
        .unwrap_or_default();
    let address_fields = if session["billing_address_collection"] == "required" {
        r#"<fieldset id="billing-address"><legend>Billing address</legend>
<label for="addressLine1">Address</label><input id="addressLine1" name="address_line1" autocomplete="address-line1" required>
<label for="addressLine2">Address line 2 (optional)</label><input id="addressLine2" name="address_line2" autocomplete="address-line2">
<div class="row"><div><label for="addressPostalCode">Postal code</label><input id="addressPostalCode" name="address_postal_code" autocomplete="postal-code"></div>
<div><label for="addressCity">City</label><input id="addressCity" name="address_city" autocomplete="address-level2"></div></div>
<label for="addressState">State or region (optional)</label><input id="addressState" name="address_state" autocomplete="address-level1">
<label for="addressCountry">Country (two letters, e.g. US)</label><input id="addressCountry" name="address_country" autocomplete="country" maxlength="2" required>
</fieldset>"#
    } else {
        ""
    };
    let error_box = error
        .map(|message| {
            format!(
                r#"<div class="error" id="error" role="alert">{}</div>"#,
                esc(message)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<h1>Set up a payment method</h1>
{email_shown}
<form method="post" action="/c/pay/{id}" id="payment-form">
{email_field}
<label for="cardNumber">Card number</label><input id="cardNumber" name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234" required>
<div class="row"><div><label for="cardExpiry">Expiration</label><input id="cardExpiry" name="exp" autocomplete="cc-exp" placeholder="MM / YY" required></div>
<div><label for="cardCvc">CVC</label><input id="cardCvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC" required></div></div>
<label for="billingName">Cardholder name</label><input id="billingName" name="name" autocomplete="cc-name" required>
{address_fields}
{error_box}
<button type="submit" id="submit">Save card</button>
{}
</form>
{cancel}
<p class="note">Test cards: 4242 4242 4242 4242 succeeds · 4000 0000 0000 0002 is declined · 4000 0000 0000 3220 requires authentication. Any future date and any CVC.</p>"#,
        if submit_text.is_empty() {
            String::new()
        } else {
            format!("<p class=\"note\">{submit_text}</p>")
        }
    );
    Html(layout("Checkout", &body)).into_response()
}

async fn page(AxState(ctx): AxState<Ctx>, Path(id): Path<String>) -> Response {
    match find(&ctx, &id) {
        None => not_found(),
        Some((_, session)) if session["status"] != "open" => inactive(&session),
        Some((_, session)) => form_page(&session, None),
    }
}

pub(crate) fn parse_form(body: &[u8]) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// `MM / YY`, `MM/YYYY`, `MMYY` or `MMYYYY` as (month, year); (0, 0) when unreadable.
fn parse_exp(expiry: &str) -> (i64, i64) {
    let digits: Vec<&str> = expiry
        .split(|c: char| !c.is_ascii_digit())
        .filter(|group| !group.is_empty())
        .collect();
    match digits.as_slice() {
        [month, year] => (month.parse().unwrap_or(0), year.parse().unwrap_or(0)),
        [month_year] if month_year.len() == 4 || month_year.len() == 6 => (
            month_year[..2].parse().unwrap_or(0),
            month_year[2..].parse().unwrap_or(0),
        ),
        _ => (0, 0),
    }
}

pub(crate) fn card_from(form: &std::collections::HashMap<String, String>) -> CardInput {
    let (exp_month, exp_year) = match (form.get("exp_month"), form.get("exp_year")) {
        (Some(month), Some(year)) => (
            month.trim().parse().unwrap_or(0),
            year.trim().parse().unwrap_or(0),
        ),
        _ => parse_exp(form.get("exp").map(String::as_str).unwrap_or_default()),
    };
    let field = |name: &str| {
        form.get(name)
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
    };
    CardInput {
        number: form
            .get("card_number")
            .map(|number| number.chars().filter(char::is_ascii_digit).collect())
            .unwrap_or_default(),
        exp_month,
        exp_year,
        name: field("name"),
        email: field("email"),
        address: Some(BillingAddress {
            line1: field("address_line1"),
            line2: field("address_line2"),
            city: field("address_city"),
            postal_code: field("address_postal_code"),
            state: field("address_state"),
            country: field("address_country").map(|c| c.to_ascii_uppercase()),
        })
        .filter(|address| *address != BillingAddress::default()),
    }
}

fn finish(
    ctx: &Shared,
    account: &str,
    id: &str,
    card: &CardInput,
    authenticated: Option<bool>,
) -> Response {
    let result = {
        let mut state = ctx.lock();
        state.current_request = None;
        state.touch();
        submit_card(&mut state, account, id, card, authenticated)
    };
    match result {
        Err(error) => match find(ctx, id) {
            Some((_, session)) if session["status"] == "open" => {
                let mut response = form_page(&session, Some(&error.message));
                *response.status_mut() =
                    StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
                response
            }
            Some((_, session)) => inactive(&session),
            None => not_found(),
        },
        Ok(Completion::Declined(error)) => match find(ctx, id) {
            Some((_, session)) => {
                let mut response = form_page(&session, Some(&error.message));
                *response.status_mut() = StatusCode::PAYMENT_REQUIRED;
                response
            }
            None => not_found(),
        },
        Ok(Completion::NeedsAuthentication) => {
            let hidden = |name: &str, value: &str| {
                format!(
                    r#"<input type="hidden" name="{name}" value="{}">"#,
                    esc(value)
                )
            };
            let fields = [
                hidden("card_number", &card.number),
                hidden("exp_month", &card.exp_month.to_string()),
                hidden("exp_year", &card.exp_year.to_string()),
                hidden("name", card.name.as_deref().unwrap_or_default()),
                hidden("email", card.email.as_deref().unwrap_or_default()),
            ]
            .join("");
            let address = card.address.clone().unwrap_or_default();
            let fields = fields
                + &[
                    hidden(
                        "address_line1",
                        address.line1.as_deref().unwrap_or_default(),
                    ),
                    hidden(
                        "address_line2",
                        address.line2.as_deref().unwrap_or_default(),
                    ),
                    hidden("address_city", address.city.as_deref().unwrap_or_default()),
                    hidden(
                        "address_postal_code",
                        address.postal_code.as_deref().unwrap_or_default(),
                    ),
                    hidden(
                        "address_state",
                        address.state.as_deref().unwrap_or_default(),
                    ),
                    hidden(
                        "address_country",
                        address.country.as_deref().unwrap_or_default(),
                    ),
                ]
                .join("");
            let body = format!(
                r#"<h1 id="three-d-secure">Authenticate your card</h1>
<p>Your bank requires you to confirm this card (3D Secure test page).</p>
<form method="post" action="/c/pay/{id}/authenticate">{fields}<input type="hidden" name="action" value="complete"><button type="submit" id="complete-auth">Complete authentication</button></form>
<form method="post" action="/c/pay/{id}/authenticate">{fields}<input type="hidden" name="action" value="fail"><button type="submit" class="secondary" id="fail-auth">Fail authentication</button></form>"#
            );
            Html(layout("Authenticate", &body)).into_response()
        }
        Ok(Completion::Completed(session)) => match redirect_url(&session) {
            Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
            None => inactive(&session),
        },
    }
}

async fn submit(AxState(ctx): AxState<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some((account, session)) = find(&ctx, &id) else {
        return not_found();
    };
    if session["status"] != "open" {
        return inactive(&session);
    }
    let form = parse_form(&body);
    let cvc = form.get("cvc").map(|cvc| cvc.trim()).unwrap_or_default();
    if !(3..=4).contains(&cvc.len()) || !cvc.chars().all(|c| c.is_ascii_digit()) {
        let mut response = form_page(&session, Some("Your card's security code is incomplete."));
        *response.status_mut() = StatusCode::PAYMENT_REQUIRED;
        return response;
    }
    let card = card_from(&form);
    finish(&ctx, &account, &id, &card, None)
}

async fn authenticate(AxState(ctx): AxState<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some((account, session)) = find(&ctx, &id) else {
        return not_found();
    };
    if session["status"] != "open" {
        return inactive(&session);
    }
    let form = parse_form(&body);
    let card = card_from(&form);
    let completed = form.get("action").map(String::as_str) == Some("complete");
    finish(&ctx, &account, &id, &card, Some(completed))
}

async fn portal(AxState(ctx): AxState<Ctx>, Path(id): Path<String>) -> Response {
    let Some(account) = account_of(&ctx, &id) else {
        return not_found();
    };
    let state = ctx.lock();
    let Some(portal_session) = state.object_of_type(&account, &id, "billing_portal.session") else {
        return not_found();
    };
    let customer = portal_session["customer"].as_str().unwrap_or_default();
    let payment_methods: Vec<String> = state
        .accounts
        .get(&account)
        .map(|stored| {
            let no_ids = Vec::new();
            stored
                .lists
                .get("payment_method")
                .unwrap_or(&no_ids)
                .iter()
                .filter_map(|id| stored.objects.get(id).map(|text| text.value()))
                .filter(|object| {
                    object["object"] == "payment_method" && object["customer"] == customer
                })
                .map(|payment_method| {
                    let card = &payment_method["card"];
                    format!(
                        "<li>{} •••• {} (exp {}/{})</li>",
                        esc(card["brand"].as_str().unwrap_or_default()),
                        esc(card["last4"].as_str().unwrap_or_default()),
                        card["exp_month"],
                        card["exp_year"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let back = portal_session["return_url"]
        .as_str()
        .map(|url| format!(r#"<p><a id="return" href="{}">← Return</a></p>"#, esc(url)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Billing portal</h1><p>Customer <code>{}</code></p><h2>Payment methods</h2><ul id=\"payment-methods\">{}</ul>{back}",
        esc(customer),
        if payment_methods.is_empty() {
            "<li>None</li>".to_string()
        } else {
            payment_methods.join("")
        }
    );
    Html(layout("Billing portal", &body)).into_response()
}
