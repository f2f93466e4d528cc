//! Customer billing data (v3 `…/billing`, `…/billing/app-data`; v1
//! `…/stripe`, `…/apps`) against the Stripe emulator.

use serde_json::{Value, json};

use crate::apps::install_stripe_app;
use crate::contract::{Spec, assert_response};
use crate::customers_v3::customer;
use crate::harness::{Backend, TestApp};
use crate::support::{assert_problem, invalid_problem, problem_400, problem_of, with_members};

/// Creates a customer directly in the emulated Stripe account; returns its `cus_` id.
pub async fn stripe_customer(app: &TestApp, key: &str, email: &str) -> String {
    let resp = app
        .client
        .post(format!("{}/v1/customers", app.emu.base_url()))
        .bearer_auth(key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email={}", email.replace('@', "%40")))
        .send()
        .await
        .expect("emulator request");
    let body: Value = resp.json().await.expect("emulator JSON");
    body["id"].as_str().expect("cus id").to_owned()
}

/// A card saved to Stripe customer `cus` through a setup-mode checkout
/// session made directly in the emulator; returns its `pm_` id.
pub async fn saved_card(app: &TestApp, key: &str, cus: &str) -> String {
    crate::harness::save_card(app, key, cus, "4242424242424242", false).await
}

fn billing(id: &str) -> String {
    format!("/api/v3/openmeter/customers/{id}/billing")
}

crate::both_backends!(
    v3_billing_data_round_trip,
    v3_billing_without_a_stripe_app,
    v1_customer_stripe_and_app_data,
);

async fn v3_billing_data_round_trip(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, key, account) = install_stripe_app(&app, true).await;
    let c = customer(&app, json!({"name": "ACME", "key": "acme"})).await;
    let id = c["id"].as_str().unwrap().to_owned();

    let got = app.get(&billing(&id)).await;
    assert_response(
        Spec::V3,
        "get-customer-billing",
        got.status,
        &got.content_type,
        &got.body,
    );
    assert_eq!((got.status, &got.body), (200, &json!({"app_data": {}})));

    let cus = stripe_customer(&app, &key, "billing@acme.example").await;
    let before = app.emu.requests(0).len();
    let resp = app
        .put(
            &billing(&id),
            json!({
                "app_data": {"stripe": {"customer_id": cus, "labels": {"source": "import"}}}
            }),
        )
        .await;
    assert_response(
        Spec::V3,
        "update-customer-billing",
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    let expected =
        json!({"app_data": {"stripe": {"customer_id": cus, "labels": {"source": "import"}}}});
    assert_eq!((resp.status, &resp.body), (200, &expected));
    // The Stripe customer was checked in Stripe: one GET.
    let calls: Vec<_> = app.emu.requests(0)[before..]
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(calls, [("GET".to_owned(), format!("/v1/customers/{cus}"))]);
    assert_eq!(app.get(&billing(&id)).await.body, expected);

    // Unknown Stripe customer: 400, nothing changed.
    let resp = app
        .put(
            &billing(&id),
            json!({"app_data": {"stripe": {"customer_id": "cus_DoesNotExist1"}}}),
        )
        .await;
    let reason =
        format!("Stripe customer [cus_DoesNotExist1] does not exist in Stripe account [{account}]");
    assert_eq!(
        resp.problem(),
        problem_400(
            &format!("Invalid body [app_data.stripe.customer_id]: {reason}"),
            json!([{"field": "app_data.stripe.customer_id", "source": "body", "rule": "invalid", "reason": reason}])
        )
    );
    assert_eq!(app.get(&billing(&id)).await.body, expected);

    // Malformed ids are refused before any Stripe call.
    let before = app.emu.requests(0).len();
    let resp = app
        .put(
            &billing(&id),
            json!({"app_data": {"stripe": {
        "customer_id": "acme", "default_payment_method_id": "visa"}}}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(json!([
            {"field": "app_data.stripe.customer_id", "source": "body", "rule": "matches_regex",
             "reason": "must be a Stripe customer id (cus_…)"},
            {"field": "app_data.stripe.default_payment_method_id", "source": "body", "rule": "matches_regex",
             "reason": "must be a Stripe payment method id (pm_…)"}
        ])),
    );
    assert_eq!(app.emu.requests(0).len(), before);

    // Unknown fields, unknown profile, external invoicing.
    let resp = app
        .put(
            &billing(&id),
            json!({"app_data": {"stripe": {"customer": "cus_x"}}}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "app_data.stripe.customer", "reason": "is not a known property; expected one of `customer_id`, `default_payment_method_id`, `labels`", "rule": "unknown_property", "source": "body"}]),
        ),
    );
    let resp = app
        .put(
            &billing(&id),
            json!({"billing_profile": {"id": "01J00000000000000000000000"}}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(json!([{
        "field": "billing_profile.id", "source": "body", "rule": "invalid",
        "reason": "billing profile [01J00000000000000000000000] does not exist"}])),
    );
    let resp = app
        .put(
            &billing(&id),
            json!({"app_data": {"external_invoicing": {}}}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "app_data.external_invoicing", "reason": "meterpay supports Stripe apps only; external invoicing data cannot be set", "rule": "invalid", "source": "body"}]),
        ),
    );
    assert_eq!(app.get(&billing(&id)).await.body, expected);

    // A default payment method must be one of the Stripe customer's own.
    let pm = saved_card(&app, &key, &cus).await;
    let stranger = stripe_customer(&app, &key, "someone@else.example").await;
    let strangers_pm = saved_card(&app, &key, &stranger).await;
    let app_data = format!("{}/app-data", billing(&id));
    for (pm_id, reason) in [
        (
            "pm_1NoSuchCard".to_owned(),
            format!("payment method [pm_1NoSuchCard] does not exist in Stripe account [{account}]"),
        ),
        (
            strangers_pm.clone(),
            format!(
                "payment method [{strangers_pm}] belongs to another Stripe customer [{stranger}], not [{cus}]"
            ),
        ),
    ] {
        let resp = app
            .put(
                &app_data,
                json!({"stripe": {"customer_id": cus, "default_payment_method_id": pm_id}}),
            )
            .await;
        assert_problem(
            &resp,
            invalid_problem(json!([{"field": "stripe.default_payment_method_id",
                "rule": "invalid", "source": "body", "reason": reason}])),
        );
    }
    assert_eq!(app.get(&billing(&id)).await.body, expected);

    // app-data alone; its errors are named from the app data.
    let resp = app
        .put(
            &app_data,
            json!({
        "stripe": {"customer_id": cus, "default_payment_method_id": pm}}),
        )
        .await;
    assert_response(
        Spec::V3,
        "update-customer-billing-app-data",
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    assert_eq!(
        resp.body,
        json!({"stripe": {"customer_id": cus, "default_payment_method_id": pm}})
    );
    let resp = app
        .put(
            &format!("{}/app-data", billing(&id)),
            json!({"stripe": {"customer_id": "nope"}}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "stripe.customer_id", "reason": "must be a Stripe customer id (cus_…)", "rule": "matches_regex", "source": "body"}]),
        ),
    );

    // One Stripe customer belongs to one customer.
    let other = customer(&app, json!({"name": "Other", "key": "other"})).await;
    let other_id = other["id"].as_str().unwrap();
    let resp = app
        .put(
            &billing(other_id),
            json!({"app_data": {"stripe": {"customer_id": cus}}}),
        )
        .await;
    assert_problem(
        &resp,
        with_members(
            problem_of(
                409,
                &format!(
                    "Stripe customer [{cus}] already belongs to another customer of app [{}]",
                    stripe_app["id"].as_str().unwrap()
                ),
            ),
            json!({"field": "app_data.stripe.customer_id"}),
        ),
    );

    // Deleted customers are read-only; unknown ones are 404.
    app.delete(&format!("/api/v3/openmeter/customers/{id}"))
        .await;
    assert_problem(
        &app.put(&billing(&id), json!({})).await,
        problem_of(
            410,
            &format!("customer [{id}] was deleted; it can be read but not changed or billed"),
        ),
    );
    assert_eq!(app.get(&billing(&id)).await.status, 200);
    assert_eq!(
        app.get(&billing("01J00000000000000000000000"))
            .await
            .problem(),
        problem_of(404, "customer [01J00000000000000000000000] not found")
    );
}

async fn v3_billing_without_a_stripe_app(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = customer(&app, json!({"name": "ACME", "key": "acme"})).await;
    let id = c["id"].as_str().unwrap();
    let resp = app
        .put(
            &billing(id),
            json!({"app_data": {"stripe": {"customer_id": "cus_123"}}}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "app_data.stripe", "reason": "no Stripe app is set up for this customer: install one (POST /api/v3/openmeter/app-catalog/install with create_billing_profile: true), or make a billing profile with a Stripe payment app the default", "rule": "invalid", "source": "body"}]),
        ),
    );
}

async fn v1_customer_stripe_and_app_data(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, key, _) = install_stripe_app(&app, true).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    customer(&app, json!({"name": "ACME", "key": "acme"})).await;
    let none = app.get("/api/v1/customers/acme/stripe").await;
    assert_eq!(
        none.problem(),
        problem_of(
            404,
            &format!("customer [acme] has no Stripe data for app [{app_id}]")
        )
    );

    let cus = stripe_customer(&app, &key, "a@acme.example").await;
    let resp = app
        .put(
            "/api/v1/customers/acme/stripe",
            json!({"stripeCustomerId": cus}),
        )
        .await;
    assert_response(
        Spec::V1,
        "upsertCustomerStripeAppData",
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let v1_app = app.get(&format!("/api/v1/apps/{app_id}")).await.body;
    let expected = json!({"id": app_id, "type": "stripe", "stripeCustomerId": cus, "app": v1_app});
    assert_eq!(resp.body, expected);
    let got = app.get("/api/v1/customers/acme/stripe").await;
    assert_response(
        Spec::V1,
        "getCustomerStripeAppData",
        got.status,
        &got.content_type,
        &got.body,
    );
    assert_eq!(got.body, expected);

    let bad = app
        .put(
            "/api/v1/customers/acme/stripe",
            json!({"stripeCustomerId": "nope"}),
        )
        .await;
    assert_problem(
        &bad,
        invalid_problem(
            json!([{"field": "stripeCustomerId", "reason": "must be a Stripe customer id (cus_…)", "rule": "matches_regex", "source": "body"}]),
        ),
    );

    let list = app.get("/api/v1/customers/acme/apps").await;
    assert_response(
        Spec::V1,
        "listCustomerAppData",
        list.status,
        &list.content_type,
        &list.body,
    );
    assert_eq!(
        list.body,
        json!({"totalCount": 1, "page": 1, "pageSize": 100, "items": [expected]})
    );
    assert_eq!(
        app.get("/api/v1/customers/acme/apps?type=sandbox")
            .await
            .body["items"],
        json!([])
    );
    assert_problem(
        &app.get("/api/v1/customers/acme/apps?type=paypal").await,
        invalid_problem(
            json!([{"choices": ["stripe", "sandbox", "custom_invoicing"], "field": "type", "reason": "[paypal] is not an app type", "rule": "enum", "source": "query"}]),
        ),
    );

    let cus2 = stripe_customer(&app, &key, "b@acme.example").await;
    let pm2 = saved_card(&app, &key, &cus2).await;
    let resp = app.put("/api/v1/customers/acme/apps", json!([
        {"type": "stripe", "id": app_id, "stripeCustomerId": cus2, "stripeDefaultPaymentMethodId": pm2}
    ])).await;
    assert_response(
        Spec::V1,
        "upsertCustomerAppData",
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    assert_eq!(
        resp.body,
        json!([{"id": app_id, "type": "stripe", "stripeCustomerId": cus2,
        "stripeDefaultPaymentMethodId": pm2, "app": v1_app}])
    );
    let bad = app
        .put(
            "/api/v1/customers/acme/apps",
            json!([
                {"type": "stripe", "stripeCustomerId": cus},
                {"type": "sandbox"}
            ]),
        )
        .await;
    assert_problem(
        &bad,
        invalid_problem(
            json!([{"choices": ["stripe"], "field": "[1].type", "reason": "meterpay does not support [sandbox] apps; supported types: stripe", "rule": "enum", "source": "body"}]),
        ),
    );
    // The first item was not written either.
    assert_eq!(
        app.get("/api/v1/customers/acme/stripe").await.body["stripeCustomerId"],
        json!(cus2)
    );

    let del = app
        .delete(&format!("/api/v1/customers/acme/apps/{app_id}"))
        .await;
    assert_eq!((del.status, &del.body), (204, &Value::Null));
    assert_problem(
        &app.get("/api/v1/customers/acme/stripe").await,
        problem_of(
            404,
            &format!("customer [acme] has no Stripe data for app [{app_id}]"),
        ),
    );
    assert_problem(
        &app.delete(&format!("/api/v1/customers/acme/apps/{app_id}"))
            .await,
        problem_of(
            404,
            &format!("customer [acme] has no data for app [{app_id}]"),
        ),
    );
}
