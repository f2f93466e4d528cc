//! End to end: checkout → the emulator's hosted page completed over HTTP →
//! Stripe's signed webhooks → the payment method is the customer's default,
//! in meterpay and in Stripe. Plus what must be refused.

use std::time::Duration;

use serde_json::{Value, json};

use crate::apps::install_stripe_app;
use crate::customers_v3::customer;
use crate::harness::TestApp;

async fn hosted_checkout(app: &TestApp) -> (String, String, Value) {
    install_stripe_app(app, true).await;
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
    (id, resp.body["url"].as_str().unwrap().to_owned(), resp.body)
}

/// Submits the hosted page's form as a browser would.
async fn pay(url: &str, card: &str) -> u16 {
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

async fn wait_for<F: Fn() -> bool>(what: &str, check: F) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn session_status(
    app: &TestApp,
    session_id: &str,
) -> (String, Option<String>, Option<String>) {
    let s = app
        .server
        .store()
        .get_checkout_session("default", session_id)
        .await
        .unwrap()
        .unwrap();
    (s.status, s.payment_method_id, s.failure_reason)
}

crate::both_backends! {
    async fn completed_checkout_makes_the_payment_method_default(app) {
        let (id, url, result) = hosted_checkout(&app).await;
        let status = pay(&url, "4242424242424242").await;
        assert!((300..400).contains(&status), "hosted page answered {status}");
        let billing = format!("/api/v3/openmeter/customers/{id}/billing");
        let mut pm = Value::Null;
        for _ in 0..100 {
            pm = app.get(&billing).await.body["app_data"]["stripe"]["default_payment_method_id"].clone();
            if pm.is_string() { break; }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pm = pm.as_str().expect("default payment method set by the webhook").to_owned();
        assert!(pm.starts_with("pm_"));
        let stripe_customer = result["stripe_customer_id"].as_str().unwrap();
        let cus = app.emu.object(stripe_customer).unwrap();
        assert_eq!(cus["invoice_settings"]["default_payment_method"], json!(pm));
        let session_id = result["session_id"].as_str().unwrap().to_owned();
        for _ in 0..100 {
            if session_status(&app, &session_id).await.0 == "complete" { break; }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, session_pm, _) = session_status(&app, &session_id).await;
        assert_eq!((status.as_str(), session_pm.as_deref()), ("complete", Some(pm.as_str())));
        // v1 shows it too.
        let v1 = app.get("/api/v1/customers/acme/stripe").await;
        assert_eq!(v1.body["stripeDefaultPaymentMethodId"], json!(pm));

        // Every delivery was acknowledged; replaying one changes nothing.
        wait_for("webhook deliveries", || !app.emu.webhook_deliveries().is_empty()).await;
        let event = app.emu.events().into_iter()
            .find(|e| e["type"] == "setup_intent.succeeded").expect("setup_intent.succeeded");
        let app_id = event["data"]["object"]["metadata"]["meterpay_app_id"].as_str().unwrap().to_owned();
        let payload = serde_json::to_string(&event).unwrap();
        let secret = webhook_secret(&app, &app_id).await;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let path = format!("/api/v1/apps/{app_id}/stripe/webhook");
        let replay = post_event(&app, &path, &payload, Some(stripe_emulator::signature_header(&secret, now, &payload))).await;
        assert_eq!(replay.0, 200, "{}", replay.1);
        assert_eq!(replay.1["message"], "event already processed");

        // Forged, wrong-secret, stale and missing signatures: 400, nothing changes.
        let forged = payload.replace(&pm, "pm_forged");
        for header in [
            Some(stripe_emulator::signature_header(&secret, now, &payload).replace("v1=", "v1=00")),
            Some(stripe_emulator::signature_header("whsec_wrong", now, &forged)),
            Some(stripe_emulator::signature_header(&secret, now - 301, &forged)),
            None,
        ] {
            let (status, body) = post_event(&app, &path, &forged, header.clone()).await;
            assert_eq!(status, 400, "{header:?}: {body}");
            assert_eq!(body["invalid_parameters"][0]["field"], "Stripe-Signature");
        }
        assert_eq!(app.get(&billing).await.body["app_data"]["stripe"]["default_payment_method_id"], json!(pm));
        // Over 1 MiB: 413.
        let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
        let (status, body) = post_event(&app, &path, &big, None).await;
        assert_eq!(status, 413, "{body}");
        // Unknown app: 404.
        let (status, _) = post_event(&app, "/api/v1/apps/01J00000000000000000000000/stripe/webhook", &payload, None).await;
        assert_eq!(status, 404);
    }

    async fn declined_card_fails_without_a_default(app) {
        let (id, url, result) = hosted_checkout(&app).await;
        pay(&url, "4000000000000002").await;
        let session_id = result["session_id"].as_str().unwrap().to_owned();
        for _ in 0..100 {
            if session_status(&app, &session_id).await.0 == "failed" { break; }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, pm, reason) = session_status(&app, &session_id).await;
        assert_eq!((status.as_str(), pm), ("failed", None));
        assert!(reason.is_some());
        let billing = app.get(&format!("/api/v3/openmeter/customers/{id}/billing")).await;
        assert!(billing.body["app_data"]["stripe"].get("default_payment_method_id").is_none(), "{}", billing.body);
    }
}

async fn webhook_secret(app: &TestApp, app_id: &str) -> String {
    let id = ulid::Ulid::from_string(app_id).unwrap();
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

async fn post_event(
    app: &TestApp,
    path: &str,
    payload: &str,
    signature: Option<String>,
) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(sig) = signature {
        req = req.header("stripe-signature", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}
