//! A real browser pays: headless Chromium, driven over WebDriver
//! (chromedriver + fantoccini), on the emulator's hosted pages of a real
//! `meterpay serve --emulate-stripe`. Screenshots go to
//! `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).
//! Without them the tests say so and pass, except under `CI=true`, where
//! they fail.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::process::{Meterpay, call, client};

const TOKEN: &str = "mp_ops_browser_token_0c4f";

/// A headless Chromium session and the chromedriver serving it.
struct Browser {
    client: Client,
    driver: Child,
}

impl Browser {
    /// Ends the session (Chromium quits), then chromedriver.
    async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// chromedriver runs in a process group of its own with the Chromium it
    /// started: end them all, also when a test fails half way.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Starts chromedriver and a headless Chromium session; `None` (after saying
/// why) when they are not installed and this is not CI.
async fn browser() -> Option<Browser> {
    let chromium = on_path(&["chromium", "chromium-browser"]);
    let driver = on_path(&["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        let message = "chromium and chromedriver are needed for the browser tests \
            (Debian: apt-get install -y chromium chromium-driver)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}; CI=true, so they must run");
        }
        eprintln!("SKIPPED: {message}");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let mut driver = Command::new(driver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(resp) = http.get(format!("{url}/status")).send().await
            && resp.status().is_success()
        {
            break;
        }
        if let Ok(Some(status)) = driver.try_wait() {
            panic!("chromedriver exited: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not answer within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=900,1300", "--hide-scrollbars"],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&url)
        .await
        .expect("a Chromium session");
    Some(Browser { client, driver })
}

/// `target/screenshots/NAME.png`.
async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    let path = dir.join(format!("{name}.png"));
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(&path, png).expect("write the screenshot");
    path
}

/// Types into the field with this id (after clearing it).
async fn fill(client: &Client, id: &str, text: &str) {
    let field = client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"));
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

/// Clicks the element with this id and waits (bounded) until the page it
/// was on is gone: the next page's elements are the ones found after this.
async fn click(client: &Client, id: &str) {
    let element = client
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id}: {e}"));
    element.click().await.expect("click");
    let deadline = Instant::now() + Duration::from_secs(20);
    // A reference to an element of a page that was left is stale.
    while element.tag_name().await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "clicking #{id} did not leave the page"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) for an element with this id to be on the page.
async fn wait_for(client: &Client, id: &str) -> fantoccini::elements::Element {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(element) = client.find(Locator::Id(id)).await {
            return element;
        }
        assert!(
            Instant::now() < deadline,
            "#{id} never appeared; the page:\n{}",
            client.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of the element with this id, once it is there.
async fn text(client: &Client, id: &str) -> String {
    wait_for(client, id).await.text().await.unwrap()
}

/// A merchant's page for Checkout to send the customer back to.
async fn shop() -> String {
    use axum::extract::RawQuery;
    use axum::response::Html;
    let app = axum::Router::new().route(
        "/done",
        axum::routing::get(|RawQuery(query): RawQuery| async move {
            let query = query.unwrap_or_default();
            let session = query.strip_prefix("session=").unwrap_or_default().to_owned();
            Html(format!(
                "<!doctype html><html><body style=\"font-family:sans-serif;margin:48px\">\
                 <h1>Thanks, your card is saved</h1><p>Checkout Session <code id=\"session\">{}</code></p></body></html>",
                session.replace(['<', '>', '&', '"'], "")
            ))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_saves_a_card_through_hosted_checkout() {
    let Some(browser) = browser().await else {
        return;
    };
    let b = &browser.client;
    let server = Meterpay::start(
        "text",
        &[("METERPAY_API_TOKENS", &format!("{TOKEN}=default"))],
    );
    let http = client();
    let shop = shop().await;
    let (status, _, customer) = call(
        &http,
        &server.base,
        TOKEN,
        Method::POST,
        "/api/v3/openmeter/customers",
        Some(json!({"name": "ACME Inc.", "key": "acme", "primary_email": "billing@acme.example", "currency": "USD"})),
    )
    .await;
    assert_eq!(status, 201, "{customer}");
    let customer_id = customer["id"].as_str().unwrap();
    let (status, _, session) = call(
        &http,
        &server.base,
        TOKEN,
        Method::POST,
        &format!("/api/v3/openmeter/customers/{customer_id}/billing/stripe/checkout-sessions"),
        Some(json!({"stripe_options": {
            "success_url": format!("{shop}/done?session={{CHECKOUT_SESSION_ID}}"),
            "cancel_url": format!("{shop}/cancel"),
        }})),
    )
    .await;
    assert_eq!(status, 201, "{session}");
    let session_id = session["session_id"].as_str().unwrap();

    b.goto(session["url"].as_str().unwrap())
        .await
        .expect("open the hosted checkout");
    wait_for(b, "cardNumber").await;
    // Whose page, for whom, what for, and that it is a test.
    assert_eq!(text(b, "merchant-name").await, "meterpay emulated account");
    assert_eq!(text(b, "test-mode").await, "TEST MODE");
    assert_eq!(
        text(b, "customer").await,
        "ACME Inc. · billing@acme.example"
    );
    assert_eq!(
        text(b, "setting-up").await,
        "A card for future payments in USD"
    );
    screenshot(b, "checkout-form").await;

    // A mistyped number: the error sits under the number; the rest is kept.
    fill(b, "cardNumber", "4242 4242 4242 4241").await;
    fill(b, "cardExpiry", "12 / 34").await;
    fill(b, "cardCvc", "123").await;
    fill(b, "billingName", "Ada Lovelace").await;
    click(b, "submit").await;
    let error = wait_for(b, "error").await;
    assert_eq!(
        error.text().await.unwrap(),
        "Your card number is incorrect."
    );
    assert!(
        b.find(Locator::Css("#cardNumber[aria-invalid=true] + #error"))
            .await
            .is_ok(),
        "the error is not under the card number"
    );
    assert_eq!(
        b.find(Locator::Id("billingName"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("Ada Lovelace")
    );
    screenshot(b, "checkout-invalid-number").await;

    // A declined card: the page says so next to the form, nothing is saved.
    fill(b, "cardNumber", "4000 0000 0000 0002").await;
    fill(b, "cardExpiry", "12 / 34").await;
    fill(b, "cardCvc", "123").await;
    fill(b, "billingName", "Ada Lovelace").await;
    click(b, "submit").await;
    let error = wait_for(b, "error").await;
    assert_eq!(error.text().await.unwrap(), "Your card was declined.");
    screenshot(b, "checkout-declined").await;

    // 4242: saved, and back at the merchant with the session id filled in.
    fill(b, "cardNumber", "4242 4242 4242 4242").await;
    fill(b, "cardExpiry", "12 / 34").await;
    fill(b, "cardCvc", "123").await;
    fill(b, "billingName", "Ada Lovelace").await;
    screenshot(b, "checkout-filled").await;
    click(b, "submit").await;
    let shown = wait_for(b, "session").await;
    let landed = b.current_url().await.unwrap();
    assert_eq!(landed.as_str(), format!("{shop}/done?session={session_id}"));
    assert_eq!(shown.text().await.unwrap(), session_id);
    screenshot(b, "checkout-success").await;

    // The webhook made the card the customer's default; it is the card Stripe saved.
    let setup_intent = emulator_object(
        &http,
        &server.emulator,
        session["setup_intent_id"].as_str().unwrap(),
    )
    .await;
    let payment_method = setup_intent["payment_method"].as_str().unwrap().to_owned();
    assert_eq!(
        emulator_object(&http, &server.emulator, &payment_method).await["card"]["last4"],
        "4242"
    );
    let billing = format!("/api/v3/openmeter/customers/{customer_id}/billing");
    let body = poll(&http, &server.base, &billing, |b| {
        !b["app_data"]["stripe"]["default_payment_method_id"].is_null()
    })
    .await;
    assert_eq!(
        body["app_data"]["stripe"]["default_payment_method_id"],
        json!(payment_method)
    );
    browser.close().await;
    server.stop();
}

/// An object as the emulator at `emulator` stores it (its control API).
async fn emulator_object(http: &reqwest::Client, emulator: &str, id: &str) -> Value {
    http.get(format!("{emulator}/_emulator/objects/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls `path` on meterpay until `done` holds of its body (at most ~10 s).
async fn poll(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut body = Value::Null;
    for _ in 0..200 {
        let (status, _, got) = call(http, base, TOKEN, Method::GET, path, None).await;
        assert_eq!(status, 200, "{got}");
        body = got;
        if done(&body) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_pays_a_meterpay_invoice_on_its_hosted_page() {
    let Some(browser) = browser().await else {
        return;
    };
    let b = &browser.client;
    let server = Meterpay::start(
        "text",
        &[("METERPAY_API_TOKENS", &format!("{TOKEN}=default"))],
    );
    let http = client();
    let api = async |method: Method, path: &str, body: Option<Value>| -> Value {
        let (status, _, body) = call(&http, &server.base, TOKEN, method, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {body}");
        body
    };
    // The installed Stripe app, and a profile that sends invoices to be paid
    // on Stripe's hosted page (approved at once).
    let apps = api(Method::GET, "/api/v3/openmeter/apps", None).await;
    let app_id = apps["data"][0]["id"].as_str().unwrap().to_owned();
    api(
        Method::POST,
        "/api/v1/billing/profiles",
        Some(json!({
            "name": "Sent invoices", "supplier": {"name": "Meter Co"}, "default": true,
            "workflow": {"invoicing": {"autoAdvance": true, "draftPeriod": "PT0S", "dueAfter": "P30D"},
                         "payment": {"collectionMethod": "send_invoice"}},
            "apps": {"tax": app_id, "invoicing": app_id, "payment": app_id},
        })),
    )
    .await;
    let customer = api(
        Method::POST,
        "/api/v3/openmeter/customers",
        Some(json!({"name": "ACME Inc.", "key": "acme", "primary_email": "billing@acme.example", "currency": "USD"})),
    )
    .await;
    let customer_id = customer["id"].as_str().unwrap().to_owned();
    // A checkout session makes the customer's Stripe customer (no card is
    // saved: the customer pays the sent invoice on its page).
    api(
        Method::POST,
        &format!("/api/v3/openmeter/customers/{customer_id}/billing/stripe/checkout-sessions"),
        Some(json!({"stripe_options": {"success_url": "https://shop.example/done"}})),
    )
    .await;
    let period = json!({"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"});
    api(
        Method::POST,
        &format!("/api/v1/billing/customers/{customer_id}/invoices/pending-lines"),
        Some(json!({"currency": "USD", "lines": [
            {"name": "Platform fee", "period": period, "invoiceAt": "2026-11-01T00:00:00Z",
             "rateCard": {"price": {"type": "flat", "amount": "19.99", "paymentTerm": "in_arrears"}}},
            {"name": "API calls", "period": period, "invoiceAt": "2026-11-01T00:00:00Z",
             "rateCard": {"price": {"type": "unit", "amount": "0.0025"}}, "quantity": "1200"}]})),
    )
    .await;
    let invoices = api(
        Method::POST,
        "/api/v1/billing/invoices/invoice",
        Some(json!({"customerId": customer_id})),
    )
    .await;
    let invoice_id = invoices[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/billing/invoices/{invoice_id}");
    let issued = poll(&http, &server.base, &path, |i| {
        i["externalIds"]["invoicing"].is_string()
    })
    .await;
    assert_eq!(
        issued["statusDetails"]["extendedStatus"], "payment_processing.pending",
        "{issued}"
    );
    assert_eq!(issued["totals"]["total"], "22.99", "{issued}");
    let stripe_id = issued["externalIds"]["invoicing"].as_str().unwrap();
    let stripe_invoice = emulator_object(&http, &server.emulator, stripe_id).await;
    assert_eq!(stripe_invoice["status"], "open", "{stripe_invoice}");

    // meterpay returns Stripe's hosted invoice page of the invoice it issued.
    let page = issued["externalIds"]["hostedInvoiceUrl"].as_str().unwrap();
    assert_eq!(stripe_invoice["hosted_invoice_url"], json!(page));
    b.goto(page).await.expect("open the hosted invoice page");
    wait_for(b, "cardNumber").await;
    assert_eq!(text(b, "merchant-name").await, "meterpay emulated account");
    assert_eq!(text(b, "test-mode").await, "TEST MODE");
    assert_eq!(
        text(b, "billed-to").await,
        "ACME Inc. · billing@acme.example"
    );
    assert_eq!(text(b, "amount-due").await, "22.99 USD");
    assert_eq!(text(b, "submit").await, "Pay 22.99 USD");
    let lines = b.find_all(Locator::Css("#lines tbody tr")).await.unwrap();
    let mut shown = Vec::new();
    for line in lines {
        shown.push(line.text().await.unwrap());
    }
    assert_eq!(shown, ["Platform fee 1 19.99 USD", "API calls 1 3.00 USD"]);
    screenshot(b, "invoice-open").await;
    fill(b, "cardNumber", "4242 4242 4242 4242").await;
    fill(b, "cardExpiry", "12 / 34").await;
    fill(b, "cardCvc", "123").await;
    fill(b, "billingName", "Ada Lovelace").await;
    click(b, "submit").await;
    wait_for(b, "paid").await;
    screenshot(b, "invoice-paid").await;

    // Stripe's invoice.paid webhook moved meterpay's invoice to paid.
    let paid = poll(&http, &server.base, &path, |i| i["status"] == "paid").await;
    assert_eq!(
        (&paid["status"], &paid["statusDetails"]["extendedStatus"]),
        (&json!("paid"), &json!("paid")),
        "{paid}"
    );
    let stripe_invoice = emulator_object(&http, &server.emulator, stripe_id).await;
    assert_eq!(
        (
            &stripe_invoice["status"],
            &stripe_invoice["amount_paid"],
            &stripe_invoice["amount_remaining"]
        ),
        (&json!("paid"), &json!(2299), &json!(0))
    );
    browser.close().await;
    server.stop();
}
