//! Invoices through Stripe, end to end against the emulator: issuing makes
//! exactly one Stripe invoice with one item per line, Stripe charges the
//! saved card, and Stripe's webhooks move the invoice to paid, failed,
//! action required or overdue. Every meterpay response is validated against
//! the v1 invoicing contract.

use serde_json::{Value, json};

use crate::contract::{Spec, assert_response};
use crate::customer_billing::stripe_customer;
use crate::harness::{Backend, TestApp, created_objects};
use crate::invoices_v1::{INVOICES, act, add_lines, check, invoice_lines, setup, two_lines};
use crate::webhooks::{pay, wait_for};

crate::both_backends!(
    a_saved_card_pays_the_invoice_and_stripe_holds_exactly_what_was_billed,
    a_declined_card_fails_and_a_new_card_pays_on_retry,
    authentication_on_the_hosted_invoice_page_pays,
    a_sent_invoice_becomes_overdue_when_stripes_clock_passes_the_due_date,
    voiding_an_issued_invoice_voids_it_in_stripe,
    the_worker_issues_after_the_draft_period,
    a_sync_interrupted_by_stripe_resumes_without_duplicates,
    lines_bill_to_the_unit_stripe_charges_in_their_currency,
);

const MANUAL: &str = r#"{"invoicing": {"autoAdvance": false}}"#;

fn manual() -> Value {
    serde_json::from_str(MANUAL).unwrap()
}

/// Saves `card` for `acme` through a setup-mode session in the emulator and
/// links it as the default of a new Stripe customer.
pub async fn card_on_file(app: &TestApp, key: &str, app_id: &str, card: &str) -> (String, String) {
    let cus = stripe_customer(app, key, "billing@acme.example").await;
    let pm = crate::harness::save_card(app, key, &cus, card, true).await;
    let data = json!([{"type": "stripe", "id": app_id, "stripeCustomerId": cus,
                       "stripeDefaultPaymentMethodId": pm}]);
    let resp = app.put("/api/v1/customers/acme/apps", data).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    (cus, pm)
}

/// Pending lines → one draft → approved; returns the approve response's body.
async fn approved(app: &TestApp, customer_id: &str) -> Value {
    add_lines(app, customer_id, two_lines()).await;
    let resp = invoice_lines(app, json!({"customerId": customer_id})).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let id = resp.body[0]["id"].as_str().unwrap().to_owned();
    let resp = act(app, &id, "approve").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.body
}

async fn get(app: &TestApp, id: &str) -> Value {
    let resp = app.get(&format!("{INVOICES}/{id}")).await;
    check(&resp, "getInvoice");
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.body
}

/// Waits until the invoice's extended status is `status` (webhooks arrive
/// asynchronously), then returns it.
async fn reaches(app: &TestApp, id: &str, status: &str) -> Value {
    for _ in 0..100 {
        let body = get(app, id).await;
        if body["statusDetails"]["extendedStatus"] == status {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let deliveries: Vec<String> = app
        .emu
        .webhook_deliveries()
        .iter()
        .map(|d| format!("{} {:?} {:?}", d.event_type, d.status, d.error))
        .collect();
    panic!(
        "invoice {id} never reached {status}: {}\ndeliveries: {deliveries:#?}",
        get(app, id).await
    );
}

/// The Stripe requests of a kind the emulator received.
fn stripe_requests(
    app: &TestApp,
    method: &str,
    path_prefix: &str,
) -> Vec<stripe_emulator::RequestLogEntry> {
    app.emu
        .requests(0)
        .into_iter()
        .filter(|r| r.method == method && r.path.starts_with(path_prefix) && r.status == 200)
        .collect()
}

async fn a_saved_card_pays_the_invoice_and_stripe_holds_exactly_what_was_billed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), false).await;
    let (cus, pm) = card_on_file(&app, &s.key, &s.app_id, "4242424242424242").await;
    let invoice = approved(&app, &s.customer_id).await;
    let id = invoice["id"].as_str().unwrap().to_owned();

    // Approval issued it in Stripe and the payment went through at once.
    assert_eq!(
        invoice["statusDetails"],
        json!({"immutable": true, "failed": false, "extendedStatus": "paid", "availableActions": {}})
    );
    assert_eq!(invoice["status"], "paid");
    let stripe_id = invoice["externalIds"]["invoicing"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(stripe_id.starts_with("in_"), "{invoice}");
    let stripe = app.emu.object(&stripe_id).unwrap();
    assert_eq!(invoice["number"], stripe["number"]);
    // Where the customer sees the invoice (and pays it, were it not paid) and its PDF.
    assert_eq!(
        invoice["externalIds"],
        json!({"invoicing": stripe_id, "hostedInvoiceUrl": stripe["hosted_invoice_url"],
               "invoicePdfUrl": stripe["invoice_pdf"]})
    );
    assert!(
        stripe["hosted_invoice_url"]
            .as_str()
            .is_some_and(|url| url.starts_with("http")),
        "{stripe}"
    );
    assert!(invoice["issuedAt"].is_string());
    assert!(invoice.get("validationIssues").is_none(), "{invoice}");
    for (i, line) in invoice["lines"].as_array().unwrap().iter().enumerate() {
        assert!(
            line["externalIds"]["invoicing"]
                .as_str()
                .unwrap()
                .starts_with("ii_"),
            "line {i}: {line}"
        );
    }

    // Exactly one Stripe invoice with one item per line, in cents, with
    // meterpay's ids, charged to the saved card.
    let invoices = stripe_requests(&app, "POST", "/v1/invoices");
    let created: Vec<_> = invoices
        .iter()
        .filter(|r| r.path == "/v1/invoices")
        .collect();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].params,
        json!({"customer": cus, "currency": "usd", "auto_advance": "false",
               // The profile enables tax; Stripe cannot place a customer without an
               // address, and as tax is not enforced the invoice goes out without it.
               "automatic_tax": {"enabled": "true"},
               "collection_method": "charge_automatically", "default_payment_method": pm,
               "pending_invoice_items_behavior": "exclude",
               "metadata": {"meterpay_namespace": "default", "meterpay_app_id": s.app_id,
                            "meterpay_customer_id": s.customer_id, "meterpay_invoice_id": id}})
    );
    assert_eq!(
        created[0].idempotency_key.as_deref(),
        Some(format!("meterpay-invoice-{id}").as_str())
    );
    let items = stripe_requests(&app, "POST", "/v1/invoiceitems");
    let lines = invoice["lines"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for (item, (line, amount)) in items.iter().zip(lines.iter().zip(["4999", "1250"])) {
        let line_id = line["id"].as_str().unwrap();
        assert_eq!(item.params["amount"], amount);
        assert_eq!(item.params["invoice"], json!(stripe_id));
        assert_eq!(item.params["currency"], "usd");
        assert_eq!(
            item.params["metadata"],
            json!({"meterpay_invoice_id": id, "meterpay_invoice_line_id": line_id})
        );
        assert_eq!(
            item.idempotency_key.as_deref(),
            Some(format!("meterpay-invoice-{id}-line-{line_id}").as_str())
        );
    }
    assert_eq!(
        (
            stripe["status"].clone(),
            stripe["amount_paid"].clone(),
            stripe["total"].clone()
        ),
        (json!("paid"), json!(6249), json!(6249))
    );

    // Stripe's invoice.paid arrives after; it changes nothing, once.
    wait_for("invoice.paid delivered", || {
        app.emu
            .webhook_deliveries()
            .iter()
            .any(|d| d.event_type == "invoice.paid" && d.succeeded)
    })
    .await;
    let now = get(&app, &id).await;
    assert_eq!(now["statusDetails"], invoice["statusDetails"]);
    assert_eq!(now["updatedAt"], invoice["updatedAt"]);
}

async fn a_declined_card_fails_and_a_new_card_pays_on_retry(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), false).await;
    let (cus, declined) = card_on_file(&app, &s.key, &s.app_id, "4000000000000341").await;
    let invoice = approved(&app, &s.customer_id).await;
    let id = invoice["id"].as_str().unwrap().to_owned();
    assert_eq!(
        invoice["statusDetails"],
        json!({"immutable": true, "failed": true, "extendedStatus": "payment_processing.failed",
               "availableActions": {"retry": {"resultingState": "payment_processing.pending"},
                                    "void": {"resultingState": "voided"}}})
    );
    // Why it was not paid, in Stripe's words.
    let issues = invoice["validationIssues"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{invoice}");
    assert_eq!(
        (
            issues[0]["severity"].clone(),
            issues[0]["code"].clone(),
            issues[0]["component"].clone()
        ),
        (
            json!("warning"),
            json!("payment_failed"),
            json!("app.stripe.payment")
        )
    );
    assert_eq!(
        issues[0]["message"],
        "Stripe could not charge the payment method: Your card was declined. (card_declined)"
    );

    // The customer saves a new card through meterpay's own checkout session
    // (Stripe's hosted page, as a browser submits it); Stripe's webhook makes
    // it the default, in meterpay and in Stripe.
    let resp = app
        .post(
            &format!(
                "/api/v3/openmeter/customers/{}/billing/stripe/checkout-sessions",
                s.customer_id
            ),
            json!({"stripe_options": {"success_url": "https://app.example/ok"}}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.body["stripe_customer_id"], json!(cus));
    let status = pay(resp.body["url"].as_str().unwrap(), "4242424242424242").await;
    assert!(
        (300..400).contains(&status),
        "hosted page answered {status}"
    );
    let pm = new_default(&app, &declined).await;
    assert_eq!(
        app.emu.object(&cus).unwrap()["invoice_settings"]["default_payment_method"],
        json!(pm)
    );
    let resp = act(&app, &id, "retry").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body["statusDetails"]["extendedStatus"], "paid");
    assert!(resp.body.get("validationIssues").is_none(), "{}", resp.body);
    assert_eq!(
        stripe_requests(&app, "POST", "/v1/invoices")
            .iter()
            .filter(|r| r.path == "/v1/invoices")
            .count(),
        1
    );
    // Stripe's invoice was paid, once, with the new card: the retry named it.
    let stripe_id = invoice["externalIds"]["invoicing"].as_str().unwrap();
    let stripe = app.emu.object(stripe_id).unwrap();
    assert_eq!(
        (stripe["status"].clone(), stripe["amount_paid"].clone()),
        (json!("paid"), json!(6249))
    );
    let retry = stripe_requests(&app, "POST", &format!("/v1/invoices/{stripe_id}/pay"));
    assert_eq!(retry.len(), 1, "one successful pay");
    assert_eq!(
        retry[0].params,
        json!({"off_session": "true", "payment_method": pm})
    );
    let charged: Vec<Value> = app
        .emu
        .events()
        .into_iter()
        .filter(|e| e["type"] == "charge.succeeded")
        .map(|e| e["data"]["object"]["payment_method"].clone())
        .collect();
    assert_eq!(charged, [json!(pm)]);
}

/// The customer's default payment method in meterpay once the checkout's
/// webhook changed it from `old`.
async fn new_default(app: &TestApp, old: &str) -> String {
    for _ in 0..100 {
        let body = app.get("/api/v1/customers/acme/stripe").await.body;
        if let Some(pm) = body["stripeDefaultPaymentMethodId"].as_str()
            && pm != old
        {
            return pm.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the checkout's webhook never made a new default payment method");
}

async fn authentication_on_the_hosted_invoice_page_pays(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), false).await;
    card_on_file(&app, &s.key, &s.app_id, "4000002760003184").await;
    let invoice = approved(&app, &s.customer_id).await;
    let id = invoice["id"].as_str().unwrap().to_owned();
    assert_eq!(
        invoice["statusDetails"]["extendedStatus"],
        "payment_processing.action_required"
    );
    // meterpay returns where the customer authenticates: Stripe's hosted
    // invoice page, also named by the validation issue.
    let stripe_id = invoice["externalIds"]["invoicing"].as_str().unwrap();
    let stripe = app.emu.object(stripe_id).unwrap();
    let hosted = invoice["externalIds"]["hostedInvoiceUrl"]
        .as_str()
        .expect("hosted invoice URL")
        .to_owned();
    assert_eq!(json!(hosted), stripe["hosted_invoice_url"]);
    let issue = &invoice["validationIssues"][0];
    assert_eq!(issue["code"], "payment_action_required");
    assert!(
        issue["message"].as_str().unwrap().ends_with(&hosted),
        "{issue}"
    );
    // v3's invoice has no member for the page: the payment's issue names it.
    let v3 = app
        .get(&format!("/api/v3/openmeter/billing/invoices/{id}"))
        .await;
    assert_response(
        Spec::V3Invoicing,
        "get-invoice",
        v3.status,
        &v3.content_type,
        &v3.body,
    );
    assert_eq!(
        v3.body["validation_issues"],
        json!([{"code": "payment_action_required", "message": issue["message"],
                "severity": "warning",
                "attributes": {"component": "app.stripe.payment", "hosted_invoice_url": hosted}}])
    );

    // The customer opens the page, as a browser does, and completes the
    // 3-D Secure step it shows; Stripe's invoice.paid moves the invoice.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser.get(&hosted).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let (action, fields) = form_with_button(&html, "complete-auth");
    let target = reqwest::Url::parse(&hosted).unwrap().join(&action).unwrap();
    let done = browser.post(target).form(&fields).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let html = done.text().await.unwrap();
    assert!(html.contains(r#"id="paid""#), "{html}");
    let paid = reaches(&app, &id, "paid").await;
    assert_eq!(paid["status"], "paid");
    assert!(paid.get("validationIssues").is_none(), "{paid}");
    assert_eq!(paid["externalIds"]["hostedInvoiceUrl"], json!(hosted));
    assert_eq!(app.emu.object(stripe_id).unwrap()["status"], "paid");
}

/// The `action` and the fields of the HTML form holding the button `button_id`,
/// as a browser reads them (hidden inputs and the button's own name/value).
fn form_with_button(html: &str, button_id: &str) -> (String, Vec<(String, String)>) {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let at = tag.find(&key)? + key.len();
        Some(tag[at..].split('"').next()?.replace("&amp;", "&"))
    };
    for form in html.split("<form").skip(1) {
        let form = form.split("</form>").next().unwrap_or_default();
        if !form.contains(&format!("id=\"{button_id}\"")) {
            continue;
        }
        let open = form.split('>').next().unwrap_or_default();
        let action = attr(open, "action").expect("form action");
        let fields = form
            .split('<')
            .filter(|tag| tag.starts_with("input") || tag.starts_with("button"))
            .filter_map(|tag| Some((attr(tag, "name")?, attr(tag, "value").unwrap_or_default())))
            .collect();
        return (action, fields);
    }
    panic!("no form with button {button_id} on the page:\n{html}");
}

async fn a_sent_invoice_becomes_overdue_when_stripes_clock_passes_the_due_date(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(
        &app,
        json!({"invoicing": {"autoAdvance": false, "dueAfter": "P7D"},
               "payment": {"collectionMethod": "send_invoice"}}),
        false,
    )
    .await;
    card_on_file(&app, &s.key, &s.app_id, "4242424242424242").await;
    let invoice = approved(&app, &s.customer_id).await;
    let id = invoice["id"].as_str().unwrap().to_owned();
    assert_eq!(
        invoice["statusDetails"]["extendedStatus"],
        "payment_processing.pending"
    );
    let stripe_id = invoice["externalIds"]["invoicing"].as_str().unwrap();
    let stripe = app.emu.object(stripe_id).unwrap();
    assert_eq!(stripe["collection_method"], "send_invoice");
    assert!(invoice["dueAt"].is_string(), "{invoice}");
    // No charge was attempted: the customer pays the sent invoice.
    assert!(stripe_requests(&app, "POST", &format!("/v1/invoices/{stripe_id}/pay")).is_empty());

    app.emu.advance_clock(8 * 86_400);
    let overdue = reaches(&app, &id, "overdue").await;
    assert_eq!(overdue["status"], "overdue");
}

async fn voiding_an_issued_invoice_voids_it_in_stripe(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(
        &app,
        json!({"invoicing": {"autoAdvance": false, "dueAfter": "P7D"},
               "payment": {"collectionMethod": "send_invoice"}}),
        false,
    )
    .await;
    card_on_file(&app, &s.key, &s.app_id, "4242424242424242").await;
    let invoice = approved(&app, &s.customer_id).await;
    let id = invoice["id"].as_str().unwrap().to_owned();
    let void = json!({"action": {"percentage": 100, "action": {"type": "discard"}}, "reason": "duplicate"});
    let resp = app.post(&format!("{INVOICES}/{id}/void"), void).await;
    check(&resp, "voidInvoiceAction");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body["statusDetails"]["extendedStatus"], "voided");
    let stripe_id = invoice["externalIds"]["invoicing"].as_str().unwrap();
    assert_eq!(app.emu.object(stripe_id).unwrap()["status"], "void");
    // Stripe's invoice.voided arrives after and changes nothing.
    wait_for("invoice.voided delivered", || {
        app.emu
            .webhook_deliveries()
            .iter()
            .any(|d| d.event_type == "invoice.voided" && d.succeeded)
    })
    .await;
    let after = get(&app, &id).await;
    assert_eq!(
        (&after["statusDetails"], &after["voidedAt"]),
        (&resp.body["statusDetails"], &resp.body["voidedAt"])
    );
}

async fn the_worker_issues_after_the_draft_period(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(
        &app,
        json!({"invoicing": {"autoAdvance": true, "draftPeriod": "P1D"}}),
        false,
    )
    .await;
    card_on_file(&app, &s.key, &s.app_id, "4242424242424242").await;
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let id = resp.body[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        resp.body[0]["statusDetails"]["extendedStatus"],
        "draft.waiting_auto_approval"
    );
    // Within the draft period the worker leaves it alone.
    assert_eq!(app.server.work_invoices_once().await.unwrap(), 0);
    assert!(created_objects(&app, "invoice").is_empty());
    app.server
        .clock()
        .advance(time::Duration::days(1) + time::Duration::seconds(1));
    assert_eq!(app.server.work_invoices_once().await.unwrap(), 1);
    assert_eq!(
        get(&app, &id).await["statusDetails"]["extendedStatus"],
        "paid"
    );
    assert_eq!(app.server.work_invoices_once().await.unwrap(), 0);
    assert_eq!(created_objects(&app, "invoice").len(), 1);
}

async fn a_sync_interrupted_by_stripe_resumes_without_duplicates(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), false).await;
    card_on_file(&app, &s.key, &s.app_id, "4242424242424242").await;
    // Stripe stops answering after the invoice and its first item were made
    // (the responses are lost: the item exists, meterpay never heard of it).
    app.emu.set_faults(vec![
        "POST /v1/invoiceitems:error=drop_after,count=1"
            .parse()
            .unwrap(),
        "POST /v1/invoiceitems:error=500,count=10".parse().unwrap(),
    ]);
    let invoice = approved(&app, &s.customer_id).await;
    let id = invoice["id"].as_str().unwrap().to_owned();
    assert_eq!(
        invoice["statusDetails"]["extendedStatus"],
        "issuing.syncing"
    );
    assert!(invoice["externalIds"]["invoicing"].is_string(), "{invoice}");
    app.emu.clear_faults();
    // The worker resumes once the retry time has come.
    assert_eq!(app.server.work_invoices_once().await.unwrap(), 0);
    app.server.clock().advance(time::Duration::minutes(2));
    assert_eq!(app.server.work_invoices_once().await.unwrap(), 1);
    let done = get(&app, &id).await;
    assert_eq!(done["statusDetails"]["extendedStatus"], "paid", "{done}");
    // One Stripe invoice, each line billed once.
    assert_eq!(created_objects(&app, "invoice").len(), 1);
    let items = created_objects(&app, "invoiceitem");
    assert_eq!(items.len(), 2, "{items:?}");
    let stripe = app
        .emu
        .object(done["externalIds"]["invoicing"].as_str().unwrap())
        .unwrap();
    assert_eq!(stripe["total"], 6249);
}

/// Where Stripe's minor unit is not ISO 4217's, a line is billed to what
/// Stripe charges exactly (half away from zero), so the invoice says what is
/// charged and its sync never fails on the amount.
async fn lines_bill_to_the_unit_stripe_charges_in_their_currency(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), false).await;
    card_on_file(&app, &s.key, &s.app_id, "4242424242424242").await;
    // (currency, the flat price, the line's amount, Stripe's amount)
    let cases = [
        // Zero-decimal in Stripe, two decimals in ISO 4217.
        ("MGA", "10.5", "11", 11),
        // Zero-decimal in both; Stripe's amounts keep two decimals for ISK.
        ("ISK", "5.5", "6", 600),
        ("UGX", "1500.5", "1501", 1501),
        // Three decimals in both; Stripe's last digit is 0.
        ("KWD", "1.235", "1.24", 1240),
        // Three decimals in ISO 4217, two in Stripe.
        ("IQD", "1.2345", "1.23", 123),
        // The same in both.
        ("HUF", "10.455", "10.46", 1046),
        ("JPY", "2.5", "3", 3),
    ];
    for (currency, price, billed, charged) in cases {
        let resp = add_lines(
            &app,
            &s.customer_id,
            json!({"currency": currency, "lines": [{"name": "Usage",
                "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
                "invoiceAt": "2026-11-01T00:00:00Z",
                "rateCard": {"price": {"type": "flat", "amount": price, "paymentTerm": "in_arrears"}}}]}),
        )
        .await;
        assert_eq!(resp.status, 201, "{currency}: {}", resp.body);
        assert_eq!(
            resp.body["lines"][0]["totals"]["amount"], billed,
            "{currency}"
        );
        assert_eq!(
            resp.body["invoice"]["totals"]["amount"], billed,
            "{currency}"
        );
        let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
        assert_eq!(resp.status, 201, "{currency}: {}", resp.body);
        let id = resp.body[0]["id"].as_str().unwrap().to_owned();
        let resp = act(&app, &id, "approve").await;
        assert_eq!(resp.status, 200, "{currency}: {}", resp.body);
        assert_eq!(
            (
                &resp.body["statusDetails"]["extendedStatus"],
                &resp.body["totals"]["amount"]
            ),
            (&json!("paid"), &json!(billed)),
            "{currency}: {}",
            resp.body
        );
        let stripe = app
            .emu
            .object(resp.body["externalIds"]["invoicing"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            (
                &stripe["currency"],
                &stripe["total"],
                &stripe["amount_paid"]
            ),
            (
                &json!(currency.to_ascii_lowercase()),
                &json!(charged),
                &json!(charged)
            ),
            "{currency}"
        );
    }
}
