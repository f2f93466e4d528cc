//! Stripe customer portal sessions, v3 and v1.

use serde_json::{Value, json};

use crate::apps::install_stripe_app;
use crate::contract::{Spec, assert_request, assert_response};
use crate::customers_v3::customer;
use crate::harness::{Backend, TestApp};
use crate::support::{assert_problem, assert_rfc3339, invalid_problem, problem_400, problem_of};
use crate::webhooks::{hosted_checkout, last_request};

fn v3_path(customer: &str) -> String {
    format!("/api/v3/openmeter/customers/{customer}/billing/stripe/portal-sessions")
}

fn v1_path(customer: &str) -> String {
    format!("/api/v1/customers/{customer}/stripe/portal")
}

/// The emulated account's one portal configuration.
fn configuration(app: &TestApp, body: &Value) -> String {
    let id = body["configuration_id"]
        .as_str()
        .or_else(|| body["configurationId"].as_str())
        .unwrap_or_else(|| panic!("no configuration: {body}"));
    assert!(id.starts_with("bpc_"), "{id}");
    let _ = app;
    id.to_owned()
}

crate::both_backends!(
    portal_session_for_a_customer_with_a_stripe_customer,
    portal_session_refusals,
    portal_configuration_stripe_does_not_know_is_a_400_naming_it,
);

async fn portal_session_for_a_customer_with_a_stripe_customer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, _, result, _) = hosted_checkout(&app).await;
    let stripe_customer = result["stripe_customer_id"].as_str().unwrap().to_owned();

    let request =
        json!({"stripe_options": {"return_url": "https://app.example/account", "locale": "fr-CA"}});
    assert_request(Spec::V3, "create-customer-stripe-portal-session", &request);
    let since = last_request(&app);
    let resp = app.post(&v3_path(&id), request).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_response(
        Spec::V3,
        "create-customer-stripe-portal-session",
        201,
        &resp.content_type,
        &resp.body,
    );
    let session = resp.body["id"].as_str().unwrap().to_owned();
    let config = configuration(&app, &resp.body);
    assert_eq!(
        resp.body,
        json!({
            "id": session,
            "stripe_customer_id": stripe_customer,
            "configuration_id": config,
            "livemode": false,
            "created_at": assert_rfc3339(&resp.body["created_at"]),
            "return_url": "https://app.example/account",
            "locale": "fr-CA",
            "url": format!("{}/p/session/{session}", app.emu.base_url()),
        })
    );
    // What Stripe received.
    let sent: Vec<_> = app
        .emu
        .requests(since)
        .into_iter()
        .map(|r| (r.method, r.path, r.params))
        .collect();
    assert_eq!(
        sent,
        vec![(
            "POST".to_owned(),
            "/v1/billing_portal/sessions".to_owned(),
            json!({
                "customer": stripe_customer, "return_url": "https://app.example/account", "locale": "fr-CA",
            })
        )]
    );
    let stored = app.emu.object(&session).unwrap();
    assert_eq!(stored["customer"], json!(stripe_customer));

    // v1, by key, with the configuration; no locale is Stripe's "auto".
    let request = json!({"configurationId": config, "returnUrl": "https://app.example/v1"});
    assert_request(Spec::V1, "createCustomerStripePortalSession", &request);
    let resp = app.post(&v1_path("acme"), request).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_response(
        Spec::V1,
        "createCustomerStripePortalSession",
        201,
        &resp.content_type,
        &resp.body,
    );
    let session = resp.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        resp.body,
        json!({
            "id": session,
            "stripeCustomerId": stripe_customer,
            "configurationId": config,
            "livemode": false,
            "createdAt": assert_rfc3339(&resp.body["createdAt"]),
            "returnUrl": "https://app.example/v1",
            "locale": "auto",
            "url": format!("{}/p/session/{session}", app.emu.base_url()),
        })
    );
}

async fn portal_session_refusals(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (installed, _, _) = install_stripe_app(&app, true).await;
    let app_id = installed["id"].as_str().unwrap().to_owned();
    let c = customer(&app, json!({"name": "New", "key": "new"})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let since = last_request(&app);

    // No Stripe customer yet: 400 saying so, naming the customer.
    let resp = app.post(&v3_path(&id), json!({"stripe_options": {}})).await;
    let reason = format!(
        "customer [{id}] has no Stripe customer in app [{app_id}] yet: create a checkout session \
         for them first (it creates one), or link an existing one with \
         PUT /api/v3/openmeter/customers/{id}/billing/app-data"
    );
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "customerId", "reason": reason, "rule": "invalid", "source": "path"}]),
        ),
    );
    let resp = app.post(&v1_path("new"), json!({})).await;
    let reason = format!(
        "customer [{id}] has no Stripe customer in app [{app_id}] yet: create a checkout session \
         for them first (it creates one), or link an existing one with \
         PUT /api/v1/customers/{id}/stripe"
    );
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "customerIdOrKey", "reason": reason, "rule": "invalid", "source": "path"}]),
        ),
    );

    // Bad options: every one named, before any Stripe call.
    let resp = app
        .post(
            &v3_path(&id),
            json!({"stripe_options": {
        "configuration_id": "default", "locale": "xx-YY", "return_url": "app.example/back"}}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "stripe_options.configuration_id", "reason": "must be the id of a Stripe customer portal configuration (bpc_…)", "rule": "matches_regex", "source": "body"}, {"field": "stripe_options.locale", "reason": "[xx-YY] is not a locale of Stripe's customer portal (e.g. auto, en, en-GB, de, fr-CA, pt-BR, zh-TW)", "rule": "invalid", "source": "body"}, {"field": "stripe_options.return_url", "reason": "must be an absolute http:// or https:// URL", "rule": "invalid", "source": "body"}]),
        ),
    );
    let resp = app.post(&v1_path("new"), json!({"locale": "xx-YY"})).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "locale", "reason": "[xx-YY] is not a locale of Stripe's customer portal (e.g. auto, en, en-GB, de, fr-CA, pt-BR, zh-TW)", "rule": "invalid", "source": "body"}]),
        ),
    );
    // Unknown and missing fields.
    let resp = app
        .post(
            &v3_path(&id),
            json!({"stripe_options": {"returnUrl": "https://x.example"}}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "stripe_options.returnUrl", "reason": "is not a known property; expected one of `configuration_id`, `locale`, `return_url`", "rule": "unknown_property", "source": "body"}]),
        ),
    );
    let resp = app.post(&v3_path(&id), json!({})).await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "stripe_options", "reason": "is a required field", "rule": "required", "source": "body"}]),
        ),
    );
    assert!(
        app.emu.requests(since).is_empty(),
        "Stripe was called for refused input"
    );

    // Unknown customer: 404.
    let nobody = "01J00000000000000000000000";
    assert_problem(
        &app.post(&v3_path(nobody), json!({"stripe_options": {}}))
            .await,
        problem_of(404, "customer [01J00000000000000000000000] not found"),
    );
    assert_problem(
        &app.post(&v1_path("nobody"), json!({})).await,
        problem_of(404, "customer [nobody] not found"),
    );
}

async fn portal_configuration_stripe_does_not_know_is_a_400_naming_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, _, _, _) = hosted_checkout(&app).await;
    let resp = app
        .post(
            &v3_path(&id),
            json!({"stripe_options": {"configuration_id": "bpc_1Unknown"}}),
        )
        .await;
    let reason = "Stripe refused the request: No such configuration: 'bpc_1Unknown'";
    assert_eq!(
        resp.problem(),
        problem_400(
            &format!("Invalid body [stripe_options.configuration_id]: {reason}"),
            json!([{"field": "stripe_options.configuration_id", "source": "body", "rule": "invalid", "reason": reason}])
        )
    );
    let resp = app
        .post(&v1_path("acme"), json!({"configurationId": "bpc_1Unknown"}))
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "configurationId", "reason": "Stripe refused the request: No such configuration: 'bpc_1Unknown'", "rule": "invalid", "source": "body"}]),
        ),
    );
}
