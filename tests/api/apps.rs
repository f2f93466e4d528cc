//! Stripe apps, the app catalog and the v1 marketplace, against the Stripe
//! emulator: install, rotate, uninstall, and what each leaves in Stripe.

use serde_json::{Value, json};
use sqlx::Row;

use crate::contract::{Spec, assert_response, assert_schema};
use crate::harness::{Backend, Resp, TestApp};
use crate::support::{
    assert_problem, assert_rfc3339, assert_ulid, invalid_problem, problem_400, problem_of,
};

const APPS: &str = "/api/v3/openmeter/apps";
const INSTALL: &str = "/api/v3/openmeter/app-catalog/install";
const WEBHOOK_EVENTS: [&str; 13] = [
    "checkout.session.completed",
    "checkout.session.expired",
    "setup_intent.succeeded",
    "setup_intent.setup_failed",
    "setup_intent.requires_action",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.finalization_failed",
    "invoice.overdue",
    "invoice.marked_uncollectible",
    "invoice.voided",
    "invoice.sent",
];

pub fn masked(key: &str) -> String {
    format!("{}…{}", &key[..8], &key[key.len() - 4..])
}

pub fn stripe_definition() -> Value {
    json!({
        "type": "stripe",
        "name": "Stripe",
        "description": "Stripe integration allows you to collect payments with Stripe.",
        "capabilities": [
            {"type": "calculate_tax", "key": "stripe_calculate_tax", "name": "Calculate Tax",
             "description": "Stripe Tax calculates tax portion of the invoices."},
            {"type": "invoice_customers", "key": "stripe_invoice_customers", "name": "Invoice Customers",
             "description": "Stripe invoices customers with due amount."},
            {"type": "collect_payments", "key": "stripe_collect_payments", "name": "Collect Payments",
             "description": "Stripe payments collects outstanding revenue with Stripe customer's default payment method."}
        ],
        "install_methods": ["with_api_key"]
    })
}

/// GET on the emulator's Stripe API with `key`.
pub async fn stripe_get(app: &TestApp, key: &str, path: &str) -> Value {
    let resp = app
        .client
        .get(format!("{}{path}", app.emu.base_url()))
        .bearer_auth(key)
        .send()
        .await
        .expect("emulator request");
    resp.json().await.expect("emulator JSON")
}

async fn install(app: &TestApp, body: Value) -> Resp {
    let resp = app.post(INSTALL, body).await;
    assert_v3(&resp, "install-app", &[201, 400]);
    resp
}

/// Validates against the operation's declared response; statuses the
/// contract does not list for it (409, 503 here) against the base error.
pub fn assert_v3(resp: &Resp, operation: &str, declared: &[u16]) {
    if declared.contains(&resp.status) {
        assert_response(
            Spec::V3,
            operation,
            resp.status,
            &resp.content_type,
            &resp.body,
        );
    } else {
        assert_eq!(
            resp.content_type, "application/problem+json",
            "{}",
            resp.body
        );
        assert_schema(Spec::V3, "BaseError", &resp.body);
    }
}

/// Installs a Stripe app on a fresh emulated account; returns (app body, key, account).
pub async fn install_stripe_app(
    app: &TestApp,
    create_billing_profile: bool,
) -> (Value, String, String) {
    let (account, key) = app.emu.create_account().await;
    let resp = install(
        app,
        json!({"type": "stripe", "name": "Stripe", "create_billing_profile": create_billing_profile, "api_key": key}),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    (resp.body["app"].clone(), key, account)
}

fn stripe_requests(app: &TestApp) -> Vec<(String, String)> {
    app.emu
        .requests(0)
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect()
}

crate::both_backends!(
    install_verifies_key_registers_webhook_and_keeps_secrets_encrypted,
    catalog_lists_what_meterpay_installs,
    install_refuses_bad_input_before_calling_stripe,
    install_with_a_key_stripe_rejects,
    one_app_per_stripe_account_even_under_races,
    install_fails_cleanly_when_stripe_is_down,
    update_renames_and_rotates_the_key,
    uninstall_deletes_the_stripe_endpoint,
    install_with_billing_profile_and_uninstall_guard,
    uninstall_with_a_revoked_key_still_uninstalls,
    v1_marketplace_and_apps,
    uninstall_forgets_the_secrets_and_the_customers_stripe_links,
    a_key_of_the_other_mode_is_refused_on_rotation,
    test_and_live_mode_of_one_account_install_side_by_side,
);

async fn install_verifies_key_registers_webhook_and_keeps_secrets_encrypted(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (account, key) = app.emu.create_account().await;
    let resp = install(
        &app,
        json!({
            "type": "stripe", "name": "Billing", "create_billing_profile": false, "api_key": key
        }),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let id = assert_ulid(&resp.body["app"]["id"]);
    let created_at = assert_rfc3339(&resp.body["app"]["created_at"]);
    let expected_app = json!({
        "id": id,
        "name": "Billing",
        "created_at": created_at,
        "updated_at": created_at,
        "type": "stripe",
        "definition": stripe_definition(),
        "status": "ready",
        "account_id": account,
        "livemode": false,
        "masked_api_key": masked(&key),
    });
    assert_eq!(
        resp.body,
        json!({"app": expected_app, "default_for_capability_types": []})
    );

    // Stripe saw: the key verified, then the webhook endpoint created with an idempotency key.
    let requests = app.emu.requests(0);
    assert_eq!(
        stripe_requests(&app),
        [
            ("GET".to_owned(), "/v1/account".to_owned()),
            ("POST".to_owned(), "/v1/webhook_endpoints".to_owned()),
        ]
    );
    assert!(requests[1].idempotency_key.is_some());
    let endpoints = stripe_get(&app, &key, "/v1/webhook_endpoints").await;
    let endpoint = &endpoints["data"][0];
    assert_eq!(endpoints["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        endpoint["url"],
        json!(format!("{}/api/v1/apps/{id}/stripe/webhook", app.base))
    );
    assert_eq!(endpoint["enabled_events"], json!(WEBHOOK_EVENTS));
    assert_eq!(endpoint["status"], "enabled");
    assert_eq!(endpoint["api_version"], stripe_emulator::API_VERSION);

    // Read back through v3.
    let got = app.get(&format!("{APPS}/{id}")).await;
    assert_response(
        Spec::V3,
        "get-app",
        got.status,
        &got.content_type,
        &got.body,
    );
    assert_eq!((got.status, &got.body), (200, &expected_app));
    let list = app.get(APPS).await;
    assert_response(
        Spec::V3,
        "list-apps",
        list.status,
        &list.content_type,
        &list.body,
    );
    assert_eq!(
        list.body,
        json!({"data": [expected_app], "meta": {"page": {"number": 1, "size": 20, "total": 1}}})
    );

    // No plaintext secret anywhere in the row.
    let row = sqlx::query(
        "SELECT id, namespace, type, name, status, stripe_account_id, masked_api_key, \
         api_key_encrypted, webhook_endpoint_id, webhook_secret_encrypted FROM apps",
    )
    .fetch_one(app.server.store().pool())
    .await
    .unwrap();
    let mut stored = String::new();
    for i in 0..10 {
        let v: Option<String> = row.try_get(i).unwrap();
        stored.push_str(&v.unwrap_or_default());
        stored.push('|');
    }
    assert!(!stored.contains(&key), "plaintext key stored: {stored}");
    assert!(
        !stored.contains("whsec_"),
        "plaintext webhook secret stored: {stored}"
    );
    let encrypted: String = row.try_get("api_key_encrypted").unwrap();
    let webhook_encrypted: Option<String> = row.try_get("webhook_secret_encrypted").unwrap();
    assert!(encrypted.starts_with("v1."));
    assert!(webhook_encrypted.unwrap().starts_with("v1."));

    // With create_billing_profile the first app becomes the namespace default.
    let (_, key2) = app.emu.create_account().await;
    let with_profile = install(
        &app,
        json!({
            "type": "stripe", "name": "Default", "create_billing_profile": true, "api_key": key2
        }),
    )
    .await;
    assert_eq!(
        with_profile.body["default_for_capability_types"],
        json!(["calculate_tax", "invoice_customers", "collect_payments"])
    );
    app.delete(&format!(
        "{APPS}/{}",
        with_profile.body["app"]["id"].as_str().unwrap()
    ))
    .await;
}

async fn catalog_lists_what_meterpay_installs(backend: Backend) {
    let app = TestApp::start(backend).await;
    let list = app.get("/api/v3/openmeter/app-catalog").await;
    assert_response(
        Spec::V3,
        "list-app-catalog",
        list.status,
        &list.content_type,
        &list.body,
    );
    assert_eq!(
        list.body,
        json!({"data": [stripe_definition()], "meta": {"page": {"number": 1, "size": 20, "total": 1}}})
    );
    let item = app.get("/api/v3/openmeter/app-catalog/stripe").await;
    assert_response(
        Spec::V3,
        "get-app-catalog-item",
        item.status,
        &item.content_type,
        &item.body,
    );
    assert_eq!(item.body, stripe_definition());
    let sandbox = app.get("/api/v3/openmeter/app-catalog/sandbox").await;
    assert_eq!(
        sandbox.problem(),
        problem_of(
            404,
            "app type [sandbox] is not available in meterpay; supported types: stripe"
        )
    );
    let unknown = app.get("/api/v3/openmeter/app-catalog/paypal").await;
    assert_eq!(
        unknown.problem(),
        problem_400(
            "Invalid path [appType]: [paypal] is not an app type; use one of sandbox, stripe, external_invoicing",
            json!([{"field": "appType", "source": "path", "rule": "enum",
                "choices": ["sandbox", "stripe", "external_invoicing"],
                "reason": "[paypal] is not an app type; use one of sandbox, stripe, external_invoicing"}]),
        )
    );
    let bad_page = app.get("/api/v3/openmeter/app-catalog?page[size]=0").await;
    assert_problem(
        &bad_page,
        invalid_problem(
            json!([{"field": "page[size]", "minimum": 1, "reason": "must be at least 1", "rule": "min", "source": "query"}]),
        ),
    );
}

async fn install_refuses_bad_input_before_calling_stripe(backend: Backend) {
    let app = TestApp::start(backend).await;
    let cases = [
        (
            json!({"type": "stripe", "name": "S", "create_billing_profile": false, "api_key": "pk_test_abc123"}),
            json!([{"field": "api_key", "source": "body", "rule": "invalid",
                 "reason": "is a publishable key; meterpay needs a secret key (sk_…) or a restricted key (rk_…)"}]),
        ),
        (
            json!({"type": "stripe", "name": "S", "create_billing_profile": false, "api_key": "hello"}),
            json!([{"field": "api_key", "source": "body", "rule": "invalid",
                 "reason": "must be a Stripe secret key (sk_test_…, sk_live_…) or restricted key (rk_test_…, rk_live_…)"}]),
        ),
        (
            json!({"type": "stripe", "name": "", "create_billing_profile": false, "api_key": "sk_test_abc"}),
            json!([{"field": "name", "source": "body", "rule": "min_length", "minimum": 1,
                 "reason": "must be at least 1 character(s) long"}]),
        ),
        (
            json!({"name": "S", "create_billing_profile": false, "api_key": "sk_test_abc"}),
            json!([{"field": "type", "source": "body", "rule": "required", "reason": "is a required field"}]),
        ),
        (
            json!({"type": "sandbox", "name": "S"}),
            json!([{"field": "type", "source": "body", "rule": "enum", "choices": ["stripe"],
                 "reason": "meterpay does not support [sandbox] apps; supported types: stripe"}]),
        ),
        (
            json!({"type": "stripe", "name": "S", "create_billing_profile": false, "api_key": "sk_test_abc", "oauth": true}),
            json!([{"field": "oauth", "source": "body", "rule": "unknown_property",
                 "reason": "is not a known property; expected one of `type`, `name`, `create_billing_profile`, `api_key`"}]),
        ),
        (
            json!({"type": "stripe", "name": "S", "api_key": "sk_test_abc"}),
            json!([{"field": "create_billing_profile", "source": "body", "rule": "required", "reason": "is a required field"}]),
        ),
    ];
    for (body, invalid) in cases {
        let resp = install(&app, body.clone()).await;
        assert_problem(&resp, invalid_problem(invalid));
    }
    assert!(
        app.emu.requests(0).is_empty(),
        "no Stripe call for bad input"
    );
    assert_eq!(app.get(APPS).await.body["meta"]["page"]["total"], 0);
}

async fn install_with_a_key_stripe_rejects(backend: Backend) {
    let app = TestApp::start(backend).await;
    let resp = install(&app, json!({
        "type": "stripe", "name": "S", "create_billing_profile": true, "api_key": "sk_test_notarealkey123"
    })).await;
    // Stripe's message, with the key masked.
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "api_key", "reason": "Stripe rejected this API key: Invalid API Key provided: sk_test_**********y123", "rule": "invalid", "source": "body"}]),
        ),
    );
    assert_eq!(
        stripe_requests(&app),
        [("GET".to_owned(), "/v1/account".to_owned())]
    );
    assert_eq!(app.get(APPS).await.body["meta"]["page"]["total"], 0);
}

async fn one_app_per_stripe_account_even_under_races(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (first, key, account) = install_stripe_app(&app, false).await;
    let again = install(
        &app,
        json!({
            "type": "stripe", "name": "Again", "create_billing_profile": false, "api_key": key
        }),
    )
    .await;
    let mut conflict = problem_of(
        409,
        &format!(
            "a Stripe app for Stripe account [{account}] (test mode) is already installed in this namespace; \
         update that app (its key, name) instead of installing another"
        ),
    );
    conflict["field"] = json!("api_key");
    assert_eq!(again.problem(), conflict);

    // Two installs racing for a new account: one wins, the loser's Stripe
    // endpoint is deleted again.
    let (_, key2) = app.emu.create_account().await;
    let body =
        json!({"type": "stripe", "name": "Race", "create_billing_profile": false, "api_key": key2});
    let (a, b) = tokio::join!(
        app.post(INSTALL, body.clone()),
        app.post(INSTALL, body.clone())
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let endpoints = stripe_get(&app, &key2, "/v1/webhook_endpoints").await;
    assert_eq!(
        endpoints["data"].as_array().unwrap().len(),
        1,
        "{endpoints}"
    );
    let winner = if a.status == 201 { &a.body } else { &b.body };
    assert_eq!(
        endpoints["data"][0]["url"],
        json!(format!(
            "{}/api/v1/apps/{}/stripe/webhook",
            app.base,
            winner["app"]["id"].as_str().unwrap()
        ))
    );
    assert_eq!(app.get(APPS).await.body["meta"]["page"]["total"], 2);
    assert_eq!(first["account_id"], json!(account));
}

async fn install_fails_cleanly_when_stripe_is_down(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, key) = app.emu.create_account().await;
    app.emu.set_faults(vec![
        "POST /v1/webhook_endpoints:error=500".parse().unwrap(),
    ]);
    let resp = install(
        &app,
        json!({
            "type": "stripe", "name": "S", "create_billing_profile": false, "api_key": key
        }),
    )
    .await;
    assert_problem(
        &resp,
        problem_of(
            503,
            "Stripe is unavailable: create webhook endpoint: Stripe answered 500: Something went wrong on Stripe's end. (Injected by the emulator.)",
        ),
    );
    assert!(resp.headers.get("retry-after").is_some());
    app.emu.clear_faults();
    assert_eq!(app.get(APPS).await.body["meta"]["page"]["total"], 0);
    let endpoints = stripe_get(&app, &key, "/v1/webhook_endpoints").await;
    assert_eq!(endpoints["data"], json!([]));
    // Once Stripe is back the same install succeeds.
    let resp = install(
        &app,
        json!({
            "type": "stripe", "name": "S", "create_billing_profile": false, "api_key": key
        }),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
}

async fn update_renames_and_rotates_the_key(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (installed, _key, account) = install_stripe_app(&app, false).await;
    let id = installed["id"].as_str().unwrap().to_owned();
    let rotated = "sk_test_rotatedKey0000000000001234";
    assert!(app.emu.add_api_key_to_account(&account, rotated));
    let resp = app
        .put(
            &format!("{APPS}/{id}"),
            json!({
                "type": "stripe", "name": "Renamed", "description": "Main account",
                "labels": {"team": "billing"}, "secret_api_key": rotated
            }),
        )
        .await;
    assert_response(
        Spec::V3,
        "update-app",
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let updated_at = assert_rfc3339(&resp.body["updated_at"]);
    let mut expected = installed.clone();
    expected["name"] = json!("Renamed");
    expected["description"] = json!("Main account");
    expected["labels"] = json!({"team": "billing"});
    expected["masked_api_key"] = json!("sk_test_…1234");
    expected["updated_at"] = json!(updated_at);
    assert_eq!(resp.body, expected);

    // A key of another account is refused and changes nothing.
    let (other_account, other_key) = app.emu.create_account().await;
    let resp = app
        .put(
            &format!("{APPS}/{id}"),
            json!({
                "type": "stripe", "name": "Renamed", "secret_api_key": other_key
            }),
        )
        .await;
    let reason = format!(
        "this key belongs to Stripe account [{other_account}], but app [{id}] is connected to [{account}]; \
         install a new app for another account"
    );
    assert_eq!(
        resp.problem(),
        problem_400(
            &format!("Invalid body [secret_api_key]: {reason}"),
            json!([{"field": "secret_api_key", "source": "body", "rule": "invalid", "reason": reason}])
        )
    );
    // A key Stripe does not know.
    let resp = app
        .put(
            &format!("{APPS}/{id}"),
            json!({
                "type": "stripe", "name": "Renamed", "secret_api_key": "sk_test_unknown0000"
            }),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "secret_api_key", "reason": "Stripe rejected this API key: Invalid API Key provided: sk_test_*******0000", "rule": "invalid", "source": "body"}]),
        ),
    );
    assert_eq!(app.get(&format!("{APPS}/{id}")).await.body, expected);

    // Renaming alone makes no Stripe call.
    let before = app.emu.requests(0).len();
    let resp = app
        .put(
            &format!("{APPS}/{id}"),
            json!({"type": "stripe", "name": "Plain"}),
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body["name"], "Plain");
    assert_eq!(resp.body["masked_api_key"], "sk_test_…1234");
    assert!(resp.body.get("labels").is_none());
    assert_eq!(app.emu.requests(0).len(), before);

    let missing = app
        .put(
            &format!("{APPS}/01J00000000000000000000000"),
            json!({"type": "stripe", "name": "x"}),
        )
        .await;
    assert_eq!(
        missing.problem(),
        problem_of(404, "app [01J00000000000000000000000] not found")
    );
    let bad_id = app.get(&format!("{APPS}/nope")).await;
    assert_problem(
        &bad_id,
        invalid_problem(
            json!([{"field": "appId", "reason": "[nope] is not a ULID (26 characters, e.g. 01G65Z755AFWAKHE12NY0CQ9FH)", "rule": "matches_regex", "source": "path"}]),
        ),
    );
}

async fn uninstall_deletes_the_stripe_endpoint(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (installed, key, _) = install_stripe_app(&app, false).await;
    let id = installed["id"].as_str().unwrap().to_owned();
    let resp = app.delete(&format!("{APPS}/{id}")).await;
    assert_eq!((resp.status, &resp.body), (204, &Value::Null));
    assert_eq!(
        stripe_get(&app, &key, "/v1/webhook_endpoints").await["data"],
        json!([])
    );
    let got = app.get(&format!("{APPS}/{id}")).await;
    assert_eq!(got.status, 200);
    assert_rfc3339(&got.body["deleted_at"]);
    assert_response(
        Spec::V3,
        "get-app",
        got.status,
        &got.content_type,
        &got.body,
    );
    assert_eq!(app.get(APPS).await.body["data"], json!([]));
    let gone = problem_of(
        410,
        &format!("app [{id}] was uninstalled; install it again to use it"),
    );
    assert_eq!(app.delete(&format!("{APPS}/{id}")).await.problem(), gone);
    assert_eq!(
        app.put(
            &format!("{APPS}/{id}"),
            json!({"type": "stripe", "name": "x"})
        )
        .await
        .problem(),
        gone
    );
    // The account can be connected again.
    let again = install(
        &app,
        json!({"type": "stripe", "name": "Again", "create_billing_profile": false, "api_key": key}),
    )
    .await;
    assert_eq!(again.status, 201, "{}", again.body);
}

async fn install_with_billing_profile_and_uninstall_guard(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (installed, key, _) = install_stripe_app(&app, true).await;
    let id = installed["id"].as_str().unwrap().to_owned();
    let profiles = app.get("/api/v3/openmeter/profiles").await.body;
    let profile = &profiles["data"][0];
    assert_eq!(profile["default"], true);
    assert_eq!(profile["apps"]["payment"]["id"], json!(id));
    // A second app does not replace the default profile.
    let (_, key2) = app.emu.create_account().await;
    let second = install(&app, json!({"type": "stripe", "name": "Second", "create_billing_profile": true, "api_key": key2})).await;
    assert_eq!(second.body["default_for_capability_types"], json!([]));
    // The app in use by the profile cannot be uninstalled, and Stripe is untouched.
    let resp = app.delete(&format!("{APPS}/{id}")).await;
    assert_v3(&resp, "uninstall-app", &[204, 400, 404]);
    let detail = format!(
        "app [{id}] is used by billing profile [{}] ({}); point that profile at another app or delete it first",
        profile["id"].as_str().unwrap(),
        profile["name"].as_str().unwrap()
    );
    assert_eq!(resp.problem(), problem_of(409, &detail));
    assert_eq!(
        stripe_get(&app, &key, "/v1/webhook_endpoints").await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn uninstall_with_a_revoked_key_still_uninstalls(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (installed, key, _) = install_stripe_app(&app, false).await;
    let id = installed["id"].as_str().unwrap().to_owned();
    assert!(app.emu.revoke_api_key(&key));
    let resp = app.delete(&format!("{APPS}/{id}")).await;
    assert_eq!(resp.status, 204, "{}", resp.body);
}

async fn v1_marketplace_and_apps(backend: Backend) {
    let app = TestApp::start(backend).await;
    let listings = app.get("/api/v1/marketplace/listings").await;
    assert_response(
        Spec::V1,
        "listMarketplaceListings",
        listings.status,
        &listings.content_type,
        &listings.body,
    );
    let listing = json!({
        "type": "stripe", "name": "Stripe",
        "description": "Stripe integration allows you to collect payments with Stripe.",
        "capabilities": [
            {"type": "calculateTax", "key": "stripe_calculate_tax", "name": "Calculate Tax",
             "description": "Stripe Tax calculates tax portion of the invoices."},
            {"type": "invoiceCustomers", "key": "stripe_invoice_customers", "name": "Invoice Customers",
             "description": "Stripe invoices customers with due amount."},
            {"type": "collectPayments", "key": "stripe_collect_payments", "name": "Collect Payments",
             "description": "Stripe payments collects outstanding revenue with Stripe customer's default payment method."}
        ],
        "installMethods": ["with_api_key"]
    });
    assert_eq!(
        listings.body,
        json!({"totalCount": 1, "page": 1, "pageSize": 100, "items": [listing]})
    );
    let one = app.get("/api/v1/marketplace/listings/stripe").await;
    assert_response(
        Spec::V1,
        "getMarketplaceListing",
        one.status,
        &one.content_type,
        &one.body,
    );
    assert_eq!(one.body, listing);
    assert_problem(
        &app.get("/api/v1/marketplace/listings/custom_invoicing")
            .await,
        problem_of(
            404,
            "app type [custom_invoicing] is not available in meterpay; supported types: stripe",
        ),
    );

    let (account, key) = app.emu.create_account().await;
    let resp = app
        .post(
            "/api/v1/marketplace/listings/stripe/install/apikey",
            json!({"apiKey": key}),
        )
        .await;
    assert_response(
        Spec::V1,
        "marketplaceAppAPIKeyInstall",
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let id = assert_ulid(&resp.body["app"]["id"]);
    let created_at = assert_rfc3339(&resp.body["app"]["createdAt"]);
    let expected = json!({
        "id": id, "name": "Stripe", "createdAt": created_at, "updatedAt": created_at,
        "listing": listing, "status": "ready", "type": "stripe",
        "stripeAccountId": account, "livemode": false, "maskedAPIKey": masked(&key)
    });
    // createBillingProfile defaults to true in v1: the app became the default.
    assert_eq!(resp.body["app"], expected);

    let got = app.get(&format!("/api/v1/apps/{id}")).await;
    assert_response(Spec::V1, "getApp", got.status, &got.content_type, &got.body);
    assert_eq!(got.body, expected);
    let list = app.get("/api/v1/apps?pageSize=5").await;
    assert_response(
        Spec::V1,
        "listApps",
        list.status,
        &list.content_type,
        &list.body,
    );
    assert_eq!(
        list.body,
        json!({"totalCount": 1, "page": 1, "pageSize": 5, "items": [expected]})
    );

    let bad = app
        .post(
            "/api/v1/marketplace/listings/stripe/install/apikey",
            json!({"apiKey": "nope"}),
        )
        .await;
    assert_problem(
        &bad,
        invalid_problem(
            json!([{"field": "apiKey", "reason": "must be a Stripe secret key (sk_test_…, sk_live_…) or restricted key (rk_test_…, rk_live_…)", "rule": "invalid", "source": "body"}]),
        ),
    );

    let rotated = "sk_test_v1RotatedKey000000005678";
    app.emu.add_api_key_to_account(&account, rotated);
    let resp = app
        .put(
            &format!("/api/v1/apps/{id}/stripe/api-key"),
            json!({"secretAPIKey": rotated}),
        )
        .await;
    assert_eq!((resp.status, &resp.body), (204, &Value::Null));
    let bad_key = app
        .put(
            &format!("/api/v1/apps/{id}/stripe/api-key"),
            json!({"secretAPIKey": "sk_test_zzz"}),
        )
        .await;
    assert_problem(
        &bad_key,
        invalid_problem(
            json!([{"field": "secretAPIKey", "reason": "Stripe rejected this API key: Invalid API Key provided: sk_test__zzz", "rule": "invalid", "source": "body"}]),
        ),
    );

    let resp = app
        .put(
            &format!("/api/v1/apps/{id}"),
            json!({
                "type": "stripe", "name": "Renamed", "metadata": {"team": "billing"}
            }),
        )
        .await;
    assert_response(
        Spec::V1,
        "updateApp",
        resp.status,
        &resp.content_type,
        &resp.body,
    );
    assert_eq!(resp.body["name"], "Renamed");
    assert_eq!(resp.body["metadata"], json!({"team": "billing"}));
    assert_eq!(resp.body["maskedAPIKey"], "sk_test_…5678");
    let bad_meta = app
        .put(
            &format!("/api/v1/apps/{id}"),
            json!({
                "type": "stripe", "name": "Renamed", "metadata": {"team": "has spaces"}
            }),
        )
        .await;
    assert_problem(
        &bad_meta,
        invalid_problem(
            json!([{"field": "metadata.team", "reason": "label values must be 1 to 63 characters of letters, digits, '-', '.', '_', starting and ending with a letter or digit", "rule": "matches_regex", "source": "body"}]),
        ),
    );
}

async fn uninstall_forgets_the_secrets_and_the_customers_stripe_links(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (installed, key, _) = install_stripe_app(&app, false).await;
    let id = installed["id"].as_str().unwrap().to_owned();
    crate::customers_v3::customer(&app, json!({"name": "ACME", "key": "acme"})).await;
    let cus = crate::customer_billing::stripe_customer(&app, &key, "billing@acme.example").await;
    let linked = app
        .put(
            "/api/v1/customers/acme/apps",
            json!([{"type": "stripe", "id": id, "stripeCustomerId": cus}]),
        )
        .await;
    assert_eq!(linked.status, 200, "{}", linked.body);
    let pool = app.server.store().pool();
    let links = |app_id: String| async move {
        sqlx::query("SELECT stripe_customer_id FROM customer_stripe WHERE app_id = $1")
            .bind(app_id)
            .fetch_all(pool)
            .await
            .unwrap()
            .len()
    };
    assert_eq!(links(id.clone()).await, 1);

    let resp = app.delete(&format!("{APPS}/{id}")).await;
    assert_eq!((resp.status, &resp.body), (204, &Value::Null));
    let row = sqlx::query(
        "SELECT api_key_encrypted, webhook_secret_encrypted, deleted_at FROM apps WHERE id = $1",
    )
    .bind(&id)
    .fetch_one(pool)
    .await
    .unwrap();
    let api_key: String = row.try_get("api_key_encrypted").unwrap();
    let webhook_secret: Option<String> = row.try_get("webhook_secret_encrypted").unwrap();
    let deleted_at: Option<String> = row.try_get("deleted_at").unwrap();
    assert_eq!((api_key.as_str(), webhook_secret), ("", None));
    assert!(deleted_at.is_some());
    assert_eq!(links(id.clone()).await, 0);
    assert_eq!(
        app.get("/api/v1/customers/acme/apps").await.body["items"],
        json!([])
    );
}

async fn a_key_of_the_other_mode_is_refused_on_rotation(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (installed, key, account) = install_stripe_app(&app, false).await;
    let id = installed["id"].as_str().unwrap().to_owned();
    let live = "sk_live_otherModeKey00000000001234";
    assert!(app.emu.add_api_key_to_account(&account, live));
    let since = app.emu.requests(0).len();
    let reason = format!(
        "this is a live-mode key, but app [{id}] is installed in test mode: the Stripe customers \
         and payment methods it knows exist only in test mode; install another app for the \
         account's live mode"
    );
    let resp = app
        .put(
            &format!("{APPS}/{id}"),
            json!({"type": "stripe", "name": "Stripe", "secret_api_key": live}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "secret_api_key", "reason": reason, "rule": "invalid", "source": "body"}]),
        ),
    );
    let resp = app
        .put(
            &format!("/api/v1/apps/{id}/stripe/api-key"),
            json!({"secretAPIKey": live}),
        )
        .await;
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "secretAPIKey", "reason": reason, "rule": "invalid", "source": "body"}]),
        ),
    );
    // Refused before Stripe was asked; the app keeps its test-mode key.
    assert_eq!(app.emu.requests(0).len(), since);
    let got = app.get(&format!("{APPS}/{id}")).await;
    assert_eq!(got.body["masked_api_key"], installed["masked_api_key"]);
    assert_eq!(stripe_get(&app, &key, "/v1/account").await["id"], account);
}

async fn test_and_live_mode_of_one_account_install_side_by_side(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (test_app, _, account) = install_stripe_app(&app, false).await;
    let live = "sk_live_sideBySideKey0000000005678";
    assert!(app.emu.add_api_key_to_account(&account, live));
    let resp = install(
        &app,
        json!({"type": "stripe", "name": "Live", "create_billing_profile": false, "api_key": live}),
    )
    .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_ne!(resp.body["app"]["id"], test_app["id"]);
    assert_eq!(resp.body["app"]["livemode"], true);
    assert_eq!(test_app["livemode"], false);
    // A second live-mode app for the account is still one too many.
    let again = install(
        &app,
        json!({"type": "stripe", "name": "Live again", "create_billing_profile": false, "api_key": live}),
    )
    .await;
    assert_problem(
        &again,
        crate::support::with_members(
            problem_of(
                409,
                &format!(
                    "a Stripe app for Stripe account [{account}] (live mode) is already installed \
                     in this namespace; update that app (its key, name) instead of installing another"
                ),
            ),
            json!({"field": "api_key"}),
        ),
    );
    assert_eq!(app.get(APPS).await.body["meta"]["page"]["total"], 2);
}
