//! The hosted checkout page (`url` of `hosted_page` sessions) and the billing portal page.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use std::collections::HashMap;

use crate::Shared;
use crate::api::{account_of, redirect_url};
use crate::cards::{BillingAddress, CardInput};
use crate::error::ApiError;
use crate::resources::account::ACCOUNT_NAME;
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

/// Every hosted page: the merchant's name and a test-mode badge on top, a
/// footer saying what this is. Plain HTML and CSS; no JavaScript.
pub(crate) fn layout(title: &str, body: &str) -> String {
    let merchant = ACCOUNT_NAME;
    let initial = merchant
        .chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {merchant}</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0;line-height:1.4}}
main{{max-width:440px;margin:32px auto 16px;background:#fff;border-radius:10px;box-shadow:0 2px 10px rgba(50,50,93,.1);padding:28px 32px}}
header.top{{display:flex;align-items:center;justify-content:space-between;gap:12px;padding-bottom:18px;margin-bottom:20px;border-bottom:1px solid #e3e8ee}}
.merchant{{display:flex;align-items:center;gap:10px;font-weight:600;font-size:15px}}
.logo{{width:30px;height:30px;border-radius:50%;background:#635bff;color:#fff;display:inline-flex;align-items:center;justify-content:center;font-weight:700}}
.badge{{font-size:11px;font-weight:700;letter-spacing:.05em;text-transform:uppercase;background:#ffde92;color:#7a4d00;padding:3px 8px;border-radius:4px;white-space:nowrap}}
h1{{font-size:22px;margin:0 0 6px}} h2{{font-size:17px;margin:22px 0 8px}}
.lead{{color:#4f566b;margin:0 0 18px}}
.summary{{background:#f6f9fc;border:1px solid #e3e8ee;border-radius:8px;padding:12px 14px;margin:0 0 6px;font-size:14px;display:grid;grid-template-columns:auto 1fr;gap:4px 14px}}
.summary dt{{color:#697386}} .summary dd{{margin:0;font-weight:500;overflow-wrap:anywhere}}
label{{display:block;font-size:14px;font-weight:500;margin:14px 0 4px}}
input{{width:100%;box-sizing:border-box;padding:10px;border:1px solid #cfd7df;border-radius:6px;font-size:16px;background:#fff}}
input:focus{{outline:2px solid #a4b3ff;border-color:#635bff}}
input[aria-invalid="true"]{{border-color:#df1b41;box-shadow:0 0 0 1px #df1b41}}
fieldset{{border:0;padding:0;margin:14px 0 0}} legend{{font-weight:600;font-size:15px;padding:0}}
.row{{display:flex;gap:12px}} .row>div{{flex:1}}
button{{margin-top:20px;width:100%;padding:12px;border:0;border-radius:6px;background:#635bff;color:#fff;font-size:16px;font-weight:600;cursor:pointer}}
button.secondary{{background:#e3e8ee;color:#1a1f36}}
.field-error{{color:#df1b41;font-size:13px;margin:5px 0 0}}
.error{{background:#fde8e8;color:#9b1c1c;border:1px solid #f5c2c2;padding:10px 12px;border-radius:6px;margin:4px 0 6px;font-size:14px}}
.success{{background:#e6f7ec;color:#0e6245;border:1px solid #b7e4c7;padding:12px;border-radius:6px;font-weight:500}}
.note{{font-size:12px;color:#697386;margin-top:16px}}
.testcards{{font-size:12px;color:#7a4d00;background:#fff8e6;border:1px dashed #f0c36d;border-radius:6px;padding:8px 10px;margin-top:18px}}
table.lines{{width:100%;border-collapse:collapse;font-size:14px;margin:8px 0 4px}}
table.lines th{{text-align:left;color:#697386;font-weight:500;border-bottom:1px solid #e3e8ee;padding:6px 0}}
table.lines td{{padding:8px 0;border-bottom:1px solid #f0f3f7;vertical-align:top}}
.num{{text-align:right;white-space:nowrap;padding-left:12px}} table.lines th.num{{text-align:right}}
.totals{{width:100%;font-size:14px;margin:6px 0 0}} .totals td{{padding:3px 0}} .totals tr.due td{{font-weight:700;font-size:16px;padding-top:8px}}
.pill{{display:inline-block;font-size:12px;font-weight:600;padding:2px 9px;border-radius:10px;background:#e3e8ee;color:#3c4257;text-transform:capitalize;vertical-align:middle}}
.pill[data-status="paid"],.pill[data-status="complete"]{{background:#cbf4c9;color:#0e6245}} .pill[data-status="open"]{{background:#d6ecff;color:#3d4eac}}
.pill[data-status="void"],.pill[data-status="uncollectible"],.pill[data-status="expired"]{{background:#ffe7f2;color:#a41c4e}}
footer{{max-width:440px;margin:0 auto 32px;text-align:center;color:#8792a2;font-size:12px}}
a{{color:#635bff}}
</style></head><body><main>
<header class="top"><span class="merchant"><span class="logo" aria-hidden="true">{initial}</span><span id="merchant-name">{merchant_text}</span></span><span class="badge" id="test-mode">Test mode</span></header>
{body}
</main>
<footer>A page of the Stripe emulator: test data only, no real card is charged.</footer></body></html>"#,
        title = esc(title),
        merchant = esc(merchant),
        initial = esc(&initial),
        merchant_text = esc(merchant),
    )
}

/// An error shown on a card form: under its field, or above the fields when
/// it concerns the card as a whole (a decline).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FormError<'a> {
    pub message: &'a str,
    /// The id of the input it concerns.
    pub field: Option<&'static str>,
}

impl<'a> FormError<'a> {
    /// The field of a Stripe card error, by its `param` or `code`.
    pub(crate) fn of(error: &'a ApiError) -> FormError<'a> {
        let param = error
            .param
            .as_deref()
            .or_else(|| error.extra.get("param").and_then(Value::as_str));
        let field = match (error.code.as_deref(), param) {
            (_, Some("number")) | (Some("incorrect_number" | "invalid_number"), _) => {
                Some("cardNumber")
            }
            (_, Some("exp_month" | "exp_year"))
            | (Some("invalid_expiry_month" | "invalid_expiry_year"), _) => Some("cardExpiry"),
            (_, Some("cvc")) | (Some("invalid_cvc" | "incorrect_cvc"), _) => Some("cardCvc"),
            _ => None,
        };
        FormError {
            message: &error.message,
            field,
        }
    }
}

/// The box above the fields for an error of the whole card.
pub(crate) fn form_error(error: Option<FormError>) -> String {
    match error {
        Some(FormError {
            message,
            field: None,
        }) => format!(
            r#"<div class="error" id="error" role="alert">{}</div>"#,
            esc(message)
        ),
        _ => String::new(),
    }
}

/// A labelled input; with its error underneath when `error` is about it.
/// `value` is what the customer typed (never for the card number or CVC).
pub(crate) fn input(
    id: &'static str,
    name: &str,
    label: &str,
    attributes: &str,
    value: Option<&str>,
    error: Option<FormError>,
) -> String {
    let value = value
        .filter(|value| !value.is_empty())
        .map(|value| format!(r#" value="{}""#, esc(value)))
        .unwrap_or_default();
    match error {
        Some(FormError {
            message,
            field: Some(field),
        }) if field == id => format!(
            r#"<label for="{id}">{label}</label><input id="{id}" name="{name}" {attributes}{value} aria-invalid="true" aria-describedby="error"><p class="field-error" id="error" role="alert">{}</p>"#,
            esc(message)
        ),
        _ => format!(
            r#"<label for="{id}">{label}</label><input id="{id}" name="{name}" {attributes}{value}>"#
        ),
    }
}

/// Card number, expiry, CVC and cardholder name, with their errors.
pub(crate) fn card_fields(entered: &HashMap<String, String>, error: Option<FormError>) -> String {
    let value = |name: &str| entered.get(name).map(String::as_str);
    format!(
        r#"{number}
<div class="row"><div>{expiry}</div><div>{cvc}</div></div>
{name}"#,
        number = input(
            "cardNumber",
            "card_number",
            "Card number",
            r#"inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234" required"#,
            None,
            error,
        ),
        expiry = input(
            "cardExpiry",
            "exp",
            "Expiration",
            r#"autocomplete="cc-exp" placeholder="MM / YY" required"#,
            value("exp"),
            error,
        ),
        cvc = input(
            "cardCvc",
            "cvc",
            "CVC",
            r#"inputmode="numeric" autocomplete="cc-csc" placeholder="CVC" maxlength="4" required"#,
            None,
            error,
        ),
        name = input(
            "billingName",
            "name",
            "Name on card",
            r#"autocomplete="cc-name" required"#,
            value("name"),
            error,
        ),
    )
}

/// What the customer typed, to show again with an error (no card number, no CVC).
pub(crate) fn entered_from(card: &CardInput) -> HashMap<String, String> {
    let mut entered = HashMap::new();
    if card.exp_month > 0 || card.exp_year > 0 {
        entered.insert(
            "exp".to_owned(),
            format!("{:02} / {:02}", card.exp_month, card.exp_year % 100),
        );
    }
    let mut put = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            entered.insert(key.to_owned(), value.clone());
        }
    };
    put("name", &card.name);
    put("email", &card.email);
    if let Some(address) = &card.address {
        put("address_line1", &address.line1);
        put("address_line2", &address.line2);
        put("address_city", &address.city);
        put("address_postal_code", &address.postal_code);
        put("address_state", &address.state);
        put("address_country", &address.country);
    }
    entered
}

/// Unix seconds as `2026-03-31` (UTC).
pub(crate) fn date(unix: i64) -> String {
    // Howard Hinnant's civil-from-days.
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
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
        r#"<h1 id="status" data-status="complete">Setup complete</h1><p class="success">Your card has been saved. You can close this page.</p>"#
    } else {
        r#"<h1 id="status" data-status="expired">This Checkout Session is no longer active</h1><p class="lead">The session has expired. Please return to the merchant and try again.</p>"#
    };
    Html(layout("Checkout", msg)).into_response()
}

/// The customer a session is for, as the page shows them: name and email.
fn customer_line(ctx: &Shared, account: &str, session: &Value) -> Option<String> {
    let customer = session["customer"].as_str().and_then(|id| {
        let state = ctx.lock();
        state.object_of_type(account, id, "customer")
    });
    let name = customer
        .as_ref()
        .and_then(|customer| customer["name"].as_str())
        .filter(|name| !name.is_empty());
    let email = customer
        .as_ref()
        .and_then(|customer| customer["email"].as_str())
        .or_else(|| session["customer_email"].as_str())
        .filter(|email| !email.is_empty());
    match (name, email) {
        (Some(name), Some(email)) => Some(format!("{} · {}", esc(name), esc(email))),
        (Some(one), None) | (None, Some(one)) => Some(esc(one)),
        (None, None) => None,
    }
}

/// The checkout form: who is asking, for what, the card fields (with what
/// was typed and the error, if any).
fn form_page(
    ctx: &Shared,
    account: &str,
    session: &Value,
    entered: &HashMap<String, String>,
    error: Option<FormError>,
) -> Response {
    let id = session["id"].as_str().unwrap_or_default();
    let value = |name: &str| entered.get(name).map(String::as_str);
    let submit_text = session["custom_text"]["submit"]["message"]
        .as_str()
        .map(esc)
        .unwrap_or_default();
    let email_field = if session["customer"].is_null() && session["customer_email"].is_null() {
        input(
            "email",
            "email",
            "Email",
            r#"type="email" autocomplete="email" required"#,
            value("email"),
            error,
        )
    } else {
        String::new()
    };
    let merchant = esc(ACCOUNT_NAME);
    let currency = session["currency"]
        .as_str()
        .map(|currency| format!(" in {}", esc(&currency.to_ascii_uppercase())))
        .unwrap_or_default();
    let customer = customer_line(ctx, account, session)
        .map(|line| format!(r#"<dt>Customer</dt><dd id="customer">{line}</dd>"#))
        .unwrap_or_default();
    let cancel = session["cancel_url"]
        .as_str()
        .map(|url| {
            format!(
                r#"<p class="note"><a id="cancel" href="{}">← Cancel and return to {merchant}</a></p>"#,
                esc(url)
            )
        })
        .unwrap_or_default();
    let address_fields = if session["billing_address_collection"] == "required" {
        let field = |id: &'static str, name: &str, label: &str, attributes: &str| {
            input(id, name, label, attributes, value(name), error)
        };
        format!(
            r#"<fieldset id="billing-address"><legend>Billing address</legend>
{}
{}
<div class="row"><div>{}</div><div>{}</div></div>
{}
{}
</fieldset>"#,
            field(
                "addressLine1",
                "address_line1",
                "Address",
                r#"autocomplete="address-line1" required"#
            ),
            field(
                "addressLine2",
                "address_line2",
                "Address line 2 (optional)",
                r#"autocomplete="address-line2""#
            ),
            field(
                "addressPostalCode",
                "address_postal_code",
                "Postal code",
                r#"autocomplete="postal-code""#
            ),
            field(
                "addressCity",
                "address_city",
                "City",
                r#"autocomplete="address-level2""#
            ),
            field(
                "addressState",
                "address_state",
                "State or region (optional)",
                r#"autocomplete="address-level1""#
            ),
            field(
                "addressCountry",
                "address_country",
                "Country (two letters, e.g. US)",
                r#"autocomplete="country" maxlength="2" required"#
            ),
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"<h1>Save a card for future payments</h1>
<p class="lead">{merchant} will keep this card on file and charge it for your future invoices{currency}. You will not be charged now.</p>
<dl class="summary">{customer}<dt>Setting up</dt><dd id="setting-up">A card for future payments{currency}</dd></dl>
<form method="post" action="/c/pay/{id}" id="payment-form" novalidate>
{form_error}
{email_field}
{card_fields}
{address_fields}
<button type="submit" id="submit">Save card</button>
{submit_note}
</form>
<p class="note">By saving your card you allow {merchant} to charge it for future payments in line with their terms.</p>
{cancel}
<p class="testcards">Test mode: 4242 4242 4242 4242 is saved · 4000 0000 0000 0002 is declined · 4000 0000 0000 3220 asks for authentication. Any future date and any CVC.</p>"#,
        form_error = form_error(error),
        card_fields = card_fields(entered, error),
        submit_note = if submit_text.is_empty() {
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
        Some((account, session)) => form_page(&ctx, &account, &session, &HashMap::new(), None),
    }
}

pub(crate) fn parse_form(body: &[u8]) -> HashMap<String, String> {
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

pub(crate) fn card_from(form: &HashMap<String, String>) -> CardInput {
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
                let mut response = form_page(
                    ctx,
                    account,
                    &session,
                    &entered_from(card),
                    Some(FormError::of(&error)),
                );
                *response.status_mut() =
                    StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST);
                response
            }
            Some((_, session)) => inactive(&session),
            None => not_found(),
        },
        Ok(Completion::Declined(error)) => match find(ctx, id) {
            Some((_, session)) => {
                let mut response = form_page(
                    ctx,
                    account,
                    &session,
                    &entered_from(card),
                    Some(FormError {
                        message: &error.message,
                        field: None,
                    }),
                );
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
<p class="lead">Your bank asks you to confirm that you are saving this card with {} (a 3D Secure test page).</p>
<form method="post" action="/c/pay/{id}/authenticate">{fields}<input type="hidden" name="action" value="complete"><button type="submit" id="complete-auth">Complete authentication</button></form>
<form method="post" action="/c/pay/{id}/authenticate">{fields}<input type="hidden" name="action" value="fail"><button type="submit" class="secondary" id="fail-auth">Fail authentication</button></form>"#,
                esc(ACCOUNT_NAME)
            );
            Html(layout("Authenticate", &body)).into_response()
        }
        Ok(Completion::Completed(session)) => match redirect_url(&session) {
            Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
            None => inactive(&session),
        },
    }
}

/// The error of a CVC that is not 3 or 4 digits.
pub(crate) const CVC_INCOMPLETE: FormError<'static> = FormError {
    message: "Your card's security code is incomplete.",
    field: Some("cardCvc"),
};

pub(crate) fn cvc_complete(form: &HashMap<String, String>) -> bool {
    let cvc = form.get("cvc").map(|cvc| cvc.trim()).unwrap_or_default();
    (3..=4).contains(&cvc.len()) && cvc.chars().all(|c| c.is_ascii_digit())
}

async fn submit(AxState(ctx): AxState<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some((account, session)) = find(&ctx, &id) else {
        return not_found();
    };
    if session["status"] != "open" {
        return inactive(&session);
    }
    let form = parse_form(&body);
    let card = card_from(&form);
    if !cvc_complete(&form) {
        let mut response = form_page(
            &ctx,
            &account,
            &session,
            &entered_from(&card),
            Some(CVC_INCOMPLETE),
        );
        *response.status_mut() = StatusCode::PAYMENT_REQUIRED;
        return response;
    }
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
