//! What operators read: the real binary's log output (`--log-format json` and
//! `text`, at debug level) over an app install with a key, a refused key, a
//! checkout paid on the hosted page, the webhook that follows and a forged
//! one. Every request's lines carry its id; no API token, Stripe key,
//! webhook secret, encryption key or card number appears anywhere.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::process::{ENCRYPTION_KEY, Meterpay, call, client};

const TOKEN: &str = "mp_ops_log_token_5b0e7f3c9a1d";
const BOGUS_KEY: &str = "sk_test_NoSuchKeyAtStripe000000000042";
const CARD: &str = "4242 4242 4242 4242";

/// What one run used and saw.
struct Run {
    lines: Vec<String>,
    secrets: Vec<String>,
    /// `x-request-id` of every meterpay response.
    request_ids: Vec<String>,
}

async fn run(format: &str) -> Run {
    let server = Meterpay::start(
        format,
        &[
            ("METERPAY_API_TOKENS", &format!("{TOKEN}=default")),
            ("METERPAY_LOG", "debug"),
        ],
    );
    let http = client();
    let base = server.base.clone();
    let mut api = Api {
        http: http.clone(),
        base: base.clone(),
        request_ids: Vec::new(),
    };

    // A Stripe account of its own, installed with its key; a key Stripe does
    // not know is refused first.
    let account: Value = http
        .post(format!("{}/_emulator/accounts", server.emulator))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = account["secret_key"].as_str().unwrap().to_owned();
    let (status, body) = api
        .send(
            Method::POST,
            "/api/v3/openmeter/app-catalog/install",
            Some(json!({"type": "stripe", "name": "Refused", "api_key": BOGUS_KEY})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api.send(
        Method::POST,
        "/api/v3/openmeter/app-catalog/install",
        Some(json!({"type": "stripe", "name": "Second", "create_billing_profile": false, "api_key": key})),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // A checkout on the default profile (the emulated app), paid on the hosted page.
    let (status, customer) = api.send(
        Method::POST,
        "/api/v3/openmeter/customers",
        Some(json!({"name": "ACME Inc.", "key": "acme", "primary_email": "billing@acme.example", "currency": "USD"})),
    )
    .await;
    assert_eq!(status, 201, "{customer}");
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    let (status, session) = api.send(
        Method::POST,
        &format!("/api/v3/openmeter/customers/{customer_id}/billing/stripe/checkout-sessions"),
        Some(json!({"stripe_options": {"success_url": "https://app.example/ok?session={CHECKOUT_SESSION_ID}"}})),
    )
    .await;
    assert_eq!(status, 201, "{session}");
    let url = session["url"].as_str().unwrap();
    let paid = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("card_number", CARD),
                    ("exp", "12 / 34"),
                    ("cvc", "123"),
                    ("name", "Ada Lovelace"),
                ])
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303, "{}", paid.text().await.unwrap());

    // The webhook saves the card as the customer's default.
    let billing = format!("/api/v3/openmeter/customers/{customer_id}/billing");
    let mut saved = false;
    for _ in 0..200 {
        let (status, body) = api.send(Method::GET, &billing, None).await;
        assert_eq!(status, 200, "{body}");
        if body["app_data"]["stripe"]["default_payment_method_id"].is_string() {
            saved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saved, "the checkout's webhook never saved the card");

    // A forged event for each app is refused.
    let (status, apps) = api.send(Method::GET, "/api/v3/openmeter/apps", None).await;
    assert_eq!(status, 200, "{apps}");
    let app_ids: Vec<String> = apps["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|app| app["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(app_ids.len(), 2, "{apps}");
    for app_id in &app_ids {
        let resp = http
            .post(format!("{base}/api/v1/apps/{app_id}/stripe/webhook"))
            .header("stripe-signature", format!("t=1,v1={}", "ab".repeat(32)))
            .header("content-type", "application/json")
            .body(r#"{"id":"evt_forged","type":"checkout.session.completed"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        api.request_ids
            .push(resp.headers()["x-request-id"].to_str().unwrap().to_owned());
    }

    // The webhook secrets meterpay keeps (encrypted) for both apps.
    let store = meterpay::store::Store::connect(&server.database_url())
        .await
        .unwrap();
    let box_ = meterpay::secrets::Secrets::from_base64(ENCRYPTION_KEY).unwrap();
    let mut secrets = vec![
        TOKEN.to_owned(),
        ENCRYPTION_KEY.to_owned(),
        stripe_emulator::DEFAULT_API_KEY.to_owned(),
        key,
        BOGUS_KEY.to_owned(),
        CARD.to_owned(),
        CARD.replace(' ', ""),
    ];
    for app_id in &app_ids {
        let id: meterpay::ids::AppId = app_id.parse().unwrap();
        let stored = store.app_secrets("default", id).await.unwrap().unwrap();
        let secret = box_
            .decrypt(
                &stored.webhook_secret_encrypted.unwrap(),
                &format!("app:{id}:webhook_secret"),
            )
            .unwrap();
        assert!(secret.starts_with("whsec_"));
        secrets.push(secret);
    }
    store.close().await;

    let lines = server.stop();
    Run {
        lines,
        secrets,
        request_ids: api.request_ids,
    }
}

/// meterpay's API with the test's token, keeping every response's request id.
struct Api {
    http: reqwest::Client,
    base: String,
    request_ids: Vec<String>,
}

impl Api {
    async fn send(&mut self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let (status, id, body) = call(&self.http, &self.base, TOKEN, method, path, body).await;
        assert!(!id.is_empty(), "no x-request-id on {path}");
        self.request_ids.push(id);
        (status, body)
    }
}

fn assert_no_secret(run: &Run) {
    assert!(
        run.lines.len() > 50,
        "expected a debug-level log, got {} lines",
        run.lines.len()
    );
    for line in &run.lines {
        for secret in run.secrets.iter().map(String::as_str).chain(["whsec_"]) {
            assert!(
                !line.contains(secret),
                "a log line shows the secret {secret:?}:\n{line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_request_ids_and_no_secret() {
    let run = run("json").await;
    assert_no_secret(&run);
    let lines: Vec<Value> = run
        .lines
        .iter()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect();
    let request_id = |line: &Value| line["span"]["request_id"].as_str().map(str::to_owned);
    // One access line per response, in the span of its request.
    for id in &run.request_ids {
        let access: Vec<&Value> = lines
            .iter()
            .filter(|line| {
                line["target"] == "tower_http::trace::on_response"
                    && request_id(line).as_deref() == Some(id.as_str())
            })
            .collect();
        assert_eq!(access.len(), 1, "access lines of request {id}: {access:?}");
        assert!(access[0]["fields"]["status"].is_number(), "{}", access[0]);
        assert_eq!(access[0]["span"]["name"], "request");
    }
    // What the request did is logged with its id too: the checkout, the
    // webhook the emulator delivered and every Stripe call made for them.
    let of = |target: &str, message: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|line| {
                line["target"] == target && line["fields"]["message"].as_str() == Some(message)
            })
            .collect()
    };
    let checkout = of("meterpay::service::checkout", "created checkout session");
    let handled = of("meterpay::service::webhooks", "Stripe event handled");
    let stripe_calls = of("meterpay::stripe::client", "Stripe call succeeded");
    assert_eq!(checkout.len(), 1, "{checkout:?}");
    assert!(!handled.is_empty());
    assert!(!stripe_calls.is_empty());
    for line in checkout.iter().chain(&handled).chain(&stripe_calls) {
        if line["fields"]["message"] == "Stripe call succeeded" && request_id(line).is_none() {
            // Calls made at start (the emulated app's install) belong to no request.
            continue;
        }
        let id = request_id(line).unwrap_or_else(|| panic!("no request id: {line}"));
        assert_eq!(id.len(), 26, "{line}");
    }
    assert!(request_id(checkout[0]).is_some_and(|id| run.request_ids.contains(&id)));
    // Every line inside a request's span carries its id.
    for line in &lines {
        if line["span"]["name"] == "request" {
            assert!(request_id(line).is_some(), "{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_carry_request_ids_and_no_secret() {
    let run = run("text").await;
    assert_no_secret(&run);
    for line in &run.lines {
        assert!(
            serde_json::from_str::<Value>(line).is_err(),
            "a JSON line in text mode: {line}"
        );
        assert!(!line.contains('\u{1b}'), "colour codes in a file: {line}");
    }
    for id in &run.request_ids {
        let access = run
            .lines
            .iter()
            .filter(|line| {
                line.contains(&format!("request_id={id}")) && line.contains("on_response")
            })
            .count();
        assert_eq!(
            access,
            1,
            "access lines of request {id}; its lines:\n{}",
            run.lines
                .iter()
                .filter(|line| line.contains(id.as_str()))
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let checkout = run
        .lines
        .iter()
        .find(|line| line.contains("created checkout session"))
        .expect("the checkout's line");
    assert!(checkout.contains("request{request_id="), "{checkout}");
}
