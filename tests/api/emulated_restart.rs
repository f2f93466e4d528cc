//! `serve --emulate-stripe` restarted on the same data directory: the
//! emulator's state lives there too, so the Stripe customer meterpay remembers
//! still exists (its next checkout is a 201, not Stripe's "No such customer"),
//! and a checkout session created before the restart completes, with its
//! webhook reaching meterpay.

use std::net::SocketAddr;
use std::time::Duration;

use meterpay::Server;
use meterpay::config::ServeArgs;
use serde_json::{Value, json};

use crate::harness::{Backend, Resp, TempDir, postgres_schema_url, serve_args, temp_dir};
use crate::webhooks::pay;

crate::both_backends!(a_restart_keeps_the_emulated_stripe_state);

/// `serve --emulate-stripe` with its data directory in `dir` (and the
/// database of `backend`).
async fn emulated_args(backend: Backend, dir: &TempDir) -> ServeArgs {
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.0.join("meterpay.db").display()),
        Backend::Postgres => postgres_schema_url().await,
    };
    let mut args = serve_args(url);
    args.emulate_stripe = true;
    args.database.data_dir = dir.0.clone();
    args
}

async fn send(request: reqwest::RequestBuilder) -> Resp {
    Resp::from(request.send().await.expect("request failed")).await
}

async fn checkout(client: &reqwest::Client, base: &str, customer: &str) -> Resp {
    send(
        client
            .post(format!(
                "{base}/api/v3/openmeter/customers/{customer}/billing/stripe/checkout-sessions"
            ))
            .json(&json!({"stripe_options": {"success_url": "https://example.com/ok"}})),
    )
    .await
}

async fn a_restart_keeps_the_emulated_stripe_state(backend: Backend) {
    let dir = temp_dir();
    let client = reqwest::Client::new();
    let mut args = emulated_args(backend, &dir).await;
    let server = Server::start(&args).await.expect("start meterpay");
    let base = server.base_url();
    let emulator_addr: SocketAddr = server.emulator().expect("the emulator").local_addr();
    let customer = send(
        client
            .post(format!("{base}/api/v3/openmeter/customers"))
            .json(&json!({"name": "ACME", "key": "acme", "currency": "USD"})),
    )
    .await;
    assert_eq!(customer.status, 201, "{}", customer.body);
    let customer = customer.body["id"].as_str().unwrap().to_owned();
    let before = checkout(&client, &base, &customer).await;
    assert_eq!(before.status, 201, "{}", before.body);
    crate::contract::assert_checkout_result(&before.body);
    server.shutdown().await.expect("shut down");
    assert!(dir.0.join(meterpay::EMULATOR_STATE_FILE).exists());

    // The same command again: same data directory, same addresses.
    args.listen = base.trim_start_matches("http://").parse().unwrap();
    args.emulator_listen = emulator_addr;
    let server = Server::start(&args).await.expect("restart meterpay");
    assert_eq!(server.base_url(), base);

    // The same customer checks out again: its Stripe customer is still there.
    let after = checkout(&client, &base, &customer).await;
    assert_eq!(after.status, 201, "{}", after.body);
    crate::contract::assert_checkout_result(&after.body);
    assert_eq!(after.body["customer_id"], before.body["customer_id"]);
    assert_eq!(
        after.body["stripe_customer_id"],
        before.body["stripe_customer_id"]
    );
    assert_ne!(after.body["session_id"], before.body["session_id"]);

    // One webhook endpoint: the restart registered a new one and deleted the last.
    let endpoints: Value = client
        .get(format!("http://{emulator_addr}/v1/webhook_endpoints"))
        .bearer_auth(stripe_emulator::DEFAULT_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let endpoints = endpoints["data"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    assert!(
        endpoints[0]["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{base}/api/v1/apps/"))
    );

    // The session created before the restart is completed on the hosted page;
    // Stripe's webhook makes the card the customer's default in meterpay.
    let url = before.body["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("http://{emulator_addr}/c/pay/")));
    let status = pay(url, "4242424242424242").await;
    assert!(
        (300..400).contains(&status),
        "hosted page answered {status}"
    );
    let session = before.body["session_id"].as_str().unwrap();
    let entry_path = format!(
        "{base}/api/v3/openmeter/customers/{customer}/billing/stripe/checkout-sessions/{session}"
    );
    let mut entry = Value::Null;
    for _ in 0..100 {
        let resp = send(client.get(&entry_path)).await;
        assert_eq!(resp.status, 200, "{}", resp.body);
        entry = resp.body;
        if entry["status"] == "complete" && entry["payment_method_id"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(entry["status"], "complete", "{entry}");
    let pm = entry["payment_method_id"].as_str().unwrap().to_owned();
    assert!(pm.starts_with("pm_"), "{entry}");
    let billing = send(client.get(format!(
        "{base}/api/v3/openmeter/customers/{customer}/billing"
    )))
    .await;
    assert_eq!(
        billing.body["app_data"]["stripe"]["default_payment_method_id"],
        json!(pm),
        "{}",
        billing.body
    );
    let stripe_customer: Value = client
        .get(format!(
            "http://{emulator_addr}/v1/customers/{}",
            before.body["stripe_customer_id"].as_str().unwrap()
        ))
        .bearer_auth(stripe_emulator::DEFAULT_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stripe_customer["invoice_settings"]["default_payment_method"],
        json!(pm)
    );
    server.shutdown().await.expect("shut down");
}
