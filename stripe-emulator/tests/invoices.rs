//! Raw-HTTP tests of invoices, invoice items, their status machine, payments with Stripe's test
//! cards, automatic collection on the clock, the hosted invoice page and the control routes.

mod common;

use common::*;
use serde_json::{Value, json};

/// A customer (with email) whose default payment method is card `number`, saved through a
/// setup-mode Checkout Session as a person would. Returns (customer, payment method).
async fn customer_with_card(t: &T, number: &str) -> (String, String) {
    let customer = t.customer().await;
    let pm = save_card(t, &customer, number).await;
    let r = t
        .post(
            &format!("/v1/customers/{customer}"),
            &[("invoice_settings[default_payment_method]", &pm)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    (customer, pm)
}

async fn save_card(t: &T, customer: &str, number: &str) -> String {
    let session = t.hosted_session(customer).await;
    let id = session["id"].as_str().unwrap();
    let r = t
        .ctl_post(
            &format!("/_emulator/checkout/sessions/{id}/complete"),
            json!({"card_number": number}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seti = session["setup_intent"].as_str().unwrap();
    let si = t.get(&format!("/v1/setup_intents/{seti}")).await;
    si.body["payment_method"].as_str().unwrap().to_string()
}

async fn draft(t: &T, customer: &str, extra: &[(&str, &str)]) -> Value {
    let mut form = vec![("customer", customer)];
    form.extend_from_slice(extra);
    let r = t.post("/v1/invoices", &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

async fn item(t: &T, customer: &str, invoice: &str, form: &[(&str, &str)]) -> Value {
    let mut all = vec![("customer", customer), ("invoice", invoice)];
    all.extend_from_slice(form);
    let r = t.post("/v1/invoiceitems", &all).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// Form fields of one request.
type Form = Vec<(&'static str, &'static str)>;

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn event_types(t: &T) -> Vec<String> {
    t.emu
        .events()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

fn events_of(t: &T, kind: &str, object: &str) -> Vec<Value> {
    t.emu
        .events()
        .into_iter()
        .filter(|e| e["type"] == kind && e["data"]["object"]["id"] == object)
        .collect()
}

#[tokio::test]
async fn totals_with_several_items_in_jpy_usd_and_kwd() {
    let t = start().await;
    let customer = t.customer().await;
    // (currency, items, expected subtotal)
    let cases: [(&str, Vec<Form>, i64); 3] = [
        (
            "jpy",
            vec![
                vec![("amount", "1500")],
                vec![("unit_amount_decimal", "120"), ("quantity", "3")],
                vec![("unit_amount_decimal", "99.5"), ("quantity_decimal", "2.5")],
            ],
            1500 + 360 + 249, // 248.75 rounds to 249
        ),
        (
            "usd",
            vec![
                vec![("amount", "1999"), ("description", "Seats")],
                vec![("unit_amount_decimal", "0.25"), ("quantity", "1001")],
                vec![("amount", "-500"), ("description", "Credit")],
            ],
            1999 + 250 - 500, // 250.25 rounds to 250
        ),
        (
            "kwd",
            vec![
                vec![("amount", "1250")],
                vec![("unit_amount_decimal", "0.125"), ("quantity", "8")],
            ],
            1250 + 1,
        ),
    ];
    for (currency, items, expected) in cases {
        let invoice = draft(&t, &customer, &[("currency", currency)]).await;
        assert_eq!(invoice["status"], "draft");
        assert_eq!(invoice["number"], Value::Null);
        assert_eq!(invoice["currency"], currency);
        let invoice_id = id(&invoice);
        for form in &items {
            let made = item(&t, &customer, &invoice_id, form).await;
            assert_eq!(made["object"], "invoiceitem");
            assert_eq!(made["currency"], currency);
            assert_eq!(made["invoice"], invoice_id.as_str());
        }
        let got = t.get(&format!("/v1/invoices/{invoice_id}")).await.body;
        assert_eq!(got["subtotal"], expected, "{currency}");
        assert_eq!(got["total"], expected);
        assert_eq!(got["amount_due"], expected.max(0));
        assert_eq!(got["amount_paid"], 0);
        assert_eq!(got["amount_remaining"], expected.max(0));
        assert_eq!(got["lines"]["data"].as_array().unwrap().len(), items.len());
        let line = &got["lines"]["data"][0];
        assert_eq!(line["object"], "line_item");
        assert!(line["id"].as_str().unwrap().starts_with("il_"));
        assert_eq!(line["parent"]["type"], "invoice_item_details");
        // Pay it to see the amounts move (zero-decimal and three-decimal alike).
        let r = t
            .ctl_post(
                &format!("/_emulator/invoices/{invoice_id}/pay"),
                json!({"outcome": "succeed"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["outcome"], "paid");
        assert_eq!(r.body["invoice"]["amount_paid"], expected);
        assert_eq!(r.body["invoice"]["amount_remaining"], 0);
        let payments = t
            .get(&format!("/v1/invoice_payments?invoice={invoice_id}"))
            .await
            .body;
        assert_eq!(payments["data"][0]["amount_paid"], expected);
        assert_eq!(payments["data"][0]["currency"], currency);
        // The hosted page shows the currency's decimal places.
        let page = t
            .http
            .get(r.body["invoice"]["hosted_invoice_url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let shown = match currency {
            "jpy" => "2109 JPY",
            "usd" => "17.49 USD",
            _ => "1.251 KWD",
        };
        assert!(page.contains(shown), "{page}");
    }
}

#[tokio::test]
async fn invoice_items_and_draft_lines_crud() {
    let t = start().await;
    let customer = t.customer().await;
    // Pending items and validation.
    let r = t
        .post(
            "/v1/invoiceitems",
            &[("customer", &customer), ("amount", "100")],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "currency"));
    let r = t
        .post(
            "/v1/invoiceitems",
            &[("amount", "100"), ("currency", "usd")],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "customer"));
    let r = t
        .post(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("currency", "usd"),
                ("amount", "1"),
                ("unit_amount_decimal", "2"),
            ],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "unit_amount_decimal"));
    let r = t
        .post(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("currency", "usd"),
                ("price_data[product]", "prod_x"),
                ("price_data[currency]", "usd"),
                ("price_data[unit_amount]", "5"),
            ],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "price_data[product]"));
    assert_eq!(r.body["error"]["code"], "resource_missing");
    let r = t
        .post(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("currency", "usd"),
                ("amount", "5"),
                ("tax_behavior", "sideways"),
            ],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "tax_behavior"));
    let r = t
        .post(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("currency", "usd"),
                ("amount", "5"),
                ("period[start]", "20"),
                ("period[end]", "10"),
            ],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "period[start]"));
    let pending = t
        .post(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("currency", "usd"),
                ("amount", "700"),
                ("description", "Pending"),
                ("metadata[k]", "v"),
                ("period[start]", "1700000000"),
                ("period[end]", "1700086400"),
                ("tax_behavior", "exclusive"),
                ("tax_code", "txcd_10000000"),
            ],
        )
        .await;
    assert_eq!(pending.status, 200, "{}", pending.body);
    let pending_id = id(&pending.body);
    assert!(pending_id.starts_with("ii_"));
    assert_eq!(pending.body["invoice"], Value::Null);
    assert_eq!(
        pending.body["period"],
        json!({"start": 1700000000, "end": 1700086400})
    );
    assert_eq!(pending.body["metadata"], json!({"k": "v"}));
    let listed = t.get("/v1/invoiceitems?pending=true").await.body;
    assert_eq!(listed["data"][0]["id"], pending_id.as_str());
    let upd = t
        .post(
            &format!("/v1/invoiceitems/{pending_id}"),
            &[
                ("unit_amount_decimal", "350"),
                ("quantity", "3"),
                ("metadata[k]", ""),
            ],
        )
        .await;
    assert_eq!(upd.status, 200, "{}", upd.body);
    assert_eq!(upd.body["amount"], 1050);
    assert_eq!(upd.body["quantity"], 3);
    assert_eq!(upd.body["pricing"]["unit_amount_decimal"], "350");
    assert_eq!(upd.body["metadata"], json!({}));

    // Excluded by default; included on request.
    let excluded = draft(&t, &customer, &[]).await;
    assert_eq!(excluded["lines"]["data"], json!([]));
    let included = draft(
        &t,
        &customer,
        &[("pending_invoice_items_behavior", "include")],
    )
    .await;
    let invoice_id = id(&included);
    assert_eq!(included["total"], 1050);
    assert_eq!(
        included["lines"]["data"][0]["parent"]["invoice_item_details"]["invoice_item"],
        pending_id.as_str()
    );
    assert_eq!(
        t.get(&format!("/v1/invoiceitems/{pending_id}")).await.body["invoice"],
        invoice_id.as_str()
    );

    // add_lines: a new item and an existing pending one.
    let other = t
        .post(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("currency", "usd"),
                ("amount", "5"),
            ],
        )
        .await
        .body;
    let r = t
        .post(
            &format!("/v1/invoices/{invoice_id}/add_lines"),
            &[
                ("lines[0][amount]", "200"),
                ("lines[0][description]", "Added"),
                ("lines[1][invoice_item]", &id(&other)),
                ("invoice_metadata[batch]", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 1255);
    assert_eq!(r.body["metadata"], json!({"batch": "1"}));
    let lines = r.body["lines"]["data"].as_array().unwrap().clone();
    assert_eq!(lines.len(), 3);
    let added = lines.iter().find(|l| l["description"] == "Added").unwrap();
    let added_id = id(added);
    // update_lines and the single-line update.
    let r = t
        .post(
            &format!("/v1/invoices/{invoice_id}/update_lines"),
            &[("lines[0][id]", &added_id), ("lines[0][amount]", "300")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 1355);
    let r = t
        .post(
            &format!("/v1/invoices/{invoice_id}/lines/{added_id}"),
            &[("description", "Renamed"), ("metadata[x]", "y")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], added_id.as_str());
    assert_eq!(r.body["description"], "Renamed");
    assert_eq!(r.body["metadata"], json!({"x": "y"}));
    let r = t
        .post(
            &format!("/v1/invoices/{invoice_id}/update_lines"),
            &[("lines[0][id]", "il_nope"), ("lines[0][amount]", "1")],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "lines[0][id]"));
    // Lines listing with paging.
    let page = t
        .get(&format!("/v1/invoices/{invoice_id}/lines?limit=2"))
        .await
        .body;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], true);
    let last = page["data"][1]["id"].as_str().unwrap();
    let rest = t
        .get(&format!(
            "/v1/invoices/{invoice_id}/lines?limit=2&starting_after={last}"
        ))
        .await
        .body;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["has_more"], false);
    // remove_lines: unassign keeps the item pending, delete deletes it.
    let r = t
        .post(
            &format!("/v1/invoices/{invoice_id}/remove_lines"),
            &[
                ("lines[0][id]", &added_id),
                ("lines[0][behavior]", "delete"),
                (
                    "lines[1][id]",
                    lines.iter().find(|l| l["amount"] == 5).unwrap()["id"]
                        .as_str()
                        .unwrap(),
                ),
                ("lines[1][behavior]", "unassign"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["total"], 1050);
    assert_eq!(r.body["lines"]["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        t.get(&format!("/v1/invoiceitems/{}", id(&other)))
            .await
            .body["invoice"],
        Value::Null
    );
    // Deleting an item of a draft removes its line.
    let del = t.delete(&format!("/v1/invoiceitems/{pending_id}")).await;
    assert_eq!(
        del.body,
        json!({"deleted": true, "id": pending_id, "object": "invoiceitem"})
    );
    assert_eq!(
        t.get(&format!("/v1/invoiceitems/{pending_id}"))
            .await
            .status,
        404
    );
    let got = t.get(&format!("/v1/invoices/{invoice_id}")).await.body;
    assert_eq!(got["total"], 0);
    // Draft update and listing filters and paging.
    let upd = t
        .post(
            &format!("/v1/invoices/{invoice_id}"),
            &[
                ("description", "April"),
                ("footer", "Thanks"),
                ("collection_method", "send_invoice"),
                ("days_until_due", "30"),
                ("metadata[a]", "b"),
            ],
        )
        .await;
    assert_eq!(upd.status, 200, "{}", upd.body);
    assert_eq!(upd.body["collection_method"], "send_invoice");
    assert_eq!(
        upd.body["due_date"],
        upd.body["created"].as_i64().unwrap() + 30 * 86400
    );
    let updated = events_of(&t, "invoice.updated", &invoice_id);
    assert_eq!(
        updated.last().unwrap()["data"]["previous_attributes"]["description"],
        Value::Null
    );
    let r = t
        .post(
            &format!("/v1/invoices/{invoice_id}"),
            &[
                ("collection_method", "send_invoice"),
                ("days_until_due", "1"),
                ("due_date", "9999999999"),
            ],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "due_date"));
    let r = t
        .post(
            "/v1/invoices",
            &[
                ("customer", &customer),
                ("collection_method", "send_invoice"),
            ],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "days_until_due"));
    let r = t
        .post(
            "/v1/invoices",
            &[("customer", &customer), ("days_until_due", "3")],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "days_until_due"));
    let r = t.post("/v1/invoices", &[("customer", "cus_missing")]).await;
    assert_eq!((r.status, r.err_param()), (400, "customer"));
    let r = t
        .post("/v1/invoices", &[("customer", &customer), ("bogus", "1")])
        .await;
    assert_eq!((r.status, r.err_param()), (400, "bogus"));
    let list = t
        .get(&format!(
            "/v1/invoices?customer={customer}&status=draft&limit=1"
        ))
        .await
        .body;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["has_more"], true);
    assert_eq!(list["data"][0]["id"], invoice_id.as_str());
    let older = t
        .get(&format!(
            "/v1/invoices?customer={customer}&limit=1&starting_after={invoice_id}"
        ))
        .await
        .body;
    assert_eq!(older["data"][0]["id"], id(&excluded).as_str());
    let newer = t
        .get(&format!(
            "/v1/invoices?limit=5&ending_before={}",
            id(&excluded)
        ))
        .await
        .body;
    assert_eq!(newer["data"][0]["id"], invoice_id.as_str());
    assert_eq!(
        t.get("/v1/invoices?status=paid").await.body["data"],
        json!([])
    );
    let r = t.get("/v1/invoices?status=nope").await;
    assert_eq!((r.status, r.err_param()), (400, "status"));
    // Deleting a draft.
    let del = t.delete(&format!("/v1/invoices/{}", id(&excluded))).await;
    assert_eq!(
        del.body,
        json!({"deleted": true, "id": id(&excluded), "object": "invoice"})
    );
    assert_eq!(
        t.get(&format!("/v1/invoices/{}", id(&excluded)))
            .await
            .status,
        404
    );
    let types = event_types(&t);
    for kind in [
        "invoiceitem.created",
        "invoiceitem.deleted",
        "invoice.created",
        "invoice.updated",
        "invoice.deleted",
    ] {
        assert!(types.iter().any(|t| t == kind), "{kind} in {types:?}");
    }
}

#[tokio::test]
async fn illegal_transitions_answer_stripes_errors() {
    let t = start().await;
    let (customer, _) = customer_with_card(&t, "4242424242424242").await;
    let invoice = draft(&t, &customer, &[]).await;
    let invoice_id = id(&invoice);
    let line_item = item(&t, &customer, &invoice_id, &[("amount", "1000")]).await;
    let check = |r: Resp, message: &str, code: Option<&str>| {
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.err_type(), "invalid_request_error");
        assert_eq!(r.body["error"]["message"], message, "{}", r.body);
        assert_eq!(r.body["error"]["code"].as_str(), code, "{}", r.body);
    };
    // Drafts: void and mark_uncollectible refuse.
    check(
        t.post(&format!("/v1/invoices/{invoice_id}/void"), &[])
            .await,
        "You can only void invoices that have been finalized. Delete a draft invoice instead.",
        Some("invoice_not_editable"),
    );
    check(
        t.post(
            &format!("/v1/invoices/{invoice_id}/mark_uncollectible"),
            &[],
        )
        .await,
        "You can only mark open invoices as uncollectible; this invoice is draft.",
        Some("invoice_not_editable"),
    );
    let fin = t
        .post(&format!("/v1/invoices/{invoice_id}/finalize"), &[])
        .await;
    assert_eq!(fin.status, 200, "{}", fin.body);
    assert_eq!(fin.body["status"], "open");
    // Open: no re-finalize, no delete, no monetary edits, no item changes.
    check(
        t.post(&format!("/v1/invoices/{invoice_id}/finalize"), &[])
            .await,
        "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
        Some("invoice_not_editable"),
    );
    check(
        t.delete(&format!("/v1/invoices/{invoice_id}")).await,
        "You can only delete draft invoices. Finalized invoices can be voided instead.",
        Some("invoice_not_editable"),
    );
    let r = t
        .post(
            &format!("/v1/invoices/{invoice_id}"),
            &[("collection_method", "send_invoice")],
        )
        .await;
    assert_eq!(r.err_param(), "collection_method");
    check(
        r,
        "Finalized invoices can't be updated in this way",
        Some("invoice_not_editable"),
    );
    let ok = t
        .post(
            &format!("/v1/invoices/{invoice_id}"),
            &[("metadata[order]", "42"), ("description", "Still editable")],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["metadata"], json!({"order": "42"}));
    for r in [
        t.post(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("invoice", &invoice_id),
                ("amount", "5"),
            ],
        )
        .await,
        t.post(
            &format!("/v1/invoiceitems/{}", id(&line_item)),
            &[("amount", "5")],
        )
        .await,
        t.delete(&format!("/v1/invoiceitems/{}", id(&line_item)))
            .await,
        t.post(
            &format!("/v1/invoices/{invoice_id}/add_lines"),
            &[("lines[0][amount]", "5")],
        )
        .await,
    ] {
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(
            r.body["error"]["code"], "invoice_not_editable",
            "{}",
            r.body
        );
    }
    // Paid: pay again, void refuse.
    let paid = t.post(&format!("/v1/invoices/{invoice_id}/pay"), &[]).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    check(
        t.post(&format!("/v1/invoices/{invoice_id}/pay"), &[]).await,
        "Invoice is already paid",
        None,
    );
    check(
        t.post(&format!("/v1/invoices/{invoice_id}/void"), &[])
            .await,
        "You cannot void an invoice that has already been paid.",
        Some("invoice_not_editable"),
    );
    check(
        t.post(
            &format!("/v1/invoices/{invoice_id}/mark_uncollectible"),
            &[],
        )
        .await,
        "You can only mark open invoices as uncollectible; this invoice is paid.",
        Some("invoice_not_editable"),
    );
    // Void: not payable, not voidable again; uncollectible can be voided.
    let other = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&other), &[("amount", "300")]).await;
    t.post(&format!("/v1/invoices/{}/finalize", id(&other)), &[])
        .await;
    let un = t
        .post(
            &format!("/v1/invoices/{}/mark_uncollectible", id(&other)),
            &[],
        )
        .await;
    assert_eq!(un.body["status"], "uncollectible");
    assert!(un.body["status_transitions"]["marked_uncollectible_at"].is_i64());
    let voided = t
        .post(&format!("/v1/invoices/{}/void", id(&other)), &[])
        .await;
    assert_eq!(voided.status, 200, "{}", voided.body);
    assert_eq!(voided.body["status"], "void");
    assert!(voided.body["status_transitions"]["voided_at"].is_i64());
    check(
        t.post(&format!("/v1/invoices/{}/void", id(&other)), &[])
            .await,
        "This invoice has already been voided.",
        Some("invoice_not_editable"),
    );
    check(
        t.post(&format!("/v1/invoices/{}/pay", id(&other)), &[])
            .await,
        "This invoice has been voided and can no longer be paid.",
        None,
    );
    let payments = t
        .get(&format!("/v1/invoice_payments?invoice={}", id(&other)))
        .await
        .body;
    assert_eq!(payments["data"][0]["status"], "canceled");
    let pi = payments["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap();
    let pi = t.get(&format!("/v1/payment_intents/{pi}")).await.body;
    assert_eq!(
        (pi["status"].as_str(), pi["cancellation_reason"].as_str()),
        (Some("canceled"), Some("void_invoice"))
    );
    // Missing invoices.
    let r = t.post("/v1/invoices/in_missing/finalize", &[]).await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("resource_missing"))
    );
    for kind in [
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.marked_uncollectible",
        "invoice.voided",
    ] {
        assert!(event_types(&t).iter().any(|t| t == kind), "{kind}");
    }
}

#[tokio::test]
async fn finalize_numbers_urls_zero_invoices_and_refusals() {
    let t = start().await;
    let customer = t.customer().await;
    let cus = t.get(&format!("/v1/customers/{customer}")).await.body;
    let prefix = cus["invoice_prefix"].as_str().unwrap().to_string();
    let first = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&first), &[("amount", "100")]).await;
    let first = t
        .post(&format!("/v1/invoices/{}/finalize", id(&first)), &[])
        .await
        .body;
    assert_eq!(first["number"], format!("{prefix}-0001"));
    assert_eq!(first["status"], "open");
    assert!(first["status_transitions"]["finalized_at"].is_i64());
    let hosted = first["hosted_invoice_url"].as_str().unwrap();
    assert_eq!(hosted, t.url(&format!("/i/{}", id(&first))));
    let pdf = t
        .http
        .get(first["invoice_pdf"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    assert_eq!(first["amount_due"], 100);
    assert_eq!(first["attempt_count"], 0);
    // A zero invoice is paid on finalize (and keeps the sequence going).
    let zero = draft(&t, &customer, &[]).await;
    let zero = t
        .post(&format!("/v1/invoices/{}/finalize", id(&zero)), &[])
        .await
        .body;
    assert_eq!(zero["number"], format!("{prefix}-0002"));
    assert_eq!(zero["status"], "paid");
    assert_eq!(zero["amount_paid"], 0);
    assert!(zero["status_transitions"]["paid_at"].is_i64());
    assert_eq!(events_of(&t, "invoice.paid", &id(&zero)).len(), 1);
    assert_eq!(
        t.get(&format!("/v1/customers/{customer}")).await.body["next_invoice_sequence"],
        3
    );
    // send_invoice to a customer without email: refused, recorded, announced.
    let no_email = t.post("/v1/customers", &[("name", "No mail")]).await.body;
    let inv = draft(
        &t,
        &id(&no_email),
        &[
            ("collection_method", "send_invoice"),
            ("days_until_due", "7"),
        ],
    )
    .await;
    let r = t
        .post(&format!("/v1/invoices/{}/finalize", id(&inv)), &[])
        .await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (400, Some("email_invalid"))
    );
    let got = t.get(&format!("/v1/invoices/{}", id(&inv))).await.body;
    assert_eq!(got["status"], "draft");
    assert_eq!(got["last_finalization_error"]["code"], "email_invalid");
    assert_eq!(
        got["last_finalization_error"]["type"],
        "invalid_request_error"
    );
    assert_eq!(
        events_of(&t, "invoice.finalization_failed", &id(&inv)).len(),
        1
    );
    // Automatic tax without a customer location: refused with customer_tax_location_invalid.
    let inv = draft(&t, &customer, &[("automatic_tax[enabled]", "true")]).await;
    assert_eq!(inv["automatic_tax"]["status"], "requires_location_inputs");
    let r = t
        .post(&format!("/v1/invoices/{}/finalize", id(&inv)), &[])
        .await;
    assert_eq!(r.body["error"]["code"], "customer_tax_location_invalid");
    t.post(
        &format!("/v1/customers/{customer}"),
        &[("address[country]", "US"), ("address[line1]", "1 Main St")],
    )
    .await;
    let r = t
        .post(&format!("/v1/invoices/{}/finalize", id(&inv)), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["last_finalization_error"], Value::Null);
    assert_eq!(r.body["automatic_tax"]["status"], "complete");
    assert_eq!(r.body["customer_address"]["country"], "US");
}

#[tokio::test]
async fn test_cards_pay_decline_and_require_authentication() {
    let t = start().await;
    // 4242: pays; the payment is on the invoice's payments and its payment intent.
    let (customer, pm) = customer_with_card(&t, "4242424242424242").await;
    let inv = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&inv), &[("amount", "2500")]).await;
    let paid = t
        .post(
            &format!("/v1/invoices/{}/pay", id(&inv)),
            &[
                ("expand[]", "payments"),
                ("expand[]", "confirmation_secret"),
            ],
        )
        .await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(paid.body["amount_paid"], 2500);
    assert_eq!(paid.body["attempt_count"], 1);
    assert!(
        paid.body["confirmation_secret"]["client_secret"]
            .as_str()
            .unwrap()
            .contains("_secret_")
    );
    let payment = &paid.body["payments"]["data"][0];
    assert_eq!(payment["status"], "paid");
    assert_eq!(payment["is_default"], true);
    let pi_id = payment["payment"]["payment_intent"].as_str().unwrap();
    let pi = t
        .get(&format!(
            "/v1/payment_intents/{pi_id}?expand[]=latest_charge"
        ))
        .await
        .body;
    assert_eq!(pi["status"], "succeeded");
    assert_eq!(pi["amount_received"], 2500);
    assert_eq!(pi["payment_method"], pm.as_str());
    assert_eq!(pi["latest_charge"]["status"], "succeeded");
    assert_eq!(pi["latest_charge"]["paid"], true);

    // 0341: attaches, but the charge is declined; recorded on the payment intent and charge.
    let (customer, pm) = customer_with_card(&t, "4000000000000341").await;
    let inv = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&inv), &[("amount", "900")]).await;
    let r = t.post(&format!("/v1/invoices/{}/pay", id(&inv)), &[]).await;
    assert_eq!(r.status, 402, "{}", r.body);
    assert_eq!(r.err_type(), "card_error");
    assert_eq!(r.body["error"]["code"], "card_declined");
    assert_eq!(r.body["error"]["decline_code"], "generic_decline");
    assert_eq!(r.body["error"]["message"], "Your card was declined.");
    let got = t
        .get(&format!(
            "/v1/invoices/{}?expand[]=payments.data.payment.payment_intent",
            id(&inv)
        ))
        .await
        .body;
    assert_eq!(got["status"], "open");
    assert_eq!(
        (got["attempt_count"].as_i64(), got["attempted"].as_bool()),
        (Some(1), Some(true))
    );
    let pi = &got["payments"]["data"][0]["payment"]["payment_intent"];
    assert_eq!(got["payments"]["data"][0]["status"], "open");
    assert_eq!(pi["status"], "requires_payment_method");
    assert_eq!(pi["last_payment_error"]["code"], "card_declined");
    assert_eq!(
        pi["last_payment_error"]["payment_method"]["id"],
        pm.as_str()
    );
    let charge = t
        .get(&format!(
            "/v1/charges/{}",
            pi["latest_charge"].as_str().unwrap()
        ))
        .await
        .body;
    assert_eq!(
        (charge["status"].as_str(), charge["failure_code"].as_str()),
        (Some("failed"), Some("card_declined"))
    );
    assert_eq!(events_of(&t, "invoice.payment_failed", &id(&inv)).len(), 1);
    // Another card of the customer pays it.
    let good = save_card(&t, &customer, "4242424242424242").await;
    let r = t
        .post(
            &format!("/v1/invoices/{}/pay", id(&inv)),
            &[("payment_method", &good)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "paid");
    assert_eq!(r.body["attempt_count"], 2);
    // A payment method that is not the customer's is refused.
    let (_, stranger_pm) = customer_with_card(&t, "4242424242424242").await;
    let inv2 = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&inv2), &[("amount", "1")]).await;
    let r = t
        .post(
            &format!("/v1/invoices/{}/pay", id(&inv2)),
            &[("payment_method", &stranger_pm)],
        )
        .await;
    assert_eq!((r.status, r.err_param()), (400, "payment_method"));

    // 3184: always requires authentication; the hosted invoice page completes it.
    let (customer, _) = customer_with_card(&t, "4000002760003184").await;
    let inv = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&inv), &[("amount", "4200")]).await;
    let r = t.post(&format!("/v1/invoices/{}/pay", id(&inv)), &[]).await;
    assert_eq!(r.status, 402, "{}", r.body);
    assert_eq!(
        r.body["error"]["code"],
        "invoice_payment_intent_requires_action"
    );
    assert_eq!(
        r.body["error"]["payment_intent"]["status"],
        "requires_action"
    );
    assert_eq!(
        events_of(&t, "invoice.payment_action_required", &id(&inv)).len(),
        1
    );
    let url = t.get(&format!("/v1/invoices/{}", id(&inv))).await.body["hosted_invoice_url"]
        .as_str()
        .unwrap()
        .to_string();
    let page = t.http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"three-d-secure\""), "{page}");
    let done = t
        .http
        .post(format!("{url}/authenticate"))
        .form(&[("action", "complete")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let text = done.text().await.unwrap();
    assert!(text.contains("data-status=\"paid\""), "{text}");
    assert_eq!(
        t.get(&format!("/v1/invoices/{}", id(&inv))).await.body["status"],
        "paid"
    );
    // Off-session again: still requires authentication.
    let inv = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&inv), &[("amount", "10")]).await;
    let r = t
        .post(
            &format!("/v1/invoices/{}/pay", id(&inv)),
            &[("off_session", "true")],
        )
        .await;
    assert_eq!(
        r.body["error"]["code"],
        "invoice_payment_intent_requires_action"
    );

    // 3155: set up through a setup intent, it pays off-session; on-session it asks.
    let (customer, _) = customer_with_card(&t, "4000002500003155").await;
    let inv = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&inv), &[("amount", "10")]).await;
    let r = t
        .post(
            &format!("/v1/invoices/{}/pay", id(&inv)),
            &[("off_session", "false")],
        )
        .await;
    assert_eq!(
        r.body["error"]["code"],
        "invoice_payment_intent_requires_action"
    );
    let r = t.post(&format!("/v1/invoices/{}/pay", id(&inv)), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "paid");

    // No payment method at all.
    let bare = t.customer().await;
    let inv = draft(&t, &bare, &[]).await;
    item(&t, &bare, &id(&inv), &[("amount", "10")]).await;
    let r = t.post(&format!("/v1/invoices/{}/pay", id(&inv)), &[]).await;
    assert_eq!((r.status, r.err_param()), (400, "payment_method"));
    // Paid out of band.
    let r = t
        .post(
            &format!("/v1/invoices/{}/pay", id(&inv)),
            &[("paid_out_of_band", "true")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "paid");
}

#[tokio::test]
async fn automatic_collection_and_retries_follow_the_clock() {
    let t = start().await;
    let (customer, _) = customer_with_card(&t, "4242424242424242").await;
    let inv = draft(&t, &customer, &[("auto_advance", "true")]).await;
    let created = inv["created"].as_i64().unwrap();
    let finalizes_at = inv["automatically_finalizes_at"].as_i64().unwrap();
    assert!(
        (created + 3600..=created + 3601).contains(&finalizes_at),
        "{inv}"
    );
    item(&t, &customer, &id(&inv), &[("amount", "1234")]).await;
    t.emu.advance_clock(3500);
    assert_eq!(
        t.get(&format!("/v1/invoices/{}", id(&inv))).await.body["status"],
        "draft"
    );
    t.emu.advance_clock(200);
    let got = t.get(&format!("/v1/invoices/{}", id(&inv))).await.body;
    assert_eq!(got["status"], "paid", "{got}");
    assert_eq!(got["amount_paid"], 1234);
    let order: Vec<String> = event_types(&t)
        .into_iter()
        .filter(|kind| kind.starts_with("invoice."))
        .collect();
    let finalized = order.iter().position(|k| k == "invoice.finalized").unwrap();
    let paid = order.iter().position(|k| k == "invoice.paid").unwrap();
    assert!(finalized < paid, "{order:?}");

    // Finalized by hand with auto_advance: collected right after (the next request or tick).
    let (customer, _) = customer_with_card(&t, "4000000000000341").await;
    let inv = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&inv), &[("amount", "500")]).await;
    let fin = t
        .post(
            &format!("/v1/invoices/{}/finalize", id(&inv)),
            &[("auto_advance", "true")],
        )
        .await
        .body;
    assert_eq!(fin["status"], "open");
    assert_eq!(fin["attempt_count"], 0);
    assert!(fin["next_payment_attempt"].is_i64());
    let got = t.get(&format!("/v1/invoices/{}", id(&inv))).await.body;
    assert_eq!(got["attempt_count"], 1, "{got}");
    let retry_at = got["next_payment_attempt"].as_i64().unwrap();
    assert!(retry_at >= t.emu.now() + 3 * 86400 - 5);
    t.emu.advance_clock(3 * 86400 + 10);
    let got = t.get(&format!("/v1/invoices/{}", id(&inv))).await.body;
    assert_eq!(got["attempt_count"], 2);
    assert_eq!(events_of(&t, "invoice.payment_failed", &id(&inv)).len(), 2);
    t.emu.advance_clock(7 * 86400);
    let got = t.get(&format!("/v1/invoices/{}", id(&inv))).await.body;
    assert_eq!(got["attempt_count"], 4);
    assert_eq!(got["next_payment_attempt"], Value::Null);
    assert_eq!(got["status"], "open");
    // Without auto_advance nothing happens on the clock.
    let manual = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&manual), &[("amount", "500")]).await;
    t.emu.advance_clock(10 * 86400);
    assert_eq!(
        t.get(&format!("/v1/invoices/{}", id(&manual))).await.body["status"],
        "draft"
    );
}

#[tokio::test]
async fn send_and_overdue_from_the_clock() {
    let t = start().await;
    let customer = t.customer().await;
    let inv = draft(
        &t,
        &customer,
        &[
            ("collection_method", "send_invoice"),
            ("days_until_due", "2"),
        ],
    )
    .await;
    item(&t, &customer, &id(&inv), &[("amount", "800")]).await;
    let r = t
        .post(&format!("/v1/invoices/{}/send", id(&inv)), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "open");
    assert_eq!(events_of(&t, "invoice.sent", &id(&inv)).len(), 1);
    assert!(events_of(&t, "invoice.overdue", &id(&inv)).is_empty());
    t.emu.advance_clock(86400);
    assert!(events_of(&t, "invoice.overdue", &id(&inv)).is_empty());
    t.emu.advance_clock(86400 + 5);
    assert_eq!(events_of(&t, "invoice.overdue", &id(&inv)).len(), 1);
    // Paid before the due date: no overdue.
    let inv = draft(
        &t,
        &customer,
        &[
            ("collection_method", "send_invoice"),
            ("days_until_due", "1"),
        ],
    )
    .await;
    item(&t, &customer, &id(&inv), &[("amount", "800")]).await;
    t.post(&format!("/v1/invoices/{}/finalize", id(&inv)), &[])
        .await;
    t.ctl_post(
        &format!("/_emulator/invoices/{}/pay", id(&inv)),
        json!({"outcome": "succeed"}),
    )
    .await;
    t.emu.advance_clock(2 * 86400);
    assert!(events_of(&t, "invoice.overdue", &id(&inv)).is_empty());
    // charge_automatically invoices are not sent by hand.
    let auto = draft(&t, &customer, &[]).await;
    let r = t
        .post(&format!("/v1/invoices/{}/send", id(&auto)), &[])
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn control_routes_pay_or_fail_invoices_deterministically() {
    let t = start().await;
    let customer = t.customer().await;
    let inv = draft(&t, &customer, &[]).await;
    item(&t, &customer, &id(&inv), &[("amount", "700")]).await;
    let path = format!("/_emulator/invoices/{}/pay", id(&inv));
    let r = t.ctl_post(&path, json!({"outcome": "decline"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["outcome"], "declined");
    assert_eq!(r.body["error"]["code"], "card_declined");
    assert_eq!(r.body["invoice"]["status"], "open");
    let r = t
        .ctl_post(&path, json!({"outcome": "requires_action"}))
        .await;
    assert_eq!(r.body["outcome"], "requires_action");
    let r = t
        .ctl_post(
            &format!("/_emulator/invoices/{}/authenticate", id(&inv)),
            json!({"succeed": false}),
        )
        .await;
    assert_eq!(r.body["outcome"], "declined");
    assert_eq!(
        r.body["error"]["code"],
        "payment_intent_authentication_failure"
    );
    let r = t.ctl_post(&path, json!({"outcome": "succeed"})).await;
    assert_eq!(r.body["outcome"], "paid");
    assert_eq!(r.body["invoice"]["status"], "paid");
    let r = t.ctl_post(&path, json!({"outcome": "succeed"})).await;
    assert_eq!(r.status, 400);
    let r = t.ctl_post(&path, json!({"outcome": "maybe"})).await;
    assert_eq!(r.status, 400);
    // advance: finalize now, then collect with the default payment method.
    let (customer, _) = customer_with_card(&t, "4242424242424242").await;
    let inv = draft(&t, &customer, &[("auto_advance", "true")]).await;
    item(&t, &customer, &id(&inv), &[("amount", "300")]).await;
    let r = t
        .ctl_post(
            &format!("/_emulator/invoices/{}/advance", id(&inv)),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["invoice"]["status"], "paid");
    let r = t.emu.pay_invoice("in_missing", "succeed").unwrap_err();
    assert_eq!(r["error"]["code"], "resource_missing");
}

#[tokio::test]
async fn hosted_invoice_page_pays_with_test_cards() {
    let t = start().await;
    let customer = t.customer().await;
    let inv = draft(&t, &customer, &[("currency", "usd")]).await;
    item(
        &t,
        &customer,
        &id(&inv),
        &[("amount", "1999"), ("description", "Pro plan <April>")],
    )
    .await;
    // Drafts have no page.
    let r = t
        .http
        .get(t.url(&format!("/i/{}", id(&inv))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let fin = t
        .post(&format!("/v1/invoices/{}/finalize", id(&inv)), &[])
        .await
        .body;
    let url = fin["hosted_invoice_url"].as_str().unwrap().to_string();
    let page = t.http.get(&url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("meterpay emulated account"));
    assert!(page.contains("Pro plan &lt;April&gt;"), "{page}");
    assert!(page.contains("19.99 USD"));
    assert!(page.contains("id=\"payment-form\""));
    let pay = |number: &'static str| {
        let http = t.http.clone();
        let url = url.clone();
        async move {
            let r = http
                .post(&url)
                .form(&[
                    ("card_number", number),
                    ("exp", "12 / 34"),
                    ("cvc", "123"),
                    ("name", "Jenny"),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, text) = pay("4000 0000 0000 0341").await;
    assert_eq!(status, 402);
    assert!(text.contains("Your card was declined."), "{text}");
    let (status, text) = pay("4242 4242 4242 4241").await;
    assert_eq!(status, 402);
    assert!(text.contains("Your card number is incorrect."), "{text}");
    let (status, text) = pay("4000 0027 6000 3184").await;
    assert_eq!(status, 200);
    assert!(text.contains("Complete authentication"), "{text}");
    let r = t
        .http
        .post(format!("{url}/authenticate"))
        .form(&[("action", "fail")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    assert!(r.text().await.unwrap().contains("failed authentication"));
    let (status, text) = pay("4242 4242 4242 4242").await;
    assert_eq!(status, 200);
    assert!(text.contains("This invoice has been paid"), "{text}");
    let got = t.get(&format!("/v1/invoices/{}", id(&inv))).await.body;
    assert_eq!(got["status"], "paid");
    assert_eq!(got["attempt_count"], 3);
}

#[tokio::test]
async fn idempotency_request_log_and_faults_cover_invoices() {
    let t = start().await;
    let customer = t.customer().await;
    let form = [("customer", customer.as_str()), ("description", "idem")];
    let a = t.post_idem("/v1/invoices", &form, "inv-key-1").await;
    let b = t.post_idem("/v1/invoices", &form, "inv-key-1").await;
    assert_eq!(a.body["id"], b.body["id"]);
    assert_eq!(b.headers["idempotent-replayed"], "true");
    let c = t
        .post_idem(
            "/v1/invoices",
            &[("customer", customer.as_str())],
            "inv-key-1",
        )
        .await;
    assert_eq!(c.err_type(), "idempotency_error");
    let invoice_id = id(&a.body);
    let i1 = t
        .post_idem(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("invoice", &invoice_id),
                ("amount", "10"),
            ],
            "ii-1",
        )
        .await;
    let i2 = t
        .post_idem(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("invoice", &invoice_id),
                ("amount", "10"),
            ],
            "ii-1",
        )
        .await;
    assert_eq!(i1.body["id"], i2.body["id"]);
    assert_eq!(
        t.get(&format!("/v1/invoices/{invoice_id}")).await.body["total"],
        10
    );
    // A declined pay (402) is replayed too, as Stripe does.
    let fails = t.customer().await;
    let pm = save_card(&t, &fails, "4000000000000341").await;
    let inv = draft(&t, &fails, &[("default_payment_method", &pm)]).await;
    item(&t, &fails, &id(&inv), &[("amount", "10")]).await;
    let p1 = t
        .post_idem(&format!("/v1/invoices/{}/pay", id(&inv)), &[], "pay-1")
        .await;
    let p2 = t
        .post_idem(&format!("/v1/invoices/{}/pay", id(&inv)), &[], "pay-1")
        .await;
    assert_eq!((p1.status, p2.status), (402, 402));
    assert_eq!(p2.headers["idempotent-replayed"], "true");
    assert_eq!(
        t.get(&format!("/v1/invoices/{}", id(&inv))).await.body["attempt_count"],
        1
    );
    // Request log.
    let log = t.emu.requests(0);
    assert!(
        log.iter()
            .any(|e| e.path == format!("/v1/invoices/{}/pay", id(&inv)) && e.status == 402)
    );
    // Faults on the invoice endpoints.
    t.ctl_post(
        "/_emulator/faults",
        json!({"method": "POST", "path": "/v1/invoices", "error": "500", "count": 1}),
    )
    .await;
    let r = t.post("/v1/invoices", &[("customer", &customer)]).await;
    assert_eq!(r.status, 500);
    let r = t.post("/v1/invoices", &[("customer", &customer)]).await;
    assert_eq!(r.status, 200);
}
