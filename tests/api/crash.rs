//! The real `meterpay serve` binary killed (SIGKILL) in the middle of a
//! burst of checkouts and webhook deliveries, then started again on the same
//! database: no session it answered 201 for is missing from the history, no
//! customer mapping is lost, no event is applied twice, and the requests the
//! clients (and Stripe) send again after the restart make no duplicate in
//! Stripe.
//!
//! The binary talks to the test's Stripe emulator; the test delivers the
//! Stripe events itself, signed with the app's secret (the emulator's own
//! deliveries to the endpoint are disabled, so every delivery is counted).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Row;

use crate::harness::{
    Backend, Resp, TestApp, completed_session_events, created_objects, disable_webhook_endpoints,
    pay_session, spawn_meterpay, wait_ready,
};

crate::both_backends!(meterpay_killed_mid_burst_loses_nothing_and_duplicates_nothing);

/// Customers getting their first checkout during the burst (two at once each).
const COLD: usize = 10;
/// Customers with a Stripe customer already (two checkouts each).
const WARM: usize = 6;
/// Customers whose completed session's two events are delivered (twice each).
const PAYING: usize = 8;

/// One request of the burst; sent again as is after the restart.
#[derive(Clone, Debug)]
enum Call {
    /// A v3 checkout for the customer (id).
    Checkout(String),
    /// A signed delivery of an event (id, payload).
    Event(String, String),
}

/// What became of a request: its answer, or none (the process died).
type Outcome = Option<Resp>;

async fn send(
    client: &reqwest::Client,
    base: &str,
    app_id: &str,
    secret: &str,
    call: &Call,
) -> Outcome {
    let req = match call {
        Call::Checkout(id) => client
            .post(format!(
                "{base}/api/v3/openmeter/customers/{id}/billing/stripe/checkout-sessions"
            ))
            .json(&json!({"stripe_options": {"success_url": "https://app.example/ok"}})),
        Call::Event(_, payload) => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            client
                .post(format!("{base}/api/v1/apps/{app_id}/stripe/webhook"))
                .header("content-type", "application/json")
                .header(
                    "stripe-signature",
                    stripe_emulator::signature_header(secret, now, payload),
                )
                .body(payload.clone())
        }
    };
    let resp = req.send().await.ok()?;
    // A connection cut in the middle of the answer is no answer either.
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.ok()?;
    Some(Resp {
        status,
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    })
}

async fn checkout(app: &TestApp, id: &str) -> Resp {
    app.post(
        &format!("/api/v3/openmeter/customers/{id}/billing/stripe/checkout-sessions"),
        json!({"stripe_options": {"success_url": "https://app.example/ok"}}),
    )
    .await
}

/// Whether an answer to `call` is one the burst may get (before or after
/// the crash): the success, a retryable 503 (an event another delivery is
/// processing), and for events "already processed".
#[track_caller]
fn check_answer(call: &Call, resp: &Resp) {
    match call {
        Call::Checkout(_) => assert_eq!(resp.status, 201, "{call:?}: {}", resp.body),
        Call::Event(..) => {
            let ok = match (resp.status, resp.body["message"].as_str()) {
                (200, Some("event processed" | "event already processed")) => true,
                (503, _) => resp.headers.get("retry-after").is_some(),
                _ => false,
            };
            assert!(ok, "{call:?}: {} {}", resp.status, resp.body);
        }
    }
}

/// Notes what a successful answer to `call` made: a checkout's session
/// (session → (customer, Stripe customer)), an event processed (count).
fn record(
    call: &Call,
    resp: &Resp,
    sessions: &mut BTreeMap<String, (String, String)>,
    processed: &mut BTreeMap<String, usize>,
) {
    match call {
        Call::Checkout(id) => {
            sessions.insert(
                resp.body["session_id"].as_str().unwrap().to_owned(),
                (
                    id.clone(),
                    resp.body["stripe_customer_id"].as_str().unwrap().to_owned(),
                ),
            );
        }
        Call::Event(event, _) if resp.body["message"] == "event processed" => {
            *processed.entry(event.clone()).or_default() += 1;
        }
        Call::Event(..) => {}
    }
}

async fn meterpay_killed_mid_burst_loses_nothing_and_duplicates_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, stripe_key, _) = crate::apps::install_stripe_app(&app, true).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    let secret = crate::webhooks::webhook_secret(&app, &app_id).await;
    // Every delivery comes from the test.
    disable_webhook_endpoints(&app, &stripe_key).await;

    let mut ids = Vec::new();
    for n in 0..COLD + WARM + PAYING {
        let c = crate::customers_v3::customer(
            &app,
            json!({"name": format!("Customer {n}"), "key": format!("c{n}"), "currency": "USD"}),
        )
        .await;
        ids.push(c["id"].as_str().unwrap().to_owned());
    }
    let (cold, rest) = ids.split_at(COLD);
    let (warm, paying) = rest.split_at(WARM);
    for id in warm {
        assert_eq!(checkout(&app, id).await.status, 201);
    }
    // Paying customers completed a session; its events await delivery.
    let mut expected_pm = BTreeMap::new();
    let mut paid_sessions = BTreeMap::new();
    for id in paying {
        let resp = checkout(&app, id).await;
        assert_eq!(resp.status, 201, "{}", resp.body);
        let session = resp.body["session_id"].as_str().unwrap().to_owned();
        let pm = pay_session(&app, &session, "4242424242424242", true);
        expected_pm.insert(id.clone(), json!(pm));
        paid_sessions.insert(id.clone(), session);
    }
    let events = completed_session_events(&app);
    assert_eq!(events.len(), 2 * PAYING);

    // The burst against the real binary, with Stripe slow enough that
    // requests are in flight when it is killed.
    let dir = crate::harness::temp_dir();
    let (mut first, base) = spawn_meterpay(&app, &dir.0, &[]);
    wait_ready(&app.client, &base).await;
    // Checkouts and deliveries interleaved; each twice at once.
    let checkouts = cold.iter().chain(warm).map(|id| Call::Checkout(id.clone()));
    let deliveries = events
        .iter()
        .map(|(id, payload)| Call::Event(id.clone(), payload.clone()));
    assert_eq!(COLD + WARM, events.len());
    let mut calls = Vec::new();
    for (a, b) in checkouts.zip(deliveries) {
        calls.extend([a.clone(), a, b.clone(), b]);
    }
    app.emu
        .set_faults(vec!["*:latency_ms=150".parse().unwrap()]);
    let answered = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let (client, base, app_id, secret, call) = (
                app.client.clone(),
                base.clone(),
                app_id.clone(),
                secret.clone(),
                call.clone(),
            );
            let answered = answered.clone();
            tokio::spawn(async move {
                // Spread over a third of a second.
                tokio::time::sleep(Duration::from_millis(5 * i as u64)).await;
                let outcome = send(&client, &base, &app_id, &secret, &call).await;
                if matches!(call, Call::Checkout(_)) && outcome.is_some() {
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                outcome
            })
        })
        .collect();
    // Killed once a quarter of the checkouts were answered.
    for _ in 0..1000 {
        if answered.load(Ordering::SeqCst) >= (COLD + WARM) / 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().unwrap(); // SIGKILL
    let _ = first.wait();
    let mut before: Vec<Outcome> = Vec::new();
    for handle in handles {
        before.push(handle.await.unwrap());
    }
    app.emu.clear_faults();

    // What the clients saw before the crash.
    let mut sessions: BTreeMap<String, (String, String)> = BTreeMap::new(); // session → (customer, cus)
    let mut processed: BTreeMap<String, usize> = BTreeMap::new();
    let mut unanswered = 0;
    let mut status_before: BTreeMap<(&str, u16), usize> = BTreeMap::new();
    for (call, outcome) in calls.iter().zip(&before) {
        let Some(resp) = outcome else {
            unanswered += 1;
            continue;
        };
        let kind = match call {
            Call::Checkout(_) => "checkout",
            Call::Event(..) => "event",
        };
        *status_before.entry((kind, resp.status)).or_default() += 1;
        check_answer(call, resp);
        record(call, resp, &mut sessions, &mut processed);
    }
    let answered_201 = sessions.len();
    assert!(
        unanswered > 0,
        "the process was killed with requests in flight"
    );

    // Started again on the same database; everything not answered with a
    // success is sent again, as clients and Stripe do.
    let (mut second, base) = spawn_meterpay(&app, &dir.0, &[]);
    wait_ready(&app.client, &base).await;
    let mut retried = 0;
    let mut aged_claims = 0;
    for round in 0..3 {
        let mut again = Vec::new();
        for (call, outcome) in calls.iter().zip(before.iter_mut()) {
            let done = outcome.as_ref().is_some_and(|resp| resp.status < 300);
            if done {
                continue;
            }
            retried += 1;
            let resp = send(&app.client, &base, &app_id, &secret, call)
                .await
                .expect("the restarted process answers");
            check_answer(call, &resp);
            record(call, &resp, &mut sessions, &mut processed);
            if resp.status >= 300 {
                again.push(call.clone());
            }
            *outcome = Some(resp);
        }
        if again.is_empty() {
            break;
        }
        // Events the dead process had claimed stay claimed until the claim
        // is stale (two minutes): Stripe retries later. The test ages them.
        assert!(round < 2, "still refused: {again:?}");
        let aged = sqlx::query(
            "UPDATE stripe_events SET claimed_at = '2000-01-01T00:00:00.000000Z' \
             WHERE state = 'processing'",
        )
        .execute(app.server.store().pool())
        .await
        .unwrap();
        aged_claims += aged.rows_affected();
    }

    // Nothing answered 201 is lost; every session is in Stripe and in the history.
    let history = |customer: &str, session: &str| {
        app.client
            .get(format!(
                "{base}/api/v3/openmeter/customers/{customer}/billing/stripe/checkout-sessions/{session}"
            ))
            .send()
    };
    for (session, (customer, cus)) in &sessions {
        let resp = Resp::from(history(customer, session).await.unwrap()).await;
        assert_eq!(resp.status, 200, "session {session} lost: {}", resp.body);
        assert_eq!(resp.body["stripe_customer_id"], json!(cus));
        assert!(app.emu.object(session).is_some());
    }
    assert_eq!(sessions.len(), 2 * (COLD + WARM));
    // One Stripe customer per meterpay customer, and the mapping kept.
    let mut per_customer: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in created_objects(&app, "customer") {
        if let Some(ours) = c["metadata"]["meterpay_customer_id"].as_str() {
            per_customer
                .entry(ours.to_owned())
                .or_default()
                .insert(c["id"].as_str().unwrap().to_owned());
        }
    }
    let duplicates = per_customer.values().filter(|s| s.len() > 1).count();
    assert_eq!(duplicates, 0, "{per_customer:?}");
    assert_eq!(per_customer.len(), COLD + WARM + PAYING);
    for (session, (customer, cus)) in &sessions {
        assert_eq!(
            per_customer[customer].iter().next(),
            Some(cus),
            "session {session}"
        );
        let billing = Resp::from(
            app.client
                .get(format!(
                    "{base}/api/v3/openmeter/customers/{customer}/billing"
                ))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            billing.body["app_data"]["stripe"]["customer_id"],
            json!(cus),
            "{}",
            billing.body
        );
    }
    // Every event applied exactly once: answered "processed" at most once,
    // recorded processed once, and its effect is there.
    let rows = sqlx::query("SELECT event_id, state FROM stripe_events")
        .fetch_all(app.server.store().pool())
        .await
        .unwrap();
    let recorded: BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r.get::<String, _>("event_id"), r.get::<String, _>("state")))
        .collect();
    assert_eq!(rows.len(), events.len());
    for (event, _) in &events {
        assert_eq!(recorded.get(event).map(String::as_str), Some("processed"));
        assert!(
            processed.get(event).copied().unwrap_or(0) <= 1,
            "{event} applied twice"
        );
    }
    let twice = processed.values().filter(|n| **n > 1).count();
    for id in paying {
        let billing = Resp::from(
            app.client
                .get(format!("{base}/api/v3/openmeter/customers/{id}/billing"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            billing.body["app_data"]["stripe"]["default_payment_method_id"],
            expected_pm[id]
        );
        let entry = Resp::from(history(id, &paid_sessions[id]).await.unwrap()).await;
        assert_eq!(entry.body["status"], "complete", "{}", entry.body);
    }
    second.kill().unwrap();
    let _ = second.wait();
    println!(
        "crash ({backend:?}): {} requests ({} checkouts, {} event deliveries), killed after {} answers; \
         before the kill {status_before:?}, {unanswered} unanswered, {answered_201} sessions answered 201; \
         {retried} sent again after the restart ({aged_claims} claims of the dead process aged); \
         {} sessions, {} Stripe customers, duplicates found: {duplicates}; events applied twice: {twice}",
        calls.len(),
        2 * (COLD + WARM),
        2 * events.len(),
        calls.len() - unanswered,
        sessions.len(),
        per_customer.len(),
    );
}
