//! v3 invoices: the invoices made through v1's pending lines, seen, listed,
//! updated and moved through v3's names, validated against the v3
//! invoicing contract.

use serde_json::{Value, json};

use crate::contract::{Spec, assert_response};
use crate::harness::{Backend, Resp, TestApp};
use crate::invoices_v1::{Setup, add_lines, invoice_lines, setup, two_lines};
use crate::support::{assert_problem, assert_rfc3339, assert_ulid, invalid_problem, problem_of};

const INVOICES: &str = "/api/v3/openmeter/billing/invoices";

fn check(resp: &Resp, operation: &str) {
    assert_response(
        Spec::V3Invoicing,
        operation,
        resp.status,
        &resp.content_type,
        &resp.body,
    );
}

fn totals(amount: &str) -> Value {
    json!({"amount": amount, "taxes_total": "0", "taxes_inclusive_total": "0",
           "taxes_exclusive_total": "0", "charges_total": "0", "discounts_total": "0",
           "credits_total": "0", "total": amount})
}

fn october() -> Value {
    json!({"from": "2026-10-01T00:00:00.000000Z", "to": "2026-11-01T00:00:00.000000Z"})
}

/// The draft of [`two_lines`] as v3 shows it (the server's ids and times from `actual`).
fn expected_draft(s: &Setup, actual: &Value, details: Value, with_lines: bool) -> Value {
    let id = assert_ulid(&actual["id"]);
    let mut expected = json!({
        "id": id,
        "created_at": assert_rfc3339(&actual["created_at"]),
        "updated_at": assert_rfc3339(&actual["updated_at"]),
        "number": format!("DRAFT-{id}"),
        "currency": "USD",
        "supplier": {"name": "Meter Co"},
        "customer": {"id": s.customer_id, "name": "ACME Inc.", "key": "acme",
                     "usage_attribution": {"subject_keys": ["acme-1"]}},
        "totals": totals("62.49"),
        "service_period": october(),
        "type": "standard",
        "status": "draft",
        "status_details": details,
        "draft_until": actual["created_at"],
        "workflow": {
            "apps": {"tax": {"id": s.app_id}, "invoicing": {"id": s.app_id}, "payment": {"id": s.app_id}},
            "source_billing_profile": {"id": s.profile["id"]},
            "workflow": {"invoicing": {"auto_advance": false, "draft_period": "P0D"},
                         "payment": {"collection_method": "charge_automatically"}},
        },
    });
    if with_lines {
        let lines = actual["lines"].as_array().expect("lines");
        let stamp = |i: usize, member: &str| assert_rfc3339(&lines[i][member]);
        expected["lines"] = json!([
            {"id": assert_ulid(&lines[0]["id"]), "name": "Platform fee",
             "created_at": stamp(0, "created_at"), "updated_at": stamp(0, "updated_at"),
             "type": "standard_line", "lifecycle_controller": "manual",
             "service_period": october(), "totals": totals("49.99"),
             "rate_card": {"price": {"type": "flat", "amount": "49.99"}}, "detailed_lines": []},
            {"id": assert_ulid(&lines[1]["id"]), "name": "API calls", "description": "Requests in October",
             "labels": {"meter": "api"},
             "created_at": stamp(1, "created_at"), "updated_at": stamp(1, "updated_at"),
             "type": "standard_line", "lifecycle_controller": "manual",
             "service_period": october(), "totals": totals("12.5"),
             "rate_card": {"price": {"type": "graduated", "tiers": [
                 {"up_to_amount": "1000", "unit_price": {"type": "unit", "amount": "0.01"}},
                 {"unit_price": {"type": "unit", "amount": "0.005"}}]}},
             "detailed_lines": []},
        ]);
    }
    expected
}

fn manual() -> Value {
    json!({"invoicing": {"autoAdvance": false}})
}

crate::both_backends!(
    v3_shows_drafts_never_gathering_invoices,
    v3_updates_approves_and_deletes,
);

async fn v3_shows_drafts_never_gathering_invoices(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), true).await;
    let resp = add_lines(&app, &s.customer_id, two_lines()).await;
    let gathering = resp.body["invoice"]["id"].as_str().unwrap().to_owned();

    let resp = app.get(INVOICES).await;
    check(&resp, "list-invoices");
    assert_eq!(
        resp.body,
        json!({"data": [], "meta": {"page": {"number": 1, "size": 20, "total": 0}}})
    );
    let resp = app.get(&format!("{INVOICES}/{gathering}")).await;
    check(&resp, "get-invoice");
    assert_problem(
        &resp,
        problem_of(
            404,
            &format!(
                "invoice [{gathering}] not found: it is a gathering invoice of pending lines, which v3 does not show (invoice its lines first)"
            ),
        ),
    );

    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let id = resp.body[0]["id"].as_str().unwrap().to_owned();
    let details = json!({"immutable": false, "failed": false,
        "extended_status": "draft.manual_approval_needed",
        "available_actions": {"approve": {"resulting_state": "payment_processing.pending"},
                              "delete": {"resulting_state": "deleted"}}});
    let resp = app.get(&format!("{INVOICES}/{id}")).await;
    check(&resp, "get-invoice");
    assert_eq!(
        resp.body,
        expected_draft(&s, &resp.body, details.clone(), true)
    );

    let resp = app.get(INVOICES).await;
    check(&resp, "list-invoices");
    assert_eq!(
        resp.body,
        json!({"data": [expected_draft(&s, &resp.body["data"][0], details, false)],
               "meta": {"page": {"number": 1, "size": 20, "total": 1}}})
    );

    let count = |query: String| {
        let app = &app;
        async move {
            let resp = app.get(&format!("{INVOICES}?{query}")).await;
            check(&resp, "list-invoices");
            assert_eq!(resp.status, 200, "{query}: {}", resp.body);
            resp.body["meta"]["page"]["total"].clone()
        }
    };
    assert_eq!(count("filter[status]=draft".into()).await, 1);
    assert_eq!(count("filter[status][oeq]=issued,paid".into()).await, 0);
    assert_eq!(count("filter[status][neq]=draft".into()).await, 0);
    assert_eq!(
        count(format!("filter[customer_id]={}", s.customer_id)).await,
        1
    );
    assert_eq!(
        count("filter[customer_id][neq]=01J00000000000000000000000".into()).await,
        1
    );
    assert_eq!(
        count("filter[created_at][gte]=2020-01-01T00:00:00Z&sort=created_at desc".into()).await,
        1
    );
    assert_eq!(
        count("filter[created_at][lt]=2020-01-01T00:00:00Z".into()).await,
        0
    );
    assert_eq!(
        count("filter[issued_at][gt]=2020-01-01T00:00:00Z".into()).await,
        0
    );
    assert_eq!(
        count("sort=service_period_start&page[size]=1&page[number]=1".into()).await,
        1
    );

    let resp = app
        .get(&format!(
            "{INVOICES}?filter[status]=gathering&filter[colour]=red&sort=name"
        ))
        .await;
    check(&resp, "list-invoices");
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "sort", "source": "query", "rule": "enum",
             "choices": ["issued_at", "created_at", "service_period_start"],
             "reason": "[name] is not a sort attribute; use issued_at, created_at or service_period_start, optionally followed by asc or desc"},
            {"field": "filter[colour]", "source": "query", "rule": "enum",
             "choices": ["status", "customer_id", "issued_at", "service_period_start", "created_at"],
             "reason": "[colour] is not a filter of invoices"},
            {"field": "filter[status]", "source": "query", "rule": "enum",
             "choices": ["draft", "issuing", "issued", "payment_processing", "overdue", "paid", "uncollectible", "voided"],
             "reason": "[gathering] is not one of the allowed values"},
        ])),
    );
}

async fn v3_updates_approves_and_deletes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(&app, manual(), true).await;
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let id = resp.body[0]["id"].as_str().unwrap().to_owned();
    let usage_line = resp.body[0]["lines"][1]["id"].clone();

    // Keep the usage line (and its quantity), drop the flat fee, add a
    // package-priced line; label the invoice.
    let body = json!({
        "type": "standard", "labels": {"po": "4711"},
        "supplier": {"name": "Meter Co"},
        "customer": {"id": s.customer_id, "name": "ACME Inc."},
        "workflow": {"workflow": {"invoicing": {"auto_advance": false}}},
        "lines": [
            {"id": usage_line, "type": "standard_line", "name": "API calls",
             "service_period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
             "rate_card": {"price": {"type": "graduated", "tiers": [
                 {"up_to_amount": "1000", "unit_price": {"type": "unit", "amount": "0.01"}},
                 {"unit_price": {"type": "unit", "amount": "0.005"}}]}}},
            {"type": "standard_line", "name": "Storage",
             "service_period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
             "rate_card": {"price": {"type": "volume", "tiers": [
                 {"up_to_amount": "100", "flat_price": {"type": "flat", "amount": "10"}},
                 {"unit_price": {"type": "unit", "amount": "0.2"}}]}},
             "quantity": "150"},
        ],
    });
    let resp = app.put(&format!("{INVOICES}/{id}"), body.clone()).await;
    check(&resp, "update-invoice");
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body["labels"], json!({"po": "4711"}));
    // 12.5 kept; 150 × 0.2 = 30.
    assert_eq!(resp.body["totals"], totals("42.5"));
    let names: Vec<&str> = resp.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["API calls", "Storage"]);
    let v1 = app.get(&format!("/api/v1/billing/invoices/{id}")).await;
    assert_eq!(
        v1.body["lines"][0]["quantity"], "1500.5",
        "the quantity was kept"
    );

    // A new usage line needs its quantity; a customer stays its own.
    let mut bad = body.clone();
    bad["customer"]["id"] = json!("01J00000000000000000000000");
    bad["lines"][1].as_object_mut().unwrap().remove("quantity");
    let resp = app.put(&format!("{INVOICES}/{id}"), bad).await;
    check(&resp, "update-invoice");
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "customer.id", "source": "body", "rule": "invalid",
             "reason": format!("an invoice stays with its customer [{}]; bill another customer with pending lines of their own", s.customer_id)},
        ])),
    );
    let mut bad = body;
    bad["lines"][1].as_object_mut().unwrap().remove("quantity");
    bad["lines"][1]["rate_card"]["discounts"] = json!({"percentage": 10});
    bad["lines"][0]["rate_card"]["feature_key"] = json!("api_calls");
    let mut taxed = bad.clone();
    taxed["lines"][0]["rate_card"]["tax_config"] =
        json!({"tax_code_id": "01J00000000000000000000000"});
    let resp = app.put(&format!("{INVOICES}/{id}"), bad).await;
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "lines[0].rate_card.feature_key", "source": "body", "rule": "invalid",
             "reason": "meterpay has no meters or features: leave the feature key out and send the usage as quantity"},
            {"field": "lines[1].rate_card.discounts", "source": "body", "rule": "invalid",
             "reason": "discounts are not supported by meterpay; bill the discounted amount instead"},
            {"field": "lines[1].quantity", "source": "body", "rule": "required",
             "reason": "is required with a usage-based price (unit, tiered, package): meterpay has no meters, so send the quantity to bill"},
        ])),
    );

    // Tax code entities are upstream's; a line's Stripe tax code is set through v1.
    let resp = app.put(&format!("{INVOICES}/{id}"), taxed).await;
    check(&resp, "update-invoice");
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "lines[0].rate_card.tax_config", "source": "body", "rule": "invalid",
             "reason": "tax code entities are not supported by meterpay; set a line's Stripe tax code through the v1 API"},
        ])),
    );

    // Retry does not apply to a draft waiting for approval; approve sends it on.
    let resp = app.post(&format!("{INVOICES}/{id}/retry"), json!({})).await;
    check(&resp, "retry-invoice");
    assert_eq!(resp.status, 400, "{}", resp.body);
    let resp = app
        .post(&format!("{INVOICES}/{id}/approve"), json!({}))
        .await;
    check(&resp, "approve-invoice");
    assert_eq!(resp.status, 200, "{}", resp.body);
    // Issued through Stripe, which charged the saved card at once.
    assert_eq!(resp.body["status"], "paid");
    assert_eq!(
        resp.body["status_details"],
        json!({"immutable": true, "failed": false, "extended_status": "paid", "available_actions": {}})
    );
    let resp = app.delete(&format!("{INVOICES}/{id}")).await;
    check(&resp, "delete-invoice");
    assert_eq!(resp.status, 400, "{}", resp.body);

    // A second draft is deleted.
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let second = resp.body[0]["id"].as_str().unwrap().to_owned();
    let resp = app.delete(&format!("{INVOICES}/{second}")).await;
    check(&resp, "delete-invoice");
    assert_eq!(resp.status, 204, "{}", resp.body);
    let resp = app.get(&format!("{INVOICES}/{second}")).await;
    check(&resp, "get-invoice");
    assert_rfc3339(&resp.body["deleted_at"]);
    assert_eq!(resp.body["status_details"]["extended_status"], "deleted");
    let resp = app.get(INVOICES).await;
    assert_eq!(resp.body["meta"]["page"]["total"], 1);
}
