//! Stripe customer portal sessions, v3 and v1.

use serde_json::{Value, json};

use crate::apps::install_stripe_app;
use crate::contract::{Spec, assert_request, assert_response};
use crate::customers_v3::customer;
use crate::harness::{Backend, TestApp};
use crate::support::{assert_rfc3339, problem_400};
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
    install_stripe_app(&app, true).await;
    let c = customer(&app, json!({"name": "New", "key": "new"})).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let since = last_request(&app);

    // No Stripe customer yet: 400 saying so, naming the customer.
    let resp = app.post(&v3_path(&id), json!({"stripe_options": {}})).await;
    let problem = resp.problem();
    let reason = problem["invalid_parameters"][0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.starts_with(&format!("customer [{id}] has no Stripe customer in app [")),
        "{reason}"
    );
    assert!(
        reason.contains("create a checkout session for them first"),
        "{reason}"
    );
    assert_eq!(
        problem,
        problem_400(
            &format!("Invalid path [customerId]: {reason}"),
            json!([{"field": "customerId", "source": "path", "rule": "invalid", "reason": reason}])
        )
    );
    let resp = app.post(&v1_path("new"), json!({})).await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(
        resp.body["invalid_parameters"][0]["field"],
        "customerIdOrKey"
    );
    assert_eq!(resp.body["invalid_parameters"][0]["reason"], json!(reason));

    // Bad options: every one named, before any Stripe call.
    let resp = app
        .post(
            &v3_path(&id),
            json!({"stripe_options": {
        "configuration_id": "default", "locale": "xx-YY", "return_url": "app.example/back"}}),
        )
        .await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    let fields: Vec<_> = resp.body["invalid_parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        [
            "stripe_options.configuration_id",
            "stripe_options.locale",
            "stripe_options.return_url"
        ]
    );
    let resp = app.post(&v1_path("new"), json!({"locale": "xx-YY"})).await;
    assert_eq!(
        resp.body["invalid_parameters"][0]["field"], "locale",
        "{}",
        resp.body
    );
    // Unknown and missing fields.
    let resp = app
        .post(
            &v3_path(&id),
            json!({"stripe_options": {"returnUrl": "https://x.example"}}),
        )
        .await;
    assert_eq!(resp.status, 400, "{}", resp.body);
    assert_eq!(
        resp.body["invalid_parameters"][0]["field"],
        "stripe_options.returnUrl"
    );
    let resp = app.post(&v3_path(&id), json!({})).await;
    assert_eq!(
        resp.body["invalid_parameters"][0]["field"], "stripe_options",
        "{}",
        resp.body
    );
    assert!(
        app.emu.requests(since).is_empty(),
        "Stripe was called for refused input"
    );

    // Unknown customer: 404.
    let nobody = "01J00000000000000000000000";
    assert_eq!(
        app.post(&v3_path(nobody), json!({"stripe_options": {}}))
            .await
            .status,
        404
    );
    assert_eq!(app.post(&v1_path("nobody"), json!({})).await.status, 404);
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
    assert_eq!(
        resp.body["invalid_parameters"][0]["field"], "configurationId",
        "{}",
        resp.body
    );
}
