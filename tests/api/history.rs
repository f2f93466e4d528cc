//! Checkout session history (an addition beyond the upstream API): newest
//! first, paged, filtered by status, and kept current by Stripe's webhooks,
//! including expiry when the emulator's clock passes `expires_at`.

use serde_json::{Value, json};

use crate::harness::{Backend, TestApp};
use crate::support::{assert_problem, invalid_problem, problem_400, problem_of};
use crate::webhooks::{history_entry, hosted_checkout, pay, wait_for};

fn history(customer: &str) -> String {
    format!("/api/v3/openmeter/customers/{customer}/billing/stripe/checkout-sessions")
}

async fn new_session(app: &TestApp, customer: &str) -> Value {
    let resp = app
        .post(
            &format!("/api/v3/openmeter/customers/{customer}/billing/stripe/checkout-sessions"),
            json!({"stripe_options": {"success_url": "https://app.example/ok"}}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    resp.body
}

fn session_ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .map(|s| s["session_id"].as_str().unwrap().to_owned())
        .collect()
}

fn meta(number: u64, size: u64, total: u64) -> Value {
    json!({"page": {"number": number, "size": size, "total": total}})
}

crate::both_backends!(
    history_is_newest_first_paged_filtered_and_expires_with_the_clock,
    history_refuses_bad_queries_and_foreign_sessions,
);

async fn history_is_newest_first_paged_filtered_and_expires_with_the_clock(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, url, first, _) = hosted_checkout(&app).await;
    let second = new_session(&app, &id).await;
    let third = new_session(&app, &id).await;
    let [s1, s2, s3] =
        [&first, &second, &third].map(|r| r["session_id"].as_str().unwrap().to_owned());
    // The first one is completed.
    pay(&url, "4242424242424242").await;
    let completed = history_entry(&app, &id, &s1, "complete").await;
    // One completion is two events (`setup_intent.succeeded`, then
    // `checkout.session.completed`); once both are acknowledged the entry
    // is still as the first one left it: `updated_at` did not move.
    wait_for("both completion events acknowledged", || {
        let acked = app.emu.webhook_deliveries();
        ["setup_intent.succeeded", "checkout.session.completed"]
            .iter()
            .all(|t| acked.iter().any(|d| d.event_type == *t && d.succeeded))
    })
    .await;
    assert_eq!(
        app.get(&format!("{}/{s1}", history(&id))).await.body,
        completed
    );

    let all = app.get(&history(&id)).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(
        session_ids(&all.body),
        vec![s3.clone(), s2.clone(), s1.clone()]
    );
    assert_eq!(all.body["meta"], meta(1, 20, 3));
    // Each entry equals what the single-session endpoint says.
    for entry in all.body["data"].as_array().unwrap() {
        let sid = entry["session_id"].as_str().unwrap();
        assert_eq!(
            &app.get(&format!("{}/{sid}", history(&id))).await.body,
            entry
        );
    }

    let page = app.get(&format!("{}?page[size]=2", history(&id))).await;
    assert_eq!(
        (session_ids(&page.body), &page.body["meta"]),
        (vec![s3.clone(), s2.clone()], &meta(1, 2, 3))
    );
    let page = app
        .get(&format!("{}?page[size]=2&page[number]=2", history(&id)))
        .await;
    assert_eq!(
        (session_ids(&page.body), &page.body["meta"]),
        (vec![s1.clone()], &meta(2, 2, 3))
    );

    let open = app
        .get(&format!("{}?filter[status]=open", history(&id)))
        .await;
    assert_eq!(
        (session_ids(&open.body), &open.body["meta"]),
        (vec![s3.clone(), s2.clone()], &meta(1, 20, 2))
    );
    let done = app
        .get(&format!(
            "{}?filter[status][oeq]=complete,expired",
            history(&id)
        ))
        .await;
    assert_eq!(session_ids(&done.body), vec![s1.clone()]);

    // Past the sessions' expiry (24 hours by default) the open ones expire;
    // the completed one stays complete.
    app.emu.advance_clock(24 * 3600 + 60);
    let expired = history_entry(&app, &id, &s3, "expired").await;
    history_entry(&app, &id, &s2, "expired").await;
    assert_eq!(expired["session_id"], json!(s3));
    let expired = app
        .get(&format!("{}?filter[status]=expired", history(&id)))
        .await;
    assert_eq!(
        (session_ids(&expired.body), &expired.body["meta"]),
        (vec![s3.clone(), s2.clone()], &meta(1, 20, 2))
    );
    let s1_now = app.get(&format!("{}/{s1}", history(&id))).await;
    assert_eq!(s1_now.body["status"], "complete");
    assert!(
        s1_now.body["payment_method_id"]
            .as_str()
            .unwrap()
            .starts_with("pm_")
    );
}

async fn history_refuses_bad_queries_and_foreign_sessions(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, _, first, _) = hosted_checkout(&app).await;
    let sid = first["session_id"].as_str().unwrap().to_owned();
    let reason = r#"[paid] is not a checkout session status; use one of ["open", "complete", "expired", "failed", "requires_action"]"#;
    let bad = app
        .get(&format!("{}?filter[status]=paid", history(&id)))
        .await;
    assert_eq!(
        bad.problem(),
        problem_400(
            &format!("Invalid query [filter[status]]: {reason}"),
            json!([{"field": "filter[status]", "source": "query", "rule": "enum",
                "choices": ["open", "complete", "expired", "failed", "requires_action"], "reason": reason}]),
        )
    );
    let unknown = app.get(&format!("{}?status=open", history(&id))).await;
    assert_eq!(unknown.status, 400);
    assert_problem(
        &unknown,
        invalid_problem(json!([{"field": "status", "source": "query",
        "rule": "unknown_property",
        "reason": "is not a known query parameter; use page[number], page[size] or filter[status]"}])),
    );
    let bad_id = app.get(&history("acme")).await;
    assert_problem(
        &bad_id,
        invalid_problem(
            json!([{"field": "customerId", "reason": "[acme] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)", "rule": "matches_regex", "source": "path"}]),
        ),
    );

    // Unknown customer, unknown session, another customer's session: 404.
    let nobody = "01J00000000000000000000000";
    assert_problem(
        &app.get(&history(nobody)).await,
        problem_of(404, "customer [01J00000000000000000000000] not found"),
    );
    assert_problem(
        &app.get(&format!("{}/{sid}", history(nobody))).await,
        problem_of(404, "customer [01J00000000000000000000000] not found"),
    );
    let other = crate::customers_v3::customer(&app, json!({"name": "Other", "key": "other"})).await;
    let other = other["id"].as_str().unwrap();
    let foreign = app.get(&format!("{}/{sid}", history(other))).await;
    assert_eq!(
        foreign.problem(),
        crate::support::problem_of(
            404,
            &format!("checkout session [{sid}] of customer [{other}] not found")
        )
    );
    assert_problem(
        &app.get(&format!("{}/cs_test_unknown", history(&id))).await,
        problem_of(
            404,
            &format!("checkout session [cs_test_unknown] of customer [{id}] not found"),
        ),
    );
    // An empty history is an empty page.
    let empty = app.get(&history(other)).await;
    assert_eq!(empty.body, json!({"data": [], "meta": meta(1, 20, 0)}));
}
