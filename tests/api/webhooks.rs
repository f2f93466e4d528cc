//! End to end: checkout → the emulator's hosted page completed over HTTP →
//! Stripe's signed webhooks → the payment method is the customer's default,
//! in meterpay and in Stripe. Plus what must be refused.

use std::time::Duration;

use serde_json::{Value, json};

use crate::apps::install_stripe_app;
use crate::contract::{Spec, assert_schema};
use crate::customers_v3::customer;
use crate::harness::{Backend, Resp, TestApp};
use crate::support::{assert_problem, invalid_problem, problem_of};

/// Installs a Stripe app, makes customer `acme` and a hosted session for it:
/// (customer id, hosted page URL, the 201 body, the app's Stripe key).
pub async fn hosted_checkout(app: &TestApp) -> (String, String, Value, String) {
    let (_, key, _) = install_stripe_app(app, true).await;
    let c = customer(
        app,
        json!({"name": "ACME", "key": "acme", "currency": "USD"}),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_owned();
    let resp = app
        .post(
            &format!("/api/v3/openmeter/customers/{id}/billing/stripe/checkout-sessions"),
            json!({"stripe_options": {"success_url": "https://app.example/ok"}}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    (
        id,
        resp.body["url"].as_str().unwrap().to_owned(),
        resp.body,
        key,
    )
}

/// Submits the hosted page's form as a browser would.
pub async fn pay(url: &str, card: &str) -> u16 {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let form = format!("card_number={card}&exp=12%20%2F%2034&cvc=123&name=Jane%20Doe");
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

pub async fn wait_for<F: Fn() -> bool>(what: &str, check: F) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The session's history entry once its status is `status` (the webhooks
/// arrive asynchronously).
pub async fn history_entry(app: &TestApp, customer: &str, session: &str, status: &str) -> Value {
    let path = format!(
        "/api/v3/openmeter/customers/{customer}/billing/stripe/checkout-sessions/{session}"
    );
    let mut last = Value::Null;
    for _ in 0..100 {
        let resp = app.get(&path).await;
        // 404 until a session learned of from a webhook is recorded.
        assert!(matches!(resp.status, 200 | 404), "{}", resp.body);
        if resp.status == 200 && resp.body["status"] == status {
            return resp.body;
        }
        last = resp.body;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session {session} never became {status}: {last}");
}

/// What the history says of a session created by `hosted_checkout`, before
/// anything happened to it (`updated_at` taken from `actual`).
pub fn expected_entry(result: &Value, app_id: &str, actual: &Value) -> Value {
    let mut e = json!({
        "session_id": result["session_id"],
        "app_id": app_id,
        "customer_id": result["customer_id"],
        "stripe_customer_id": result["stripe_customer_id"],
        "setup_intent_id": result["setup_intent_id"],
        "status": "open",
        "mode": "setup",
        "ui_mode": "hosted",
        "currency": "USD",
        "url": result["url"],
        "success_url": "https://app.example/ok",
        "expires_at": result["expires_at"],
        "created_at": result["created_at"],
        "updated_at": actual["updated_at"],
    });
    crate::support::assert_rfc3339(&actual["updated_at"]);
    if let Some(email) = result.get("customer_email") {
        e["customer_email"] = email.clone();
    }
    e
}

crate::both_backends!(
    completed_checkout_makes_the_payment_method_default,
    replayed_event_changes_nothing,
    forged_signature_is_refused,
    body_over_1_mib_is_413,
    unknown_app_is_404,
    declined_card_fails_without_a_default,
    same_event_delivered_at_once_to_two_servers_has_one_effect,
    stripe_unreachable_leaves_the_event_for_stripes_retry,
    completed_session_meterpay_never_recorded_is_recorded_from_the_event,
    event_of_an_unhandled_type_is_ignored,
    setup_intent_without_meterpay_metadata_is_ignored,
    event_of_another_install_is_acknowledged_and_ignored,
    session_of_an_unlinked_stripe_customer_is_ignored,
    upstream_openmeter_metadata_is_read_as_meterpays,
    endpoints_move_to_the_pinned_api_version_on_start,
    card_needing_authentication_shows_in_the_history,
    address_collected_at_checkout_fills_an_empty_billing_address,
);

/// Posts a form to the emulator's hosted page without following redirects;
/// returns the status and the page.
async fn post_form(url: &str, form: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A card whose bank asks for 3-D Secure: the session's history says
/// `requires_action` until the customer authenticates, then `complete`.
async fn card_needing_authentication_shows_in_the_history(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, url, result, _) = hosted_checkout(&app).await;
    let session_id = result["session_id"].as_str().unwrap().to_owned();
    let card = "card_number=4000002760003184&exp=12%20%2F%2034&cvc=123&name=Jane%20Doe";
    let (status, page) = post_form(&url, card).await;
    assert_eq!(status, 200);
    assert!(page.contains("three-d-secure"), "{page}");
    let waiting = history_entry(&app, &id, &session_id, "requires_action").await;
    let app_id = waiting["app_id"].as_str().unwrap().to_owned();
    let mut expected = expected_entry(&result, &app_id, &waiting);
    expected["status"] = json!("requires_action");
    assert_eq!(waiting, expected);
    assert!(
        app.emu
            .events()
            .iter()
            .any(|e| e["type"] == "setup_intent.requires_action"),
        "Stripe announced the authentication step"
    );

    let (status, _) = post_form(
        &format!("{url}/authenticate"),
        &format!("{card}&exp_month=12&exp_year=2034&card_number=4000002760003184&action=complete"),
    )
    .await;
    assert_eq!(status, 303);
    let done = history_entry(&app, &id, &session_id, "complete").await;
    assert!(
        done["payment_method_id"]
            .as_str()
            .unwrap()
            .starts_with("pm_")
    );
}

/// A session that collected a billing address gives it to a customer that
/// has none; an address set through the API is never overwritten.
async fn address_collected_at_checkout_fills_an_empty_billing_address(backend: Backend) {
    let app = TestApp::start(backend).await;
    install_stripe_app(&app, true).await;
    let address = "&address_line1=Unter%20den%20Linden%201&address_city=Berlin\
        &address_postal_code=10117&address_country=DE";
    let card = "card_number=4242424242424242&exp=12%20%2F%2034&cvc=123&name=Jane%20Doe";
    let mut customers = Vec::new();
    for (key, billing_address) in [
        ("without", Value::Null),
        (
            "with",
            json!({"country": "US", "city": "Portland", "line1": "1 Main St"}),
        ),
    ] {
        let mut body = json!({"name": key, "key": key, "currency": "EUR"});
        if !billing_address.is_null() {
            body["billing_address"] = billing_address.clone();
        }
        let c = customer(&app, body).await;
        let id = c["id"].as_str().unwrap().to_owned();
        let resp = app
            .post(
                &format!("/api/v3/openmeter/customers/{id}/billing/stripe/checkout-sessions"),
                json!({"stripe_options": {"success_url": "https://app.example/ok",
                    "billing_address_collection": "required"}}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.body);
        let url = resp.body["url"].as_str().unwrap().to_owned();
        let session_id = resp.body["session_id"].as_str().unwrap().to_owned();
        // The page asks for the address and refuses to go on without it.
        let page = reqwest::get(&url).await.unwrap().text().await.unwrap();
        assert!(page.contains("address_line1"), "{page}");
        let (status, _) = post_form(&url, card).await;
        assert_eq!(status, 400);
        let (status, _) = post_form(&url, &format!("{card}{address}")).await;
        assert_eq!(status, 303);
        history_entry(&app, &id, &session_id, "complete").await;
        customers.push((id, billing_address));
    }
    let (without, _) = &customers[0];
    let got = app
        .get(&format!("/api/v3/openmeter/customers/{without}"))
        .await;
    assert_eq!(
        got.body["billing_address"],
        json!({"country": "DE", "postal_code": "10117", "city": "Berlin", "line1": "Unter den Linden 1"})
    );
    let (with, kept) = &customers[1];
    let got = app
        .get(&format!("/api/v3/openmeter/customers/{with}"))
        .await;
    assert_eq!(&got.body["billing_address"], kept);
}

/// An app whose endpoint was created before meterpay pinned the API version
/// gets a new endpoint of that version when meterpay starts, even when two
/// processes start at once; the old endpoint is deleted, and events keep
/// arriving and verifying throughout.
async fn endpoints_move_to_the_pinned_api_version_on_start(backend: Backend) {
    use sqlx::Row;
    let app = TestApp::start(backend).await;
    let (id, url, _, key) = hosted_checkout(&app).await;
    let pool = app.server.store().pool();
    let endpoints = crate::apps::stripe_get(&app, &key, "/v1/webhook_endpoints").await;
    let old = endpoints["data"][0].clone();
    assert_eq!(endpoints["data"].as_array().unwrap().len(), 1);
    assert_eq!(old["api_version"], stripe_emulator::API_VERSION);
    let app_id = old["metadata"]["meterpay_app_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // As an endpoint of an older meterpay: no version recorded.
    sqlx::query("UPDATE apps SET webhook_api_version = NULL")
        .execute(pool)
        .await
        .unwrap();
    let mut args = crate::harness::serve_args(app.database_url.clone());
    args.stripe_api_base = app.emu.base_url();
    args.public_url = Some(app.base.clone());
    let (a, b) = tokio::join!(
        meterpay::Server::start(&args),
        meterpay::Server::start(&args)
    );
    let (_a, _b) = (a.unwrap(), b.unwrap());
    let mut row = None;
    for _ in 0..200 {
        let r = sqlx::query(
            "SELECT webhook_endpoint_id, webhook_api_version, previous_webhook_endpoint_id, \
             previous_webhook_secret_encrypted FROM apps WHERE id = $1",
        )
        .bind(&app_id)
        .fetch_one(pool)
        .await
        .unwrap();
        let version: Option<String> = r.try_get("webhook_api_version").unwrap();
        let previous: Option<String> = r.try_get("previous_webhook_endpoint_id").unwrap();
        if version.is_some() && previous.is_none() {
            row = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let row = row.expect("the endpoint moved to the pinned version");
    let endpoint_id: String = row.try_get("webhook_endpoint_id").unwrap();
    let version: String = row.try_get("webhook_api_version").unwrap();
    let previous_secret: Option<String> = row.try_get("previous_webhook_secret_encrypted").unwrap();
    assert_eq!(version, stripe_emulator::API_VERSION);
    assert_eq!(previous_secret, None);
    assert_ne!(json!(endpoint_id), old["id"]);

    // Stripe has exactly the new endpoint: same URL, events and metadata.
    let endpoints = crate::apps::stripe_get(&app, &key, "/v1/webhook_endpoints").await;
    let data = endpoints["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{endpoints}");
    let new = &data[0];
    assert_eq!(new["id"], json!(endpoint_id));
    for field in ["url", "enabled_events", "metadata", "api_version"] {
        assert_eq!(new[field], old[field], "{field}");
    }
    let creates = app
        .emu
        .requests(0)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/webhook_endpoints")
        .map(|r| r.idempotency_key)
        .collect::<Vec<_>>();
    // The install's, then one per process that found the old endpoint (a
    // process starting after the other finished finds nothing to do).
    assert!((2..=3).contains(&creates.len()), "{creates:?}");
    assert!(
        creates[1..].iter().all(|key| key == &creates[1]),
        "one idempotency key for one replacement: {creates:?}"
    );

    // An endpoint of the pinned version subscribed to fewer events than
    // meterpay handles now is resubscribed in place on the next start.
    let resp = app
        .client
        .post(format!(
            "{}/v1/webhook_endpoints/{endpoint_id}",
            app.emu.base_url()
        ))
        .bearer_auth(&key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("enabled_events[0]=checkout.session.completed")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sqlx::query("UPDATE apps SET webhook_events = 'checkout.session.completed'")
        .execute(pool)
        .await
        .unwrap();
    let _c = meterpay::Server::start(&args).await.unwrap();
    let handled = new["enabled_events"].clone();
    let mut resubscribed = false;
    for _ in 0..200 {
        let events: Option<String> = sqlx::query("SELECT webhook_events FROM apps")
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get("webhook_events")
            .unwrap();
        if events
            .as_deref()
            .map(|e| json!(e.split(',').collect::<Vec<_>>()))
            == Some(handled.clone())
        {
            resubscribed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(resubscribed, "the endpoint was resubscribed");
    let endpoints = crate::apps::stripe_get(&app, &key, "/v1/webhook_endpoints").await;
    assert_eq!(endpoints["data"].as_array().unwrap().len(), 1);
    assert_eq!(endpoints["data"][0]["id"], json!(endpoint_id));
    assert_eq!(endpoints["data"][0]["enabled_events"], handled);

    // Events are signed with the new endpoint's secret and still verify.
    let status = pay(&url, "4242424242424242").await;
    assert!(
        (300..400).contains(&status),
        "hosted page answered {status}"
    );
    let billing = format!("/api/v3/openmeter/customers/{id}/billing");
    for _ in 0..100 {
        if app.get(&billing).await.body["app_data"]["stripe"]["default_payment_method_id"]
            .is_string()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the payment method never became the default");
}

/// A hosted checkout paid with a good card, once meterpay has acted on
/// Stripe's webhooks.
struct Completed {
    /// The meterpay customer.
    id: String,
    session_id: String,
    app_id: String,
    /// The checkout's 201 body.
    result: Value,
    /// The payment method that became the default.
    pm: String,
    /// The session's history entry once complete.
    done: Value,
}

async fn completed_checkout(app: &TestApp) -> Completed {
    let (id, url, result, _) = hosted_checkout(app).await;
    let session_id = result["session_id"].as_str().unwrap().to_owned();
    let open = history_entry(app, &id, &session_id, "open").await;
    let app_id = open["app_id"].as_str().unwrap().to_owned();
    assert_eq!(open, expected_entry(&result, &app_id, &open));

    let status = pay(&url, "4242424242424242").await;
    assert!(
        (300..400).contains(&status),
        "hosted page answered {status}"
    );
    let billing = format!("/api/v3/openmeter/customers/{id}/billing");
    let mut pm = Value::Null;
    for _ in 0..100 {
        pm =
            app.get(&billing).await.body["app_data"]["stripe"]["default_payment_method_id"].clone();
        if pm.is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pm = pm
        .as_str()
        .expect("default payment method set by the webhook")
        .to_owned();
    let done = history_entry(app, &id, &session_id, "complete").await;
    Completed {
        id,
        session_id,
        app_id,
        result,
        pm,
        done,
    }
}

/// The `setup_intent.succeeded` event Stripe sent for a completed checkout,
/// as JSON text, once it was delivered.
async fn delivered_setup_intent_event(app: &TestApp) -> (Value, String) {
    wait_for("webhook deliveries", || {
        !app.emu.webhook_deliveries().is_empty()
    })
    .await;
    let event = app
        .emu
        .events()
        .into_iter()
        .find(|e| e["type"] == "setup_intent.succeeded")
        .expect("setup_intent.succeeded");
    let payload = serde_json::to_string(&event).unwrap();
    (event, payload)
}

async fn completed_checkout_makes_the_payment_method_default(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = completed_checkout(&app).await;
    assert!(c.pm.starts_with("pm_"));
    let stripe_customer = c.result["stripe_customer_id"].as_str().unwrap();
    let cus = app.emu.object(stripe_customer).unwrap();
    assert_eq!(
        cus["invoice_settings"]["default_payment_method"],
        json!(c.pm)
    );
    // The history: complete, with the payment method.
    let mut expected = expected_entry(&c.result, &c.app_id, &c.done);
    expected["status"] = json!("complete");
    expected["payment_method_id"] = json!(c.pm);
    assert_eq!(c.done, expected);
    // v1 shows the default too.
    let v1 = app.get("/api/v1/customers/acme/stripe").await;
    assert_eq!(v1.body["stripeDefaultPaymentMethodId"], json!(c.pm));
}

async fn replayed_event_changes_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = completed_checkout(&app).await;
    // Every delivery was acknowledged; replaying one changes nothing.
    let (_, payload) = delivered_setup_intent_event(&app).await;
    let secret = webhook_secret(&app, &c.app_id).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let path = format!("/api/v1/apps/{}/stripe/webhook", c.app_id);
    let since = last_request(&app);
    let replay = post_event(
        &app,
        &path,
        &payload,
        Some(stripe_emulator::signature_header(&secret, now, &payload)),
    )
    .await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(
        replay.body,
        json!({
            "namespaceId": meterpay::ids::namespace_ulid("default").to_string(),
            "appId": c.app_id,
            "message": "event already processed",
        })
    );
    assert_schema(Spec::V1, "StripeWebhookResponse", &replay.body);
    assert!(app.emu.requests(since).is_empty(), "a replay called Stripe");
    let billing = format!("/api/v3/openmeter/customers/{}/billing", c.id);
    assert_eq!(
        app.get(&billing).await.body["app_data"]["stripe"]["default_payment_method_id"],
        json!(c.pm)
    );
    assert_eq!(
        history_entry(&app, &c.id, &c.session_id, "complete").await,
        c.done
    );
}

async fn forged_signature_is_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = completed_checkout(&app).await;
    let (event, payload) = delivered_setup_intent_event(&app).await;
    let secret = webhook_secret(&app, &c.app_id).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let path = format!("/api/v1/apps/{}/stripe/webhook", c.app_id);
    let since = last_request(&app);
    // Forged, wrong-secret, stale and missing signatures: 400, nothing changes.
    let forged = payload
        .replace(&c.pm, "pm_forged")
        .replace(event["id"].as_str().unwrap(), "evt_forged");
    let cases = [
        // The payload's signature with its hex tampered with.
        (
            Some(stripe_emulator::signature_header(&secret, now, &payload).replace("v1=", "v1=00")),
            invalid_problem(
                json!([{"field": "Stripe-Signature", "reason": "no v1 signature in the Stripe-Signature header matches the payload and this app's signing secret", "rule": "invalid", "source": "header"}]),
            ),
        ),
        // Signed with another secret.
        (
            Some(stripe_emulator::signature_header(
                "whsec_wrong",
                now,
                &forged,
            )),
            invalid_problem(
                json!([{"field": "Stripe-Signature", "reason": "no v1 signature in the Stripe-Signature header matches the payload and this app's signing secret", "rule": "invalid", "source": "header"}]),
            ),
        ),
        // Not signed.
        (
            None,
            invalid_problem(
                json!([{"field": "Stripe-Signature", "reason": "the Stripe-Signature header is missing", "rule": "invalid", "source": "header"}]),
            ),
        ),
    ];
    for (header, expected) in cases {
        let resp = post_event(&app, &path, &forged, header).await;
        assert_problem(&resp, expected);
    }
    // Signed more than five minutes ago. The age is the server's reading
    // (its clock may tick between signing and checking).
    let signed_at = time::OffsetDateTime::now_utc().unix_timestamp() - 301;
    let header = stripe_emulator::signature_header(&secret, signed_at, &forged);
    let resp = post_event(&app, &path, &forged, Some(header)).await;
    let age = resp.body["invalid_parameters"][0]["reason"]
        .as_str()
        .and_then(|reason| reason.strip_prefix("the Stripe-Signature timestamp is "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|age| age.parse::<i64>().ok())
        .unwrap_or(301);
    assert!((301..=305).contains(&age), "{}", resp.body);
    let reason = format!(
        "the Stripe-Signature timestamp is {age} s away from now, beyond the 300 s tolerance"
    );
    assert_problem(
        &resp,
        invalid_problem(
            json!([{"field": "Stripe-Signature", "reason": reason, "rule": "invalid",
            "source": "header"}]),
        ),
    );
    let billing = format!("/api/v3/openmeter/customers/{}/billing", c.id);
    assert_eq!(
        app.get(&billing).await.body["app_data"]["stripe"]["default_payment_method_id"],
        json!(c.pm)
    );
    assert_eq!(
        history_entry(&app, &c.id, &c.session_id, "complete").await,
        c.done
    );
    assert!(
        app.emu.requests(since).is_empty(),
        "a refused delivery called Stripe"
    );
}

async fn body_over_1_mib_is_413(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (installed, _, _) = install_stripe_app(&app, false).await;
    let path = format!(
        "/api/v1/apps/{}/stripe/webhook",
        installed["id"].as_str().unwrap()
    );
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    let resp = post_event(&app, &path, &big, None).await;
    assert_problem(
        &resp,
        problem_of(413, "The request body is larger than 1048576 bytes"),
    );
}

async fn unknown_app_is_404(backend: Backend) {
    let app = TestApp::start(backend).await;
    let payload = serde_json::to_string(&event(
        "evt_1UnknownApp",
        "setup_intent.succeeded",
        json!({"id": "seti_1UnknownApp", "object": "setup_intent"}),
    ))
    .unwrap();
    let resp = post_event(
        &app,
        "/api/v1/apps/01J00000000000000000000000/stripe/webhook",
        &payload,
        None,
    )
    .await;
    assert_problem(
        &resp,
        problem_of(404, "app [01J00000000000000000000000] not found"),
    );
}

async fn declined_card_fails_without_a_default(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, url, result, _) = hosted_checkout(&app).await;
    pay(&url, "4000000000000002").await;
    let session_id = result["session_id"].as_str().unwrap().to_owned();
    let failed = history_entry(&app, &id, &session_id, "failed").await;
    let app_id = failed["app_id"].as_str().unwrap().to_owned();
    let mut expected = expected_entry(&result, &app_id, &failed);
    expected["status"] = json!("failed");
    expected["failure_reason"] = json!("Your card was declined.");
    assert_eq!(failed, expected);
    let billing = app
        .get(&format!("/api/v3/openmeter/customers/{id}/billing"))
        .await;
    assert!(
        billing.body["app_data"]["stripe"]
            .get("default_payment_method_id")
            .is_none(),
        "{}",
        billing.body
    );
    let cus = app
        .emu
        .object(result["stripe_customer_id"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        cus["invoice_settings"]["default_payment_method"],
        Value::Null
    );
}

async fn same_event_delivered_at_once_to_two_servers_has_one_effect(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, url, result, _) = hosted_checkout(&app).await;
    pay(&url, "4242424242424242").await;
    let session_id = result["session_id"].as_str().unwrap().to_owned();
    let done = history_entry(&app, &id, &session_id, "complete").await;
    let app_id = done["app_id"].as_str().unwrap().to_owned();
    wait_for("the webhook deliveries", || {
        app.emu.webhook_deliveries().len() >= 2
    })
    .await;

    // A second meterpay on the same database, as a second process would be.
    let mut args = crate::harness::serve_args(app.database_url.clone());
    args.stripe_api_base = app.emu.base_url();
    let second = meterpay::Server::start(&args)
        .await
        .expect("start a second meterpay");

    // A new event (new id) with the same effect, delivered eight times at once,
    // while Stripe is slow enough that deliveries overlap.
    let mut event = app
        .emu
        .events()
        .into_iter()
        .find(|e| e["type"] == "setup_intent.succeeded")
        .unwrap();
    event["id"] = json!("evt_1ConcurrentDelivery0001");
    let payload = serde_json::to_string(&event).unwrap();
    let secret = webhook_secret(&app, &app_id).await;
    let path = format!("/api/v1/apps/{app_id}/stripe/webhook");
    app.emu
        .set_faults(vec!["POST /v1/customers:latency_ms=300".parse().unwrap()]);
    let since = last_request(&app);
    let deliveries = (0..8)
        .map(|i| {
            let base = if i % 2 == 0 {
                app.base.clone()
            } else {
                second.base_url()
            };
            let client = app.client.clone();
            let payload = payload.clone();
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let sig = stripe_emulator::signature_header(&secret, now, &payload);
            let url = format!("{base}{path}");
            tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("stripe-signature", sig)
                    .body(payload)
                    .send()
                    .await
                    .unwrap();
                Resp::from(resp).await
            })
        })
        .collect::<Vec<_>>();
    let mut processed = 0;
    let mut busy = 0;
    for d in deliveries {
        let resp = d.await.unwrap();
        match (resp.status, resp.body["message"].as_str()) {
            (200, Some("event processed")) => processed += 1,
            (200, Some("event already processed")) => {}
            (503, _) => {
                busy += 1;
                assert_problem(
                    &resp,
                    problem_of(
                        503,
                        "event [evt_1ConcurrentDelivery0001] is being processed by another delivery",
                    ),
                );
            }
            other => panic!("unexpected answer {other:?}: {}", resp.body),
        }
    }
    app.emu.clear_faults();
    assert_eq!(
        processed, 1,
        "exactly one delivery acts ({busy} were told to retry)"
    );
    // Stripe's retries of the refused ones change nothing either.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for _ in 0..busy {
        let resp = post_event(
            &app,
            &path,
            &payload,
            Some(stripe_emulator::signature_header(&secret, now, &payload)),
        )
        .await;
        assert_eq!(
            (resp.status, resp.body["message"].as_str()),
            (200, Some("event already processed")),
            "{}",
            resp.body
        );
    }
    let updates: Vec<_> = app
        .emu
        .requests(since)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v1/customers/"))
        .collect();
    assert_eq!(updates.len(), 1, "one Stripe customer update: {updates:?}");
    let mut after = history_entry(&app, &id, &session_id, "complete").await;
    after["updated_at"] = done["updated_at"].clone();
    assert_eq!(after, done);
}

async fn stripe_unreachable_leaves_the_event_for_stripes_retry(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, url, result, _) = hosted_checkout(&app).await;
    pay(&url, "4242424242424242").await;
    let session_id = result["session_id"].as_str().unwrap().to_owned();
    let done = history_entry(&app, &id, &session_id, "complete").await;
    let app_id = done["app_id"].as_str().unwrap().to_owned();
    let mut event = app
        .emu
        .events()
        .into_iter()
        .find(|e| e["type"] == "setup_intent.succeeded")
        .unwrap();
    event["id"] = json!("evt_1StripeDownDuringDelivery");
    let payload = serde_json::to_string(&event).unwrap();
    let secret = webhook_secret(&app, &app_id).await;
    let path = format!("/api/v1/apps/{app_id}/stripe/webhook");

    app.emu
        .set_faults(vec!["POST /v1/customers:error=500".parse().unwrap()]);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sig = stripe_emulator::signature_header(&secret, now, &payload);
    let resp = post_event(&app, &path, &payload, Some(sig.clone())).await;
    assert_problem(
        &resp,
        problem_of(
            503,
            "Stripe is unavailable: update customer: Stripe answered 500: Something went wrong on Stripe's end. (Injected by the emulator.)",
        ),
    );
    // Not marked processed: Stripe's next delivery acts on it.
    app.emu.clear_faults();
    let Resp { status, body, .. } = post_event(&app, &path, &payload, Some(sig)).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("event processed")),
        "{body}"
    );
    assert_eq!(body["customerId"], json!(id));
}

async fn completed_session_meterpay_never_recorded_is_recorded_from_the_event(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (id, _, result, key) = hosted_checkout(&app).await;
    let stripe_customer = result["stripe_customer_id"].as_str().unwrap().to_owned();
    // A setup session for the same Stripe customer that meterpay did not
    // record (as if it had stopped right after Stripe created it).
    let form = [
        ("mode", "setup"),
        ("customer", stripe_customer.as_str()),
        ("currency", "usd"),
        ("success_url", "https://app.example/elsewhere"),
        ("client_reference_id", "crm-42"),
    ];
    let created: Value = reqwest::Client::new()
        .post(format!("{}/v1/checkout/sessions", app.emu.base_url()))
        .bearer_auth(&key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_id = created["id"].as_str().unwrap().to_owned();
    pay(created["url"].as_str().unwrap(), "4242424242424242").await;
    let entry = history_entry(&app, &id, &session_id, "complete").await;
    assert_eq!(
        entry,
        json!({
            "session_id": session_id,
            "app_id": entry["app_id"],
            "customer_id": id,
            "stripe_customer_id": stripe_customer,
            "setup_intent_id": created["setup_intent"],
            "status": "complete",
            "mode": "setup",
            "ui_mode": "hosted",
            "currency": "USD",
            "success_url": "https://app.example/elsewhere",
            "client_reference_id": "crm-42",
            "expires_at": crate::support::assert_rfc3339(&entry["expires_at"]),
            "created_at": crate::support::assert_rfc3339(&entry["created_at"]),
            "updated_at": crate::support::assert_rfc3339(&entry["updated_at"]),
        })
    );
    assert_eq!(entry["app_id"], result_app_id(&app, &id, &result).await);
    // Both sessions are in the history, newest first.
    let list = app
        .get(&format!(
            "/api/v3/openmeter/customers/{id}/billing/stripe/checkout-sessions"
        ))
        .await;
    let ids: Vec<_> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(session_id), result["session_id"].clone()]);
}

/// An app with an open hosted session, before any event of interest.
struct Quiet {
    app: TestApp,
    /// The meterpay customer.
    id: String,
    session_id: String,
    /// The session's history entry, open.
    open: Value,
    app_id: String,
    secret: String,
    stripe_customer: Value,
    /// The emulator's last request before the event.
    since: u64,
}

impl Quiet {
    async fn start(backend: Backend) -> Quiet {
        let app = TestApp::start(backend).await;
        let (id, _, result, _) = hosted_checkout(&app).await;
        let session_id = result["session_id"].as_str().unwrap().to_owned();
        let open = history_entry(&app, &id, &session_id, "open").await;
        let app_id = open["app_id"].as_str().unwrap().to_owned();
        let secret = webhook_secret(&app, &app_id).await;
        let since = last_request(&app);
        Quiet {
            id,
            session_id,
            open,
            app_id,
            secret,
            stripe_customer: result["stripe_customer_id"].clone(),
            since,
            app,
        }
    }

    async fn deliver(&self, event: &Value) -> Resp {
        deliver(&self.app, &self.app_id, &self.secret, event).await
    }

    /// The acknowledgement of an event meterpay ignored, and why.
    fn ignored(&self, why: &str) -> Value {
        json!({
            "namespaceId": meterpay::ids::namespace_ulid("default").to_string(),
            "appId": self.app_id,
            "message": format!("ignored: {why}"),
        })
    }

    /// A succeeded setup intent of the session's Stripe customer.
    fn intent(&self, metadata: Value) -> Value {
        json!({"id": "seti_1Foreign", "object": "setup_intent",
        "customer": self.stripe_customer, "payment_method": "pm_1Foreign", "status": "succeeded", "metadata": metadata})
    }

    /// Nothing changed, and Stripe was not called.
    async fn assert_nothing_changed(&self) {
        let app = &self.app;
        assert!(app.emu.requests(self.since).is_empty());
        assert_eq!(
            history_entry(app, &self.id, &self.session_id, "open").await,
            self.open
        );
        let billing = app
            .get(&format!("/api/v3/openmeter/customers/{}/billing", self.id))
            .await;
        assert!(
            billing.body["app_data"]["stripe"]
                .get("default_payment_method_id")
                .is_none(),
            "{}",
            billing.body
        );
    }
}

async fn event_of_an_unhandled_type_is_ignored(backend: Backend) {
    let q = Quiet::start(backend).await;
    let resp = q
        .deliver(&event(
            "evt_1Unhandled",
            "customer.updated",
            json!({"id": q.stripe_customer, "object": "customer"}),
        ))
        .await;
    assert_eq!(
        (resp.status, resp.body),
        (
            200,
            q.ignored("meterpay does not handle customer.updated events")
        )
    );
    q.assert_nothing_changed().await;
}

async fn setup_intent_without_meterpay_metadata_is_ignored(backend: Backend) {
    let q = Quiet::start(backend).await;
    let resp = q
        .deliver(&event(
            "evt_1NoMetadata",
            "setup_intent.succeeded",
            q.intent(json!({})),
        ))
        .await;
    assert_eq!(
        (resp.status, resp.body),
        (200, q.ignored("setup intent without meterpay metadata"))
    );
    q.assert_nothing_changed().await;
}

/// One Stripe account installed in several namespaces sends every event to
/// every endpoint: another install's event is answered 200 and changes nothing
/// (a 4xx would have Stripe retry it for days, then disable the endpoint).
async fn event_of_another_install_is_acknowledged_and_ignored(backend: Backend) {
    let q = Quiet::start(backend).await;
    for (n, (namespace, named_app)) in [
        ("default", "01J00000000000000000000000"),
        ("other", q.app_id.as_str()),
    ]
    .into_iter()
    .enumerate()
    {
        let metadata = json!({"meterpay_namespace": namespace, "meterpay_app_id": named_app,
            "meterpay_customer_id": q.id});
        let resp = q
            .deliver(&event(
                &format!("evt_1Foreign{n}"),
                "setup_intent.succeeded",
                q.intent(metadata),
            ))
            .await;
        let why = format!(
            "the event is for app [{named_app}] in namespace [{namespace}], another install of this Stripe account"
        );
        assert_eq!((resp.status, resp.body), (200, q.ignored(&why)));
    }
    q.assert_nothing_changed().await;
}

/// Setup intents created by an upstream OpenMeter install carry `om_*`
/// metadata; after a migration they are handled as meterpay's own.
async fn upstream_openmeter_metadata_is_read_as_meterpays(backend: Backend) {
    let q = Quiet::start(backend).await;
    let setup_intent = q.open["setup_intent_id"].as_str().unwrap().to_owned();
    let resp = q
        .deliver(&event(
            "evt_1Upstream",
            "setup_intent.setup_failed",
            json!({"id": setup_intent, "object": "setup_intent",
                "customer": q.stripe_customer, "status": "requires_payment_method",
                "last_setup_error": {"code": "card_declined", "message": "Your card was declined."},
                "metadata": {"om_namespace": "default", "om_app_id": q.app_id, "om_customer_id": q.id}}),
        ))
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.body["message"], "event processed");
    let failed = history_entry(&q.app, &q.id, &q.session_id, "failed").await;
    let mut expected = q.open.clone();
    expected["status"] = json!("failed");
    expected["failure_reason"] = json!("Your card was declined.");
    expected["updated_at"] = failed["updated_at"].clone();
    assert_eq!(failed, expected);
}

async fn session_of_an_unlinked_stripe_customer_is_ignored(backend: Backend) {
    let q = Quiet::start(backend).await;
    // A completed setup session of a Stripe customer no meterpay customer is linked to.
    let resp = q
        .deliver(&event(
            "evt_1Stranger",
            "checkout.session.completed",
            json!({"id": "cs_test_stranger", "object": "checkout.session", "mode": "setup",
                "customer": "cus_Stranger", "status": "complete", "created": 1_790_000_000}),
        ))
        .await;
    assert_eq!(
        (resp.status, resp.body),
        (
            200,
            q.ignored(
                "session [cs_test_stranger] belongs to Stripe customer [cus_Stranger], which no meterpay customer is linked to"
            )
        )
    );
    q.assert_nothing_changed().await;
}

/// Signs and posts an event to the app's webhook.
async fn deliver(app: &TestApp, app_id: &str, secret: &str, event: &Value) -> Resp {
    let payload = serde_json::to_string(event).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let sig = stripe_emulator::signature_header(secret, now, &payload);
    post_event(
        app,
        &format!("/api/v1/apps/{app_id}/stripe/webhook"),
        &payload,
        Some(sig),
    )
    .await
}

fn event(id: &str, kind: &str, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "api_version": "2026-01-28.clover",
           "created": 1_790_000_000, "livemode": false, "data": {"object": object}})
}

/// The app id of the session `hosted_checkout` created (from its history entry).
async fn result_app_id(app: &TestApp, customer: &str, result: &Value) -> Value {
    let session = result["session_id"].as_str().unwrap();
    let path = format!(
        "/api/v3/openmeter/customers/{customer}/billing/stripe/checkout-sessions/{session}"
    );
    app.get(&path).await.body["app_id"].clone()
}

pub fn last_request(app: &TestApp) -> u64 {
    app.emu.requests(0).last().map_or(0, |r| r.seq)
}

pub async fn webhook_secret(app: &TestApp, app_id: &str) -> String {
    let id: meterpay::ids::AppId = app_id.parse().unwrap();
    let secrets = app
        .server
        .store()
        .app_secrets("default", id)
        .await
        .unwrap()
        .unwrap();
    let key = meterpay::secrets::Secrets::from_base64(crate::harness::TEST_ENCRYPTION_KEY).unwrap();
    key.decrypt(
        &secrets.webhook_secret_encrypted.unwrap(),
        &format!("app:{id}:webhook_secret"),
    )
    .unwrap()
}

pub async fn post_event(
    app: &TestApp,
    path: &str,
    payload: &str,
    signature: Option<String>,
) -> Resp {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(sig) = signature {
        req = req.header("stripe-signature", sig);
    }
    Resp::from(req.send().await.unwrap()).await
}
