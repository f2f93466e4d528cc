//! v1 invoicing: pending lines → draft invoices → approval, the lifecycle's
//! actions, list filters, updates, and the refusals of what meterpay does
//! not do. Every response is asserted whole and validated against the v1
//! invoicing contract. (Issuing through Stripe end to end: `invoices_stripe`.)

use serde_json::{Value, json};

use crate::apps::install_stripe_app;
use crate::contract::{Spec, assert_request, assert_response};
use crate::customer_billing::{saved_card, stripe_customer};
use crate::customers_v3::customer;
use crate::harness::{Backend, Resp, TestApp};
use crate::support::{assert_problem, assert_rfc3339, assert_ulid, invalid_problem};

pub const INVOICES: &str = "/api/v1/billing/invoices";

/// An installed Stripe app, a default billing profile with `workflow`, and
/// a customer (`acme`), linked to a Stripe customer with a saved card when
/// `with_card`.
pub struct Setup {
    pub app_id: String,
    pub key: String,
    pub profile: Value,
    pub customer_id: String,
}

pub async fn setup(app: &TestApp, workflow: Value, with_card: bool) -> Setup {
    let (stripe_app, key, _) = install_stripe_app(app, false).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    let resp = app
        .post(
            "/api/v1/billing/profiles",
            json!({
                "name": "Invoicing", "supplier": {"name": "Meter Co"}, "default": true,
                "workflow": workflow,
                "apps": {"tax": app_id, "invoicing": app_id, "payment": app_id},
            }),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let profile = resp.body;
    let customer = customer(
        app,
        json!({"name": "ACME Inc.", "key": "acme", "primary_email": "billing@acme.example",
               "currency": "USD", "usage_attribution": {"subject_keys": ["acme-1"]}}),
    )
    .await;
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    if with_card {
        link_card(app, &key, &app_id, true).await;
    }
    Setup {
        app_id,
        key,
        profile,
        customer_id,
    }
}

/// Links `acme` to a new Stripe customer, with a saved default card when `card`.
pub async fn link_card(app: &TestApp, key: &str, app_id: &str, card: bool) {
    let cus = stripe_customer(app, key, "billing@acme.example").await;
    let mut data = json!({"type": "stripe", "id": app_id, "stripeCustomerId": cus});
    if card {
        data["stripeDefaultPaymentMethodId"] = json!(saved_card(app, key, &cus).await);
    }
    let resp = app.put("/api/v1/customers/acme/apps", json!([data])).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

pub fn pending_path(customer_id: &str) -> String {
    format!("/api/v1/billing/customers/{customer_id}/invoices/pending-lines")
}

/// The two lines most tests bill: a flat fee and graduated usage.
pub fn two_lines() -> Value {
    json!({"currency": "USD", "lines": [
        {"name": "Platform fee",
         "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
         "invoiceAt": "2026-11-01T00:00:00Z",
         "rateCard": {"price": {"type": "flat", "amount": "49.99", "paymentTerm": "in_arrears"}}},
        {"name": "API calls", "description": "Requests in October", "metadata": {"meter": "api"},
         "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
         "invoiceAt": "2026-11-01T00:00:00Z",
         "rateCard": {"price": {"type": "tiered", "mode": "graduated", "tiers": [
             {"upToAmount": "1000", "flatPrice": null, "unitPrice": {"type": "unit", "amount": "0.01"}},
             {"flatPrice": null, "unitPrice": {"type": "unit", "amount": "0.005"}}]}},
         "quantity": "1500.5"},
    ]})
}

pub async fn add_lines(app: &TestApp, customer_id: &str, body: Value) -> Resp {
    assert_request(Spec::V1Invoicing, "createPendingInvoiceLine", &body);
    let resp = app.post(&pending_path(customer_id), body).await;
    check(&resp, "createPendingInvoiceLine");
    resp
}

/// Validates a response against the v1 invoicing contract.
pub fn check(resp: &Resp, operation: &str) {
    assert_response(
        Spec::V1Invoicing,
        operation,
        resp.status,
        &resp.content_type,
        &resp.body,
    );
}

pub async fn invoice_lines(app: &TestApp, body: Value) -> Resp {
    assert_request(Spec::V1Invoicing, "invoicePendingLinesAction", &body);
    let resp = app.post(&format!("{INVOICES}/invoice"), body).await;
    check(&resp, "invoicePendingLinesAction");
    resp
}

pub async fn act(app: &TestApp, id: &str, action: &str) -> Resp {
    let resp = app
        .post(&format!("{INVOICES}/{id}/{action}"), json!({}))
        .await;
    check(&resp, &format!("{action}InvoiceAction"));
    resp
}

fn zero_totals(amount: &str) -> Value {
    json!({"amount": amount, "chargesTotal": "0", "discountsTotal": "0", "creditsTotal": "0",
           "taxesInclusiveTotal": "0", "taxesExclusiveTotal": "0", "taxesTotal": "0",
           "total": amount})
}

const OCTOBER: &str =
    r#"{"from": "2026-10-01T00:00:00.000000Z", "to": "2026-11-01T00:00:00.000000Z"}"#;

fn october() -> Value {
    serde_json::from_str(OCTOBER).unwrap()
}

/// The two lines of [`two_lines`] as an invoice shows them, with the ids and
/// times the server gave them (`actual`).
fn expected_two_lines(actual: &Value, invoice_id: &str, number: &str) -> Value {
    let lines = actual.as_array().expect("lines");
    assert_eq!(lines.len(), 2, "{actual}");
    let stamp = |i: usize| {
        (
            assert_ulid(&lines[i]["id"]),
            assert_rfc3339(&lines[i]["createdAt"]),
            assert_rfc3339(&lines[i]["updatedAt"]),
        )
    };
    let (id0, c0, u0) = stamp(0);
    let (id1, c1, u1) = stamp(1);
    let flat = json!({"type": "flat", "amount": "49.99", "paymentTerm": "in_arrears"});
    let tiered = json!({"type": "tiered", "mode": "graduated", "tiers": [
        {"upToAmount": "1000", "flatPrice": null, "unitPrice": {"type": "unit", "amount": "0.01"}},
        {"flatPrice": null, "unitPrice": {"type": "unit", "amount": "0.005"}}]});
    json!([
        {"id": id0, "name": "Platform fee", "createdAt": c0, "updatedAt": u0,
         "managedBy": "manual", "status": "valid",
         "invoice": {"id": invoice_id, "number": number}, "currency": "USD",
         "totals": zero_totals("49.99"), "period": october(),
         "invoiceAt": "2026-11-01T00:00:00.000000Z", "type": "usage_based",
         "price": flat, "rateCard": {"price": flat}},
        {"id": id1, "name": "API calls", "description": "Requests in October",
         "metadata": {"meter": "api"}, "createdAt": c1, "updatedAt": u1,
         "managedBy": "manual", "status": "valid",
         "invoice": {"id": invoice_id, "number": number}, "currency": "USD",
         // 1000 × 0.01 + 500.5 × 0.005 = 12.5025, rounded once to cents.
         "totals": zero_totals("12.5"), "period": october(),
         "invoiceAt": "2026-11-01T00:00:00.000000Z", "type": "usage_based",
         "price": tiered, "rateCard": {"price": tiered}, "quantity": "1500.5"},
    ])
}

/// An invoice of `s`'s customer as the API shows it; the server's ids and
/// times come from `actual`, everything else from the arguments.
fn expected_invoice(
    s: &Setup,
    actual: &Value,
    status: &str,
    details: Value,
    amount: &str,
    lines: Option<Value>,
) -> Value {
    let id = assert_ulid(&actual["id"]);
    let mut expected = json!({
        "id": id,
        "createdAt": assert_rfc3339(&actual["createdAt"]),
        "updatedAt": assert_rfc3339(&actual["updatedAt"]),
        "type": "standard",
        "supplier": {"name": "Meter Co"},
        "customer": {"id": s.customer_id, "key": "acme", "name": "ACME Inc.",
                     "usageAttribution": {"subjectKeys": ["acme-1"]}},
        "number": actual["number"],
        "currency": "USD",
        "totals": zero_totals(amount),
        "status": status,
        "statusDetails": details,
        "period": october(),
        "workflow": {
            "apps": {"tax": {"id": s.app_id}, "invoicing": {"id": s.app_id}, "payment": {"id": s.app_id}},
            "sourceBillingProfileId": s.profile["id"],
            "workflow": s.profile["workflow"],
        },
    });
    for member in [
        "draftUntil",
        "deletedAt",
        "issuedAt",
        "voidedAt",
        "validationIssues",
        "dueAt",
        "externalIds",
        // Set when Stripe's invoice.sent arrives (asynchronously).
        "sentToCustomerAt",
    ] {
        if let Some(value) = actual.get(member) {
            expected[member] = value.clone();
        }
    }
    if let Some(lines) = lines {
        expected["lines"] = lines;
    }
    expected
}

fn details(extended: &str, immutable: bool, actions: Value) -> Value {
    json!({"immutable": immutable, "failed": false, "extendedStatus": extended,
           "availableActions": actions})
}

const MANUAL: &str = r#"{"invoicing": {"autoAdvance": false}}"#;

fn manual() -> Value {
    serde_json::from_str(MANUAL).unwrap()
}

crate::both_backends!(
    pending_lines_become_a_draft_that_approval_sends_to_issuing,
    lines_of_two_currencies_make_two_drafts_and_lists_filter_them,
    a_draft_is_updated_and_its_totals_follow,
    drafts_are_deleted_not_voided,
    auto_approval_waits_for_the_draft_period,
    a_customer_without_a_payment_method_gets_validation_issues,
    what_meterpay_does_not_do_is_refused_by_name,
    issued_invoices_are_voided_and_failed_payments_retried,
    concurrent_requests_gather_on_one_invoice_and_invoice_each_line_once,
);

async fn pending_lines_become_a_draft_that_approval_sends_to_issuing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), true).await;

    // Pending lines gather on a new gathering invoice.
    let resp = add_lines(&app, &s.customer_id, two_lines()).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let gathering = &resp.body["invoice"];
    let gathering_id = assert_ulid(&gathering["id"]);
    let number = format!("GATHER-USD-{gathering_id}");
    assert_eq!(gathering["number"], number);
    let lines = expected_two_lines(&gathering["lines"], &gathering_id, &number);
    let expected_gathering = expected_invoice(
        &s,
        gathering,
        "gathering",
        details(
            "gathering",
            false,
            json!({"delete": {"resultingState": "deleted"}, "invoice": {}}),
        ),
        "62.49",
        Some(lines.clone()),
    );
    assert_eq!(
        resp.body,
        json!({"lines": lines, "invoice": expected_gathering, "isInvoiceNew": true})
    );

    // A second call gathers on the same invoice.
    let more = json!({"currency": "USD", "lines": [
        {"name": "Support", "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
         "invoiceAt": "2026-11-01T00:00:00Z",
         "price": {"type": "package", "amount": "100", "quantityPerPackage": "10"}, "quantity": "11"}]});
    let resp = add_lines(&app, &s.customer_id, more).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.body["isInvoiceNew"], json!(false));
    assert_eq!(resp.body["invoice"]["id"], json!(gathering_id));
    assert_eq!(resp.body["invoice"]["totals"], zero_totals("262.49"));
    assert_eq!(resp.body["lines"][0]["totals"], zero_totals("200"));
    let support_line = assert_ulid(&resp.body["lines"][0]["id"]);
    // Lists show what a gathering invoice allows without expanding its lines.
    let resp = app.get(&format!("{INVOICES}?statuses=gathering")).await;
    check(&resp, "listInvoices");
    assert!(resp.body["items"][0].get("lines").is_none());
    assert_eq!(
        resp.body["items"][0]["statusDetails"]["availableActions"],
        json!({"delete": {"resultingState": "deleted"}, "invoice": {}})
    );

    // Invoicing the two first lines makes a draft waiting for approval.
    let first = lines[0]["id"].clone();
    let second = lines[1]["id"].clone();
    let resp = invoice_lines(
        &app,
        json!({"customerId": s.customer_id, "filters": {"lineIds": [first, second]}}),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let draft = &resp.body[0];
    let draft_id = assert_ulid(&draft["id"]);
    let draft_number = format!("DRAFT-{draft_id}");
    assert_eq!(draft["number"], draft_number);
    let draft_lines = expected_two_lines(&draft["lines"], &draft_id, &draft_number);
    assert_eq!(draft_lines[0]["id"], first, "the lines keep their ids");
    let waiting = details(
        "draft.manual_approval_needed",
        false,
        json!({"approve": {"resultingState": "payment_processing.pending"},
               "delete": {"resultingState": "deleted"}}),
    );
    assert_eq!(
        resp.body,
        json!([expected_invoice(
            &s,
            draft,
            "draft",
            waiting.clone(),
            "62.49",
            Some(draft_lines.clone())
        )])
    );
    assert_eq!(draft["draftUntil"], draft["createdAt"], "draft period P0D");

    // The support line is still pending on the gathering invoice.
    let resp = app.get(&format!("{INVOICES}/{gathering_id}")).await;
    check(&resp, "getInvoice");
    assert_eq!(resp.body["totals"], zero_totals("200"));
    assert_eq!(resp.body["lines"][0]["id"], json!(support_line));

    // Approval issues the draft through Stripe, which charges the saved card
    // at once: the invoice takes Stripe's number, the lines their item ids.
    let resp = act(&app, &draft_id, "approve").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    let stripe_number = resp.body["number"].as_str().unwrap().to_owned();
    assert!(stripe_number.ends_with("-0001"), "{stripe_number}");
    let mut lines = expected_two_lines(&resp.body["lines"], &draft_id, &stripe_number);
    for (i, line) in resp.body["lines"].as_array().unwrap().iter().enumerate() {
        assert!(
            line["externalIds"]["invoicing"]
                .as_str()
                .unwrap()
                .starts_with("ii_")
        );
        lines[i]["externalIds"] = line["externalIds"].clone();
    }
    // Stripe's invoice, and where the customer sees it and its PDF.
    let stripe_id = resp.body["externalIds"]["invoicing"].as_str().unwrap();
    assert!(stripe_id.starts_with("in_"), "{}", resp.body);
    let stripe = app.emu.object(stripe_id).unwrap();
    assert_eq!(
        resp.body["externalIds"],
        json!({"invoicing": stripe_id, "hostedInvoiceUrl": stripe["hosted_invoice_url"],
               "invoicePdfUrl": stripe["invoice_pdf"]})
    );
    assert_rfc3339(&resp.body["issuedAt"]);
    assert_eq!(
        resp.body,
        expected_invoice(
            &s,
            &resp.body,
            "paid",
            details("paid", true, json!({})),
            "62.49",
            Some(lines),
        )
    );
    // Approving again does not apply.
    let resp = act(&app, &draft_id, "approve").await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "invoiceId", "source": "path", "rule": "invalid",
            "reason": format!("invoice [{draft_id}] is paid: approve does not apply (no action applies now)")}]),
        ),
    );

    // Invoicing without filters takes every due line: the support line; the
    // emptied gathering invoice is deleted.
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(resp.body.as_array().unwrap().len(), 1);
    assert_eq!(resp.body[0]["totals"], zero_totals("200"));
    let resp = app.get(&format!("{INVOICES}/{gathering_id}")).await;
    check(&resp, "getInvoice");
    assert_rfc3339(&resp.body["deletedAt"]);
    assert_eq!(
        resp.body["statusDetails"],
        json!({"immutable": true, "failed": false, "extendedStatus": "deleted", "availableActions": {}})
    );
    // Nothing is left to invoice.
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let detail = resp.problem()["invalid_parameters"][0]["reason"].clone();
    assert!(
        detail.as_str().unwrap().starts_with(&format!(
            "customer [{}] has no pending lines to invoice as of ",
            s.customer_id
        )),
        "{detail}"
    );
    assert_eq!(
        resp.problem()["invalid_parameters"][0]["field"],
        "customerId"
    );
}

async fn lines_of_two_currencies_make_two_drafts_and_lists_filter_them(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), true).await;
    let usd = add_lines(&app, &s.customer_id, two_lines()).await;
    assert_eq!(usd.status, 201, "{}", usd.body);
    // JPY rounds to its own minor unit; KWD to what Stripe charges (0.01).
    let jpy = add_lines(
        &app,
        &s.customer_id,
        json!({"currency": "JPY", "lines": [{"name": "Calls", "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
            "invoiceAt": "2026-11-01T00:00:00Z", "price": {"type": "unit", "amount": "0.5"}, "quantity": "5"}]}),
    )
    .await;
    assert_eq!(jpy.body["invoice"]["totals"], zero_totals("3"));
    let kwd = add_lines(
        &app,
        &s.customer_id,
        json!({"currency": "KWD", "lines": [{"name": "Calls", "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
            "invoiceAt": "2099-01-01T00:00:00Z", "price": {"type": "flat", "amount": "1.2345"}}]}),
    )
    .await;
    assert_eq!(kwd.body["invoice"]["totals"], zero_totals("1.23"));
    assert_eq!(
        kwd.body["invoice"]["statusDetails"]["availableActions"],
        json!({"delete": {"resultingState": "deleted"}}),
        "nothing due yet"
    );

    // Due lines of two currencies: two drafts; the KWD line is not due.
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let currencies: Vec<&str> = resp
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["currency"].as_str().unwrap())
        .collect();
    assert_eq!(currencies, ["JPY", "USD"]);

    let list = |query: String| {
        let app = &app;
        async move {
            let resp = app.get(&format!("{INVOICES}{query}")).await;
            check(&resp, "listInvoices");
            assert_eq!(resp.status, 200, "{query}: {}", resp.body);
            resp.body
        }
    };
    let list = |query: &str| list(query.to_owned());
    let ids = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["currency"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = list("").await;
    assert_eq!(all["totalCount"], 3);
    // Oldest first: the KWD gathering invoice, then the drafts.
    assert_eq!(ids(&all), ["KWD", "JPY", "USD"].map(str::to_owned));
    assert!(
        all["items"][0].get("lines").is_none(),
        "lines only with expand=lines"
    );
    let drafts = list("?statuses=draft&expand=lines").await;
    assert_eq!(ids(&drafts), ["JPY", "USD"].map(str::to_owned));
    assert_eq!(drafts["items"][1]["lines"].as_array().unwrap().len(), 2);
    assert_eq!(ids(&list("?statuses=gathering").await), ["KWD"]);
    assert_eq!(
        ids(&list("?extendedStatuses=draft.manual_approval_needed&order=DESC").await),
        ["USD", "JPY"]
    );
    assert_eq!(
        list(&format!("?customers={}", s.customer_id)).await["totalCount"],
        3
    );
    assert_eq!(
        list("?customers=01J00000000000000000000000").await["totalCount"],
        0
    );
    let page = list("?page=2&pageSize=2").await;
    assert_eq!(
        (
            page["totalCount"].clone(),
            page["page"].clone(),
            page["pageSize"].clone()
        ),
        (json!(3), json!(2), json!(2))
    );
    assert_eq!(ids(&page), ["USD"]);
    assert_eq!(
        list("?issuedAfter=2020-01-01T00:00:00Z").await["totalCount"],
        0,
        "nothing issued yet"
    );
    assert_eq!(
        list("?createdAfter=2020-01-01T00:00:00Z&createdBefore=2999-01-01T00:00:00Z").await["totalCount"],
        3
    );
    assert_eq!(
        ids(&list("?orderBy=periodStart&order=desc&statuses=draft&statuses=gathering").await).len(),
        3
    );

    let resp = app
        .get(&format!("{INVOICES}?statuses=sent&pageSize=0&colour=red"))
        .await;
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "statuses", "source": "query", "rule": "enum", "reason": "[sent] is not one of the allowed values",
             "choices": ["gathering", "draft", "issuing", "issued", "payment_processing", "overdue", "paid", "uncollectible", "voided"]},
            {"field": "pageSize", "source": "query", "rule": "min", "reason": "must be at least 1", "minimum": 1},
            {"field": "colour", "source": "query", "rule": "unknown_property",
             "reason": "is not a known query parameter; use statuses, extendedStatuses, customers, issuedAfter, issuedBefore, periodStartAfter, periodStartBefore, createdAfter, createdBefore, includeDeleted, expand, page, pageSize, order or orderBy"},
        ])),
    );
}

async fn a_draft_is_updated_and_its_totals_follow(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), true).await;
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let draft = resp.body[0].clone();
    let id = draft["id"].as_str().unwrap().to_owned();
    let kept = draft["lines"][1]["id"].clone();

    // Drop the flat fee, bill less usage, add a volume-priced line; switch
    // the invoice to send_invoice due after 14 days.
    let body = json!({
        "description": "October usage", "metadata": {"po": "4711"},
        "supplier": {"name": "Meter Co"}, "customer": {"name": "ACME Incorporated"},
        "workflow": {"workflow": {"invoicing": {"autoAdvance": false, "dueAfter": "P14D"},
                                  "payment": {"collectionMethod": "send_invoice"}}},
        "lines": [
            {"id": kept, "name": "API calls", "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
             "invoiceAt": "2026-11-01T00:00:00Z",
             "rateCard": {"price": {"type": "tiered", "mode": "graduated", "tiers": [
                 {"upToAmount": "1000", "flatPrice": null, "unitPrice": {"type": "unit", "amount": "0.01"}},
                 {"flatPrice": null, "unitPrice": {"type": "unit", "amount": "0.005"}}]}},
             "quantity": "100"},
            {"name": "Seats", "period": {"from": "2026-10-15T00:00:00Z", "to": "2026-11-15T00:00:00Z"},
             "invoiceAt": "2026-11-01T00:00:00Z",
             "rateCard": {"price": {"type": "tiered", "mode": "volume", "tiers": [
                 {"upToAmount": "10", "flatPrice": {"type": "flat", "amount": "5"}, "unitPrice": {"type": "unit", "amount": "3"}},
                 {"flatPrice": null, "unitPrice": {"type": "unit", "amount": "2.5"}}]}},
             "quantity": "12"},
        ],
    });
    assert_request(Spec::V1Invoicing, "updateInvoice", &body);
    let resp = app.put(&format!("{INVOICES}/{id}"), body).await;
    check(&resp, "updateInvoice");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let b = &resp.body;
    assert_eq!(b["description"], "October usage");
    assert_eq!(b["metadata"], json!({"po": "4711"}));
    assert_eq!(b["customer"]["name"], "ACME Incorporated");
    // 100 × 0.01 = 1; 12 × 2.5 = 30.
    assert_eq!(b["totals"], zero_totals("31"));
    assert_eq!(
        b["period"],
        json!({"from": "2026-10-01T00:00:00.000000Z", "to": "2026-11-15T00:00:00.000000Z"})
    );
    let names: Vec<&str> = b["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["API calls", "Seats"]);
    assert_eq!(b["lines"][0]["id"], kept);
    assert_eq!(b["lines"][0]["quantity"], "100");
    assert_eq!(
        b["workflow"]["workflow"]["payment"],
        json!({"collectionMethod": "send_invoice"})
    );
    assert_eq!(b["workflow"]["workflow"]["invoicing"]["dueAfter"], "P14D");
    assert_eq!(
        b["statusDetails"]["extendedStatus"],
        "draft.manual_approval_needed"
    );

    // The dropped line is gone unless asked for.
    let resp = app
        .get(&format!("{INVOICES}/{id}?includeDeletedLines=true"))
        .await;
    check(&resp, "getInvoice");
    assert_eq!(resp.body["lines"].as_array().unwrap().len(), 3);
    assert_rfc3339(&resp.body["lines"][0]["deletedAt"]);
    let resp = app.get(&format!("{INVOICES}/{id}?expand=preceding")).await;
    assert!(resp.body.get("lines").is_none(), "{}", resp.body);

    // A line of another invoice cannot be named; a draft keeps one line.
    let mut body = json!({"supplier": {}, "customer": {}, "workflow": {}, "lines": [
        {"id": "01J00000000000000000000000", "name": "X", "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
         "invoiceAt": "2026-11-01T00:00:00Z", "price": {"type": "flat", "amount": "1"}}]});
    let resp = app.put(&format!("{INVOICES}/{id}"), body.clone()).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "lines[0].id", "source": "body", "rule": "invalid",
            "reason": format!("[01J00000000000000000000000] is not a line of invoice [{id}]")}]),
        ),
    );
    body["lines"] = json!([]);
    let resp = app.put(&format!("{INVOICES}/{id}"), body).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "lines", "source": "body", "rule": "min_items", "minimum": 1,
            "reason": "a draft invoice needs at least one line; delete the invoice instead"}]),
        ),
    );
}

async fn drafts_are_deleted_not_voided(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), true).await;
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let id = resp.body[0]["id"].as_str().unwrap().to_owned();

    let void = json!({"action": {"percentage": 100, "action": {"type": "discard"}}, "reason": "duplicate"});
    assert_request(Spec::V1Invoicing, "voidInvoiceAction", &void);
    let resp = app.post(&format!("{INVOICES}/{id}/void"), void).await;
    check(&resp, "voidInvoiceAction");
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "invoiceId", "source": "path", "rule": "invalid",
            "reason": format!("invoice [{id}] is draft.manual_approval_needed: void does not apply (it allows approve, delete); a draft or gathering invoice is deleted, not voided")}]),
        ),
    );

    let resp = app.delete(&format!("{INVOICES}/{id}")).await;
    assert_eq!(resp.status, 204, "{}", resp.body);
    let resp = app.get(&format!("{INVOICES}/{id}")).await;
    check(&resp, "getInvoice");
    assert_rfc3339(&resp.body["deletedAt"]);
    assert_eq!(resp.body["status"], "draft");
    assert_eq!(resp.body["statusDetails"]["extendedStatus"], "deleted");
    assert_eq!(resp.body["lines"], json!([]), "its lines went with it");
    // Deleted invoices are listed only when asked for.
    assert_eq!(app.get(INVOICES).await.body["totalCount"], 0);
    assert_eq!(
        app.get(&format!("{INVOICES}?includeDeleted=true"))
            .await
            .body["totalCount"],
        2
    );
    let resp = app.delete(&format!("{INVOICES}/{id}")).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "invoiceId", "source": "path", "rule": "invalid",
            "reason": format!("invoice [{id}] is deleted: delete does not apply (no action applies now); only gathering and draft invoices can be changed or deleted (void an issued one)")}]),
        ),
    );
    // Unknown and malformed ids.
    let resp = app
        .delete(&format!("{INVOICES}/01J00000000000000000000000"))
        .await;
    assert_eq!(resp.status, 404, "{}", resp.body);
    let resp = app.get(&format!("{INVOICES}/nope")).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "invoiceId", "source": "path", "rule": "matches_regex",
            "reason": "[nope] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)"}]),
        ),
    );
}

async fn auto_approval_waits_for_the_draft_period(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(
        &app,
        json!({"invoicing": {"autoAdvance": true, "draftPeriod": "P1D"}}),
        true,
    )
    .await;
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let draft = &resp.body[0];
    let id = draft["id"].as_str().unwrap().to_owned();
    assert_eq!(
        draft["statusDetails"],
        details(
            "draft.waiting_auto_approval",
            false,
            json!({"approve": {"resultingState": "payment_processing.pending"},
                   "delete": {"resultingState": "deleted"}}),
        )
    );
    let created = time::OffsetDateTime::parse(
        draft["createdAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let until = time::OffsetDateTime::parse(
        draft["draftUntil"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(until - created, time::Duration::days(1));
    let resp = act(&app, &id, "advance").await;
    assert_eq!(resp.status, 400, "{}", resp.body);

    // A day later the draft period is over: advancing issues it.
    app.server
        .clock()
        .advance(time::Duration::days(1) + time::Duration::seconds(1));
    let resp = app.get(&format!("{INVOICES}/{id}")).await;
    assert_eq!(
        resp.body["statusDetails"]["availableActions"],
        json!({"advance": {"resultingState": "payment_processing.pending"},
               "approve": {"resultingState": "payment_processing.pending"},
               "delete": {"resultingState": "deleted"}})
    );
    let resp = act(&app, &id, "advance").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body["status"], "paid");
    assert_eq!(resp.body["statusDetails"], details("paid", true, json!({})));

    // With a zero draft period auto-approval is immediate.
    let s2 = s;
    let resp = app
        .put(
            &format!(
                "/api/v1/billing/profiles/{}",
                s2.profile["id"].as_str().unwrap()
            ),
            json!({"name": "Invoicing", "supplier": {"name": "Meter Co"}, "default": true,
                   "workflow": {"invoicing": {"autoAdvance": true, "draftPeriod": "P0D"}}}),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    add_lines(&app, &s2.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s2.customer_id})).await;
    assert_eq!(resp.body[0]["statusDetails"]["extendedStatus"], "paid");
}

async fn a_customer_without_a_payment_method_gets_validation_issues(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), false).await;
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let draft = &resp.body[0];
    let id = draft["id"].as_str().unwrap().to_owned();
    let issue = |code: &str, message: String, actual: &Value| {
        json!({"id": assert_ulid(&actual["id"]), "createdAt": assert_rfc3339(&actual["createdAt"]),
               "updatedAt": actual["createdAt"], "severity": "critical", "field": "customer",
               "code": code, "component": "app.stripe.invoiceCustomers.validate", "message": message})
    };
    let no_customer = format!(
        "customer [{}] has no Stripe customer in app [{}]: create a checkout session for it (which makes one and collects a payment method) or link an existing Stripe customer",
        s.customer_id, s.app_id
    );
    let invalid = details(
        "draft.invalid",
        false,
        json!({"delete": {"resultingState": "deleted"},
               "retry": {"resultingState": "draft.manual_approval_needed"}}),
    );
    let mut expected = expected_invoice(
        &s,
        draft,
        "draft",
        invalid.clone(),
        "62.49",
        Some(draft["lines"].clone()),
    );
    expected["validationIssues"] = json!([issue(
        "stripe_customer_missing",
        no_customer,
        &draft["validationIssues"][0]
    )]);
    assert_eq!(resp.body, json!([expected]));
    let resp = act(&app, &id, "approve").await;
    assert_eq!(resp.status, 400, "{}", resp.body);

    // A Stripe customer without a card: still invalid, for the card.
    link_card(&app, &s.key, &s.app_id, false).await;
    let resp = act(&app, &id, "retry").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body["statusDetails"], invalid);
    assert_eq!(
        resp.body["validationIssues"],
        json!([issue(
            "payment_method_missing",
            format!(
                "customer [{}] has no default payment method, which collection method charge_automatically needs: collect one with a checkout session",
                s.customer_id
            ),
            &resp.body["validationIssues"][0]
        )])
    );

    // With a card the retry passes validation.
    link_card(&app, &s.key, &s.app_id, true).await;
    let resp = act(&app, &id, "retry").await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp.body.get("validationIssues").is_none(), "{}", resp.body);
    assert_eq!(
        resp.body["statusDetails"]["extendedStatus"],
        "draft.manual_approval_needed"
    );
}

async fn what_meterpay_does_not_do_is_refused_by_name(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), true).await;
    let period = json!({"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"});
    let line = |extra: Value| {
        let mut l = json!({"name": "Usage", "period": period, "invoiceAt": "2026-11-01T00:00:00Z"});
        for (k, v) in extra.as_object().unwrap() {
            l[k] = v.clone();
        }
        l
    };
    let body = json!({"currency": "USD", "lines": [
        line(json!({"rateCard": {"price": {"type": "unit", "amount": "0.1"}}})),
        line(json!({"featureKey": "api_calls", "price": {"type": "unit", "amount": "0.1"}, "quantity": "3"})),
        line(json!({"rateCard": {"price": {"type": "unit", "amount": "0.1", "minimumAmount": "10"},
                                 "discounts": {"percentage": {"percentage": 10}}}, "quantity": "3"})),
        line(json!({"rateCard": {"price": {"type": "dynamic", "multiplier": "1.2"}}, "quantity": "3"})),
        line(json!({"rateCard": {"price": {"type": "flat", "amount": "5"}}, "quantity": "3"})),
        line(json!({"rateCard": {"price": {"type": "unit", "amount": "-1"}}, "quantity": "x"})),
    ]});
    assert_request(Spec::V1Invoicing, "createPendingInvoiceLine", &body);
    let resp = app.post(&pending_path(&s.customer_id), body).await;
    check(&resp, "createPendingInvoiceLine");
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "lines[0].quantity", "source": "body", "rule": "required",
             "reason": "is required with a usage-based price (unit, tiered, package): meterpay has no meters, so send the quantity to bill"},
            {"field": "lines[1].featureKey", "source": "body", "rule": "invalid",
             "reason": "meterpay has no meters or features: leave the feature key out and send the usage as quantity"},
            {"field": "lines[2].rateCard.discounts", "source": "body", "rule": "invalid",
             "reason": "discounts are not supported by meterpay; bill the discounted amount instead"},
            {"field": "lines[2].rateCard.price.minimumAmount", "source": "body", "rule": "invalid",
             "reason": "spend commitments (minimum and maximum amounts) are not supported by meterpay; bill the amount you computed instead"},
            {"field": "lines[3].rateCard.price.type", "source": "body", "rule": "invalid",
             "reason": "dynamic prices are not supported by meterpay (they multiply metered cost); use a unit price"},
            {"field": "lines[4].quantity", "source": "body", "rule": "unknown_property",
             "reason": "applies only to usage-based prices (unit, tiered, package); a flat price is charged once"},
            {"field": "lines[5].rateCard.price.amount", "source": "body", "rule": "invalid", "reason": "must not be negative"},
            {"field": "lines[5].quantity", "source": "body", "rule": "matches_regex",
             "reason": "[x] is not a decimal number such as 12.5 (a string, at most 18 digits before the point and 10 after)"},
        ])),
    );
    // Nothing was written.
    assert_eq!(app.get(INVOICES).await.body["totalCount"], 0);

    // Spend commitments of any price, tax codes and external tax providers.
    let body = json!({"currency": "USD", "lines": [
        line(json!({"rateCard": {"price": {"type": "tiered", "mode": "volume", "maximumAmount": "100",
            "tiers": [{"flatPrice": null, "unitPrice": {"type": "unit", "amount": "1"}}]}}, "quantity": "3"})),
        line(json!({"rateCard": {"price": {"type": "package", "amount": "1", "quantityPerPackage": "10",
            "minimumAmount": "5"}}, "quantity": "3"})),
        line(json!({"price": {"type": "flat", "amount": "5"},
            "taxConfig": {"behavior": "exclusive", "customInvoicing": {"code": "VAT20"}}})),
        line(json!({"price": {"type": "flat", "amount": "5"},
            "taxConfig": {"taxCodeId": "01J00000000000000000000000"}})),
    ]});
    assert_request(Spec::V1Invoicing, "createPendingInvoiceLine", &body);
    let resp = app.post(&pending_path(&s.customer_id), body).await;
    check(&resp, "createPendingInvoiceLine");
    let commitments = "spend commitments (minimum and maximum amounts) are not supported by \
                       meterpay; bill the amount you computed instead";
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "lines[0].rateCard.price.maximumAmount", "source": "body", "rule": "invalid",
             "reason": commitments},
            {"field": "lines[1].rateCard.price.minimumAmount", "source": "body", "rule": "invalid",
             "reason": commitments},
            {"field": "lines[2].taxConfig.customInvoicing", "source": "body", "rule": "invalid",
             "reason": "custom invoicing is not supported by meterpay (it invoices through Stripe)"},
            {"field": "lines[3].taxConfig.taxCodeId", "source": "body", "rule": "invalid",
             "reason": "tax code entities are not supported by meterpay; give stripe.code instead"},
        ])),
    );
    assert_eq!(app.get(INVOICES).await.body["totalCount"], 0);

    // Amounts are strings, currencies ISO codes.
    let resp = app
        .post(&pending_path(&s.customer_id), json!({"currency": "usd", "lines": [line(json!({"price": {"type": "flat", "amount": 5}}))]}))
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "lines[0].price.amount", "source": "body", "rule": "type",
            "reason": "invalid type: integer `5`, expected a string"}]),
        ),
    );
    let resp = app
        .post(
            &pending_path(&s.customer_id),
            json!({"currency": "USS", "lines": []}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "currency", "source": "body", "rule": "matches_regex", "reason": "[USS] is not an ISO 4217 currency code"},
            {"field": "lines", "source": "body", "rule": "min_items", "minimum": 1, "reason": "must hold at least one line"},
        ])),
    );

    // Progressive billing is not done.
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(
        &app,
        json!({"customerId": s.customer_id, "progressiveBillingOverride": true}),
    )
    .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "progressiveBillingOverride", "source": "body", "rule": "invalid",
            "reason": "progressive billing is not supported by meterpay: each line is invoiced whole (leave it out or give false)"}]),
        ),
    );
    let resp = app
        .post(&format!("{INVOICES}/invoice"), json!({"customerId": s.customer_id, "filters": {"lineIds": ["01J00000000000000000000000"]}, "asOf": "yesterday"}))
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "asOf", "source": "body", "rule": "is_date_time",
            "reason": "must be an RFC 3339 date-time such as 2023-01-01T01:01:01.001Z"}]),
        ),
    );
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id, "filters": {"lineIds": ["01J00000000000000000000000"]}})).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "filters.lineIds[0]", "source": "body", "rule": "invalid",
            "reason": format!("[01J00000000000000000000000] is not a pending line of customer [{}]", s.customer_id)}]),
        ),
    );

    // A partial void is refused by name (checked before the state).
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let id = resp.body[0]["id"].as_str().unwrap().to_owned();
    let resp = app
        .post(
            &format!("{INVOICES}/{id}/void"),
            json!({"action": {"percentage": 50, "action": {"type": "pending"}}, "reason": "x", "overrides": [{"lineId": id}]}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "action.percentage", "source": "body", "rule": "invalid", "reason": "meterpay voids whole invoices only: give 100"},
            {"field": "action.action.type", "source": "body", "rule": "invalid",
             "reason": "meterpay discards the lines of a voided invoice: give discard (bill again with new pending lines)"},
            {"field": "overrides", "source": "body", "rule": "invalid", "reason": "per-line void actions are not supported by meterpay; leave overrides out"},
        ])),
    );
}

/// Moves a stored invoice to `to` (what the Stripe sync and its webhooks do
/// once they land), as a test's stand-in for them.
async fn force_status(app: &TestApp, id: &str, to: meterpay::billing::invoice::ExtendedStatus) {
    let store = app.server.store();
    let id: meterpay::ids::InvoiceId = id.parse().unwrap();
    let mut invoice = store.require_invoice("default", id, false).await.unwrap();
    let from = invoice.status;
    invoice.status = to;
    assert_eq!(
        store.save_invoice("default", &invoice, from).await.unwrap(),
        meterpay::store::invoices::Changed::Yes
    );
}

async fn issued_invoices_are_voided_and_failed_payments_retried(backend: Backend) {
    use meterpay::billing::invoice::ExtendedStatus as S;
    let app = TestApp::start(backend).await;
    // Sent invoices: Stripe charges nothing, so they wait in payment processing.
    // (Failed payments and their retry: `invoices_stripe`.)
    let s = setup(
        &app,
        json!({"invoicing": {"autoAdvance": false},
               "payment": {"collectionMethod": "send_invoice"}}),
        true,
    )
    .await;
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let id = resp.body[0]["id"].as_str().unwrap().to_owned();
    act(&app, &id, "approve").await;

    // Voiding an issued invoice: voided, with the time, nothing left to do.
    let void = json!({"action": {"percentage": 100, "action": {"type": "discard"}}, "reason": "duplicate"});
    let resp = app
        .post(&format!("{INVOICES}/{id}/void"), void.clone())
        .await;
    check(&resp, "voidInvoiceAction");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let mut expected = expected_invoice(
        &s,
        &resp.body,
        "voided",
        details("voided", true, json!({})),
        "62.49",
        Some(resp.body["lines"].clone()),
    );
    // (`updatedAt` may be later: Stripe's invoice.sent can arrive in between.)
    expected["voidedAt"] = json!(assert_rfc3339(&resp.body["voidedAt"]));
    assert_eq!(resp.body, expected);
    let resp = app.post(&format!("{INVOICES}/{id}/void"), void).await;
    assert_eq!(resp.status, 400, "{}", resp.body);

    // An overdue invoice is retried, not voided (as upstream).
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let second = resp.body[0]["id"].as_str().unwrap().to_owned();
    act(&app, &second, "approve").await;
    force_status(&app, &second, S::Overdue).await;
    let resp = app.get(&format!("{INVOICES}/{second}")).await;
    assert_eq!(
        resp.body["statusDetails"]["availableActions"],
        json!({"retry": {"resultingState": "payment_processing.pending"}})
    );

    // The background worker's lease: one owner at a time until it expires.
    let store = app.server.store();
    let invoice: meterpay::ids::InvoiceId = second.parse().unwrap();
    let now = meterpay::timestamp::now();
    let until = now + time::Duration::minutes(5);
    assert!(store.claim_invoice(invoice, "a", until, now).await.unwrap());
    assert!(!store.claim_invoice(invoice, "b", until, now).await.unwrap());
    assert!(
        store
            .claim_invoice(invoice, "b", until, until + time::Duration::seconds(1))
            .await
            .unwrap()
    );
    store.release_invoice(invoice, "a").await.unwrap();
    assert!(
        !store.claim_invoice(invoice, "a", until, now).await.unwrap(),
        "only the owner releases"
    );
    store.release_invoice(invoice, "b").await.unwrap();
    assert!(store.claim_invoice(invoice, "a", until, now).await.unwrap());
}

async fn concurrent_requests_gather_on_one_invoice_and_invoice_each_line_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), true).await;
    let post_all = |path: String, body: Value, n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let client = app.client.clone();
                let url = format!("{}{}", app.base, path);
                let body = body.clone();
                tokio::spawn(async move {
                    let resp = client.post(url).json(&body).send().await.unwrap();
                    let status = resp.status().as_u16();
                    (status, resp.json::<Value>().await.unwrap())
                })
            })
            .collect();
        async move {
            let mut out = Vec::new();
            for task in tasks {
                out.push(task.await.unwrap());
            }
            out
        }
    };
    let results = post_all(pending_path(&s.customer_id), two_lines(), 10).await;
    let invoices: std::collections::BTreeSet<String> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 201, "{body}");
            body["invoice"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(invoices.len(), 1, "one gathering invoice");
    assert_eq!(
        results
            .iter()
            .filter(|(_, b)| b["isInvoiceNew"] == json!(true))
            .count(),
        1
    );

    let results = post_all(
        format!("{INVOICES}/invoice"),
        json!({"customerId": s.customer_id}),
        5,
    )
    .await;
    let made: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(made.len(), 1, "{results:?}");
    assert_eq!(made[0][0]["totals"]["total"], "624.9");
    assert_eq!(made[0][0]["lines"].as_array().unwrap().len(), 20);
    for (status, body) in results.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(*status, 400, "{body}");
    }
}
