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
use crate::logic::{CardInput, Completion, submit_card};

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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn layout(title: &str, body: &str) -> String {
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

fn find(ctx: &Shared, id: &str) -> Option<(String, Value)> {
    let acct = account_of(ctx, id)?;
    let mut st = ctx.lock();
    st.current_request = None;
    st.sweep_expired();
    let cs = st.get_of(&acct, id, "checkout.session")?;
    // Only hosted sessions have a page; embedded ones are completed by Stripe.js (here: the control route).
    (cs["ui_mode"] == "hosted_page").then_some((acct, cs))
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(layout(
            "Not found",
            "<h1>Something went wrong</h1><p>The page you were looking for could not be found.</p>",
        )),
    )
        .into_response()
}

fn inactive(cs: &Value) -> Response {
    let status = cs["status"].as_str().unwrap_or_default();
    let msg = if status == "complete" {
        "<h1 id=\"status\" data-status=\"complete\">Setup complete</h1><p>Your payment method has been saved. You can close this page.</p>"
    } else {
        "<h1 id=\"status\" data-status=\"expired\">This Checkout Session is no longer active</h1><p>The session has expired. Please return to the merchant and try again.</p>"
    };
    Html(layout("Checkout", msg)).into_response()
}

fn form_page(cs: &Value, error: Option<&str>) -> Response {
    let id = cs["id"].as_str().unwrap_or_default();
    let submit_text = cs["custom_text"]["submit"]["message"]
        .as_str()
        .map(esc)
        .unwrap_or_default();
    let email_field = if cs["customer"].is_null() && cs["customer_email"].is_null() {
        r#"<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="email">"#
    } else {
        ""
    };
    let email_shown = cs["customer_email"]
        .as_str()
        .map(|e| format!("<p>{}</p>", esc(e)))
        .unwrap_or_default();
    let cancel = cs["cancel_url"]
        .as_str()
        .map(|u| {
            format!(
                r#"<p class="note"><a id="cancel" href="{}">← Cancel and return</a></p>"#,
                esc(u)
            )
        })
        .unwrap_or_default();
    let err = error
        .map(|e| {
            format!(
                r#"<div class="error" id="error" role="alert">{}</div>"#,
                esc(e)
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
{err}
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
        Some((_, cs)) if cs["status"] != "open" => inactive(&cs),
        Some((_, cs)) => form_page(&cs, None),
    }
}

fn parse_form(body: &[u8]) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn parse_exp(s: &str) -> (i64, i64) {
    let digits: Vec<&str> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|x| !x.is_empty())
        .collect();
    match digits.as_slice() {
        [m, y] => (m.parse().unwrap_or(0), y.parse().unwrap_or(0)),
        [my] if my.len() == 4 => (my[..2].parse().unwrap_or(0), my[2..].parse().unwrap_or(0)),
        [my] if my.len() == 6 => (my[..2].parse().unwrap_or(0), my[2..].parse().unwrap_or(0)),
        _ => (0, 0),
    }
}

fn card_from(f: &std::collections::HashMap<String, String>) -> CardInput {
    let (exp_month, exp_year) = match (f.get("exp_month"), f.get("exp_year")) {
        (Some(m), Some(y)) => (m.trim().parse().unwrap_or(0), y.trim().parse().unwrap_or(0)),
        _ => parse_exp(f.get("exp").map(String::as_str).unwrap_or_default()),
    };
    let opt = |k: &str| {
        f.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    CardInput {
        number: f
            .get("card_number")
            .map(|n| n.chars().filter(char::is_ascii_digit).collect())
            .unwrap_or_default(),
        exp_month,
        exp_year,
        name: opt("name"),
        email: opt("email"),
    }
}

fn finish(ctx: &Shared, acct: &str, id: &str, card: &CardInput, auth: Option<bool>) -> Response {
    let result = {
        let mut st = ctx.lock();
        st.current_request = None;
        submit_card(&mut st, acct, id, card, auth)
    };
    match result {
        Err(e) => match find(ctx, id) {
            Some((_, cs)) if cs["status"] == "open" => {
                let mut r = form_page(&cs, Some(&e.message));
                *r.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
                r
            }
            Some((_, cs)) => inactive(&cs),
            None => not_found(),
        },
        Ok(Completion::Declined(e)) => match find(ctx, id) {
            Some((_, cs)) => {
                let mut r = form_page(&cs, Some(&e.message));
                *r.status_mut() = StatusCode::PAYMENT_REQUIRED;
                r
            }
            None => not_found(),
        },
        Ok(Completion::NeedsAuthentication) => {
            let hidden = |k: &str, v: &str| {
                format!(r#"<input type="hidden" name="{k}" value="{}">"#, esc(v))
            };
            let fields = [
                hidden("card_number", &card.number),
                hidden("exp_month", &card.exp_month.to_string()),
                hidden("exp_year", &card.exp_year.to_string()),
                hidden("name", card.name.as_deref().unwrap_or_default()),
                hidden("email", card.email.as_deref().unwrap_or_default()),
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
        Ok(Completion::Completed(cs)) => match redirect_url(&cs) {
            Some(u) => (StatusCode::SEE_OTHER, [(header::LOCATION, u)]).into_response(),
            None => inactive(&cs),
        },
    }
}

async fn submit(AxState(ctx): AxState<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some((acct, cs)) = find(&ctx, &id) else {
        return not_found();
    };
    if cs["status"] != "open" {
        return inactive(&cs);
    }
    let form = parse_form(&body);
    let cvc = form.get("cvc").map(|c| c.trim()).unwrap_or_default();
    if !(3..=4).contains(&cvc.len()) || !cvc.chars().all(|c| c.is_ascii_digit()) {
        let mut r = form_page(&cs, Some("Your card's security code is incomplete."));
        *r.status_mut() = StatusCode::PAYMENT_REQUIRED;
        return r;
    }
    let card = card_from(&form);
    finish(&ctx, &acct, &id, &card, None)
}

async fn authenticate(AxState(ctx): AxState<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some((acct, cs)) = find(&ctx, &id) else {
        return not_found();
    };
    if cs["status"] != "open" {
        return inactive(&cs);
    }
    let f = parse_form(&body);
    let card = card_from(&f);
    let ok = f.get("action").map(String::as_str) == Some("complete");
    finish(&ctx, &acct, &id, &card, Some(ok))
}

async fn portal(AxState(ctx): AxState<Ctx>, Path(id): Path<String>) -> Response {
    let Some(acct) = account_of(&ctx, &id) else {
        return not_found();
    };
    let st = ctx.lock();
    let Some(bps) = st.get_of(&acct, &id, "billing_portal.session") else {
        return not_found();
    };
    let cus = bps["customer"].as_str().unwrap_or_default();
    let pms: Vec<String> = st
        .accounts
        .get(&acct)
        .map(|a| {
            a.objects
                .values()
                .filter(|o| o["object"] == "payment_method" && o["customer"] == cus)
                .map(|o| {
                    format!(
                        "<li>{} •••• {} (exp {}/{})</li>",
                        esc(o["card"]["brand"].as_str().unwrap_or_default()),
                        esc(o["card"]["last4"].as_str().unwrap_or_default()),
                        o["card"]["exp_month"],
                        o["card"]["exp_year"]
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let back = bps["return_url"]
        .as_str()
        .map(|u| format!(r#"<p><a id="return" href="{}">← Return</a></p>"#, esc(u)))
        .unwrap_or_default();
    let body = format!(
        "<h1>Billing portal</h1><p>Customer <code>{}</code></p><h2>Payment methods</h2><ul id=\"payment-methods\">{}</ul>{back}",
        esc(cus),
        if pms.is_empty() {
            "<li>None</li>".to_string()
        } else {
            pms.join("")
        }
    );
    Html(layout("Billing portal", &body)).into_response()
}
