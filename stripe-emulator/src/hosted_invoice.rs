//! The hosted invoice page (`hosted_invoice_url`, `/i/{id}`): the merchant, the invoice's lines
//! and amount due, and for open (or uncollectible) invoices a card form that pays it with the
//! test cards' outcomes, on-session: 4242… pays, 0341 / 0002 are declined, 3184 / 3155 / 3220
//! show a 3D Secure step. An invoice whose payment waits for authentication (an off-session
//! attempt with 3184) shows that step directly. `/i/{id}/pdf` serves `invoice_pdf`. Plain HTML
//! forms: no JavaScript needed.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use crate::Shared;
use crate::api::account_of;
use crate::cards;
use crate::error::ApiError;
use std::collections::HashMap;

use crate::cards::CardInput;
use crate::hosted::{
    CVC_INCOMPLETE, FormError, card_fields, card_from, cvc_complete, date, entered_from, esc,
    form_error, layout, not_found, parse_form,
};
use crate::money;
use crate::resources::invoice_transitions::{self, Attempt};
use crate::resources::{invoice_payments, payment_methods};

type Ctx = Arc<Shared>;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/i/{id}", get(page).post(submit))
        .route("/i/{id}/authenticate", post(authenticate))
        .route("/i/{id}/pdf", get(pdf))
}

/// The finalized invoice `id` and its account (drafts have no page).
fn find(ctx: &Shared, id: &str) -> Option<(String, Value)> {
    let account = account_of(ctx, id)?;
    let mut state = ctx.lock();
    state.current_request = None;
    state.sweep_expired();
    let invoice = state.object_of_type(&account, id, "invoice")?;
    (invoice["status"] != "draft").then_some((account, invoice))
}

/// Whether the invoice's payment waits for 3D Secure.
fn awaiting_authentication(ctx: &Shared, account: &str, invoice: &Value) -> bool {
    let state = ctx.lock();
    invoice_payments::default_payment_intent(
        &state,
        account,
        invoice["id"].as_str().unwrap_or_default(),
    )
    .is_some_and(|intent| intent["status"] == "requires_action")
}

fn summary(invoice: &Value) -> String {
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    let amount = |field: &str| money::display(invoice[field].as_i64().unwrap_or(0), currency);
    let lines: String = invoice["lines"]["data"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|line| {
                    format!(
                        "<tr class=\"line\"><td>{}</td><td class=\"num\">{}</td><td class=\"num amount\">{}</td></tr>",
                        esc(line["description"].as_str().unwrap_or("Item")),
                        esc(line["quantity_decimal"].as_str().unwrap_or("1")),
                        esc(&money::display(line["amount"].as_i64().unwrap_or(0), currency))
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let more = if invoice["lines"]["has_more"] == true {
        r#"<p class="note">More lines are in the PDF.</p>"#
    } else {
        ""
    };
    let billed_to = match (
        invoice["customer_name"].as_str().filter(|s| !s.is_empty()),
        invoice["customer_email"].as_str().filter(|s| !s.is_empty()),
    ) {
        (Some(name), Some(email)) => format!("{} · {}", esc(name), esc(email)),
        (Some(one), None) | (None, Some(one)) => esc(one),
        (None, None) => esc(invoice["customer"].as_str().unwrap_or_default()),
    };
    let mut facts = format!(r#"<dt>Billed to</dt><dd id="billed-to">{billed_to}</dd>"#);
    if let Some(at) = invoice["status_transitions"]["finalized_at"].as_i64() {
        facts.push_str(&format!(
            r#"<dt>Issued</dt><dd id="issued">{}</dd>"#,
            date(at)
        ));
    }
    if let Some(due) = invoice["due_date"].as_i64() {
        facts.push_str(&format!(r#"<dt>Due</dt><dd id="due">{}</dd>"#, date(due)));
    }
    if let Some(description) = invoice["description"].as_str().filter(|s| !s.is_empty()) {
        facts.push_str(&format!(
            r#"<dt>For</dt><dd id="description">{}</dd>"#,
            esc(description)
        ));
    }
    format!(
        r#"<p id="merchant" class="lead">Invoice from {merchant}</p>
<h1>Invoice <span id="number">{number}</span> <span class="pill" id="status" data-status="{status}">{status}</span></h1>
<dl class="summary">{facts}</dl>
<table class="lines" id="lines"><thead><tr><th>Description</th><th class="num">Qty</th><th class="num">Amount</th></tr></thead><tbody>{lines}</tbody></table>
{more}
<table class="totals"><tbody>
<tr><td>Total</td><td class="num" id="total">{total}</td></tr>
<tr><td>Amount paid</td><td class="num" id="amount-paid">{paid}</td></tr>
<tr class="due"><td>Amount due</td><td class="num" id="amount-due">{due}</td></tr>
</tbody></table>"#,
        merchant = esc(invoice["account_name"].as_str().unwrap_or_default()),
        number = esc(invoice["number"].as_str().unwrap_or_default()),
        total = esc(&amount("total")),
        paid = esc(&amount("amount_paid")),
        due = esc(&amount("amount_remaining")),
        status = esc(invoice["status"].as_str().unwrap_or_default()),
    )
}

fn render(
    ctx: &Shared,
    account: &str,
    invoice: &Value,
    entered: &HashMap<String, String>,
    error: Option<FormError>,
    status: StatusCode,
) -> Response {
    let id = esc(invoice["id"].as_str().unwrap_or_default());
    let payable = matches!(
        invoice["status"].as_str(),
        Some("open") | Some("uncollectible")
    );
    let action = if !payable {
        form_error(error)
            + &match invoice["status"].as_str() {
            Some("paid") => {
                let when = invoice["status_transitions"]["paid_at"]
                    .as_i64()
                    .map(|at| format!(" on {}", date(at)))
                    .unwrap_or_default();
                format!(
                    "<p class=\"success\" id=\"paid\">This invoice has been paid{when}. Thank you!</p>"
                )
            }
            Some("void") => {
                "<p class=\"error\" id=\"void\">This invoice has been voided and can no longer be paid.</p>"
                    .to_string()
            }
            _ => String::new(),
        }
    } else if awaiting_authentication(ctx, account, invoice) {
        format!(
            r#"{}<h2 id="three-d-secure">Authenticate your payment</h2>
<p class="lead">Your bank asks you to confirm this payment (a 3D Secure test page).</p>
<form method="post" action="/i/{id}/authenticate"><input type="hidden" name="action" value="complete"><button type="submit" id="complete-auth">Complete authentication</button></form>
<form method="post" action="/i/{id}/authenticate"><input type="hidden" name="action" value="fail"><button type="submit" class="secondary" id="fail-auth">Fail authentication</button></form>"#,
            form_error(error)
        )
    } else {
        format!(
            r#"<h2>Pay with card</h2>
<form method="post" action="/i/{id}" id="payment-form" novalidate>
{}
{}
<button type="submit" id="submit">Pay {}</button>
</form>
<p class="testcards">Test mode: 4242 4242 4242 4242 pays · 4000 0000 0000 0341 is declined · 4000 0027 6000 3184 asks for authentication. Any future date and any CVC.</p>"#,
            form_error(error),
            card_fields(entered, error),
            esc(&money::display(
                invoice["amount_remaining"].as_i64().unwrap_or(0),
                invoice["currency"].as_str().unwrap_or("usd")
            ))
        )
    };
    let body = format!(
        "{}{action}<p class=\"note\"><a href=\"/i/{id}/pdf\" id=\"pdf\">Download invoice (PDF)</a></p>",
        summary(invoice)
    );
    (status, Html(layout("Invoice", &body))).into_response()
}

async fn page(AxState(ctx): AxState<Ctx>, Path(id): Path<String>) -> Response {
    match find(&ctx, &id) {
        None => not_found(),
        Some((account, invoice)) => render(
            &ctx,
            &account,
            &invoice,
            &HashMap::new(),
            None,
            StatusCode::OK,
        ),
    }
}

/// Shows the result of a payment attempt.
fn after_attempt(
    ctx: &Shared,
    account: &str,
    id: &str,
    card: Option<&CardInput>,
    result: Result<Attempt, ApiError>,
) -> Response {
    let Some((_, invoice)) = find(ctx, id) else {
        return not_found();
    };
    let entered = card.map(entered_from).unwrap_or_default();
    match result {
        Ok(Attempt::Paid(_)) | Ok(Attempt::RequiresAction(..)) => render(
            ctx,
            account,
            &invoice,
            &HashMap::new(),
            None,
            StatusCode::OK,
        ),
        Ok(Attempt::Declined(_, error)) => render(
            ctx,
            account,
            &invoice,
            &entered,
            Some(FormError {
                message: &error.message,
                field: None,
            }),
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::PAYMENT_REQUIRED),
        ),
        Err(error) => render(
            ctx,
            account,
            &invoice,
            &entered,
            Some(FormError::of(&error)),
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
        ),
    }
}

async fn submit(AxState(ctx): AxState<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some((account, invoice)) = find(&ctx, &id) else {
        return not_found();
    };
    if !matches!(
        invoice["status"].as_str(),
        Some("open") | Some("uncollectible")
    ) {
        return render(
            &ctx,
            &account,
            &invoice,
            &HashMap::new(),
            None,
            StatusCode::OK,
        );
    }
    let form = parse_form(&body);
    let card = card_from(&form);
    if !cvc_complete(&form) {
        return render(
            &ctx,
            &account,
            &invoice,
            &entered_from(&card),
            Some(CVC_INCOMPLETE),
            StatusCode::PAYMENT_REQUIRED,
        );
    }
    let result = {
        let mut state = ctx.lock();
        state.current_request = None;
        match cards::validate(&card, state.now()) {
            Err(error) => Err(error),
            Ok(_) => {
                let payment_method = payment_methods::from_card(&state, &card);
                state
                    .insert(&account, "payment_method", &payment_method)
                    .and_then(|()| {
                        invoice_transitions::attempt(
                            &mut state,
                            &account,
                            invoice,
                            &payment_method,
                            false,
                        )
                    })
            }
        }
    };
    after_attempt(&ctx, &account, &id, Some(&card), result)
}

async fn authenticate(AxState(ctx): AxState<Ctx>, Path(id): Path<String>, body: Bytes) -> Response {
    let Some((account, invoice)) = find(&ctx, &id) else {
        return not_found();
    };
    let form = parse_form(&body);
    let completed = form.get("action").map(String::as_str) == Some("complete");
    let result = {
        let mut state = ctx.lock();
        state.current_request = None;
        invoice_transitions::authenticate(&mut state, &account, invoice, completed)
    };
    after_attempt(&ctx, &account, &id, None, result)
}

/// A one-page PDF with the invoice number, status and amounts.
async fn pdf(AxState(ctx): AxState<Ctx>, Path(id): Path<String>) -> Response {
    let Some((_, invoice)) = find(&ctx, &id) else {
        return not_found();
    };
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    let text_lines = [
        format!("Invoice {}", invoice["number"].as_str().unwrap_or_default()),
        format!("Status: {}", invoice["status"].as_str().unwrap_or_default()),
        format!(
            "Total: {}",
            money::display(invoice["total"].as_i64().unwrap_or(0), currency)
        ),
        format!(
            "Amount due: {}",
            money::display(invoice["amount_remaining"].as_i64().unwrap_or(0), currency)
        ),
    ];
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/pdf")],
        minimal_pdf(&text_lines),
    )
        .into_response()
}

/// A valid single-page PDF showing `lines` in Helvetica.
fn minimal_pdf(lines: &[String]) -> Vec<u8> {
    let escape = |text: &str| {
        text.chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect::<String>()
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let mut content = String::from("BT /F1 14 Tf 72 760 Td 18 TL\n");
    for line in lines {
        content.push_str(&format!("({}) Tj T*\n", escape(line)));
    }
    content.push_str("ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{object}\nendobj\n", index + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}
