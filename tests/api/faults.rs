//! Stripe misbehaving under load: a burst of 60 concurrent requests
//! (cold and warm checkouts through v3 and v1, invoice approvals that issue
//! and pay through Stripe) while the emulator adds latency to every call and
//! answers some with 429, 500, a dropped connection or a lost response (the
//! request was done, its answer never arrives). Every request ends 201 (200
//! for the approvals) or 503 with `Retry-After` and a problem document,
//! never 500; the failed ones are retried once Stripe is back (as clients
//! do); and Stripe ends up with no duplicate customer, invoice or invoice
//! item, and with every session meterpay answered 201 for.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::harness::{Backend, Resp, TestApp, created_objects, save_card, stripe_post};

crate::both_backends!(
    a_burst_through_stripe_faults_ends_clean_and_without_duplicates,
    racing_first_mappings_of_one_customer_all_get_it,
);

const COLD: usize = 10;
const WARM: usize = 10;
const INVOICED: usize = 20;

/// The injected faults, each at its own rate (see the emulator's fault
/// rules: the first whose error fires wins, the latency applies to all).
const FAULTS: [&str; 5] = [
    "POST /v1/:error=429,rate=0.15",
    "POST /v1/:error=500,rate=0.15",
    "POST /v1/:error=drop,rate=0.1",
    "POST /v1/:error=drop_after,rate=0.1",
    "*:latency_ms=20",
];

fn v3_checkout(customer: &str) -> String {
    format!("/api/v3/openmeter/customers/{customer}/billing/stripe/checkout-sessions")
}

/// One request of the burst, sent again as is when it failed.
#[derive(Clone, Debug)]
enum Call {
    /// A v3 checkout for the customer (id).
    CheckoutV3(String),
    /// A v1 checkout for the customer (key).
    CheckoutV1(String),
    /// `approve` of an invoice (id): issue in Stripe and charge the saved card.
    Approve(String),
}

impl Call {
    fn request(&self) -> (String, Value) {
        match self {
            Call::CheckoutV3(id) => (
                v3_checkout(id),
                json!({"stripe_options": {"success_url": "https://app.example/ok"}}),
            ),
            Call::CheckoutV1(key) => (
                "/api/v1/stripe/checkout/sessions".to_owned(),
                json!({"customer": {"key": key}, "options": {"successURL": "https://app.example/ok"}}),
            ),
            Call::Approve(id) => (format!("/api/v1/billing/invoices/{id}/approve"), json!({})),
        }
    }

    fn success(&self) -> u16 {
        match self {
            Call::Approve(_) => 200,
            _ => 201,
        }
    }
}

async fn send(app: &TestApp, call: &Call) -> Resp {
    let (path, body) = call.request();
    app.post(&path, body).await
}

/// A created session: (meterpay customer id, session id, Stripe customer id).
fn session_of(call: &Call, resp: &Resp) -> Option<(String, String, String)> {
    let b = &resp.body;
    match call {
        Call::CheckoutV3(_) => Some((
            b["customer_id"].as_str()?.to_owned(),
            b["session_id"].as_str()?.to_owned(),
            b["stripe_customer_id"].as_str()?.to_owned(),
        )),
        Call::CheckoutV1(_) => Some((
            b["customerId"].as_str()?.to_owned(),
            b["sessionId"].as_str()?.to_owned(),
            b["stripeCustomerId"].as_str()?.to_owned(),
        )),
        Call::Approve(_) => None,
    }
}

/// The whole answer is either the success or a retryable 503.
#[track_caller]
fn assert_acceptable(call: &Call, resp: &Resp) {
    if resp.status == call.success() {
        return;
    }
    assert!(
        matches!(resp.status, 502 | 503),
        "{call:?} answered {}: {}",
        resp.status,
        resp.body
    );
    let retry_after = resp
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|secs| secs > 0),
        "{call:?}: {} without a Retry-After in seconds: {:?}",
        resp.status,
        resp.headers
    );
    let problem = resp.problem();
    assert_eq!(problem["status"], resp.status, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("Stripe is unavailable: ")),
        "{problem}"
    );
}

/// Links customer `key` to a new Stripe customer with a saved default card.
async fn link_card(app: &TestApp, stripe_key: &str, app_id: &str, key: &str) {
    let cus = stripe_post(
        app,
        stripe_key,
        "/v1/customers",
        &format!("email={key}%40x.example"),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pm = save_card(app, stripe_key, &cus, "4242424242424242", true).await;
    let resp = app
        .put(
            &format!("/api/v1/customers/{key}/apps"),
            json!([{"type": "stripe", "id": app_id, "stripeCustomerId": cus,
                    "stripeDefaultPaymentMethodId": pm}]),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.body);
}

/// How many objects carry each value of metadata `field`.
fn count_by(objects: &[Value], field: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for o in objects {
        if let Some(v) = o["metadata"][field].as_str() {
            *counts.entry(v.to_owned()).or_default() += 1;
        }
    }
    counts
}

async fn invoice_status(app: &TestApp, id: &str) -> Value {
    let resp = app.get(&format!("/api/v1/billing/invoices/{id}")).await;
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.body
}

async fn a_burst_through_stripe_faults_ends_clean_and_without_duplicates(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, stripe_key, _) = crate::apps::install_stripe_app(&app, false).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    // Drafts wait for approval: the approval issues and charges.
    let resp = app
        .post(
            "/api/v1/billing/profiles",
            json!({"name": "Invoicing", "supplier": {"name": "Meter Co"}, "default": true,
                   "workflow": {"invoicing": {"autoAdvance": false}},
                   "apps": {"tax": app_id, "invoicing": app_id, "payment": app_id}}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.body);

    let mut customers: Vec<(String, String)> = Vec::new(); // (id, key)
    for n in 0..COLD + WARM + INVOICED {
        let key = format!("c{n}");
        let c = crate::customers_v3::customer(
            &app,
            json!({"name": format!("Customer {n}"), "key": key, "currency": "USD",
                   "primary_email": format!("{key}@x.example")}),
        )
        .await;
        customers.push((c["id"].as_str().unwrap().to_owned(), key));
    }
    let (cold, rest) = customers.split_at(COLD);
    let (warm, invoiced) = rest.split_at(WARM);
    // Warm customers have their Stripe customer from an earlier checkout.
    for (id, _) in warm {
        let resp = send(&app, &Call::CheckoutV3(id.clone())).await;
        assert_eq!(resp.status, 201, "{}", resp.body);
    }
    // Invoiced customers have a saved card and a draft of two lines.
    let mut drafts = Vec::new();
    for (n, (id, key)) in invoiced.iter().enumerate() {
        link_card(&app, &stripe_key, &app_id, key).await;
        let lines: Vec<Value> = (0..2)
            .map(|i| {
                json!({
                    "name": format!("Usage {i}"),
                    "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
                    "invoiceAt": "2026-11-01T00:00:00Z",
                    "rateCard": {"price": {"type": "flat", "amount": format!("{}.00", 10 + n + i),
                                           "paymentTerm": "in_arrears"}}})
            })
            .collect();
        let lines = json!({"currency": "USD", "lines": lines});
        let resp = app
            .post(
                &format!("/api/v1/billing/customers/{id}/invoices/pending-lines"),
                lines,
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.body);
        let resp = app
            .post(
                "/api/v1/billing/invoices/invoice",
                json!({"customerId": id}),
            )
            .await;
        assert_eq!(resp.status, 201, "{}", resp.body);
        drafts.push(resp.body[0]["id"].as_str().unwrap().to_owned());
    }

    // The burst: every cold and warm customer gets a v3 and a v1 checkout at
    // once (two first checkouts racing for a cold customer's Stripe
    // customer), and every draft is approved.
    let mut calls = Vec::new();
    for (id, key) in cold.iter().chain(warm) {
        calls.push(Call::CheckoutV3(id.clone()));
        calls.push(Call::CheckoutV1(key.clone()));
    }
    calls.extend(drafts.iter().cloned().map(Call::Approve));
    let log_start = app.emu.requests(0).last().map_or(0, |r| r.seq);
    app.emu
        .set_faults(FAULTS.iter().map(|f| f.parse().unwrap()).collect());
    let handles: Vec<_> = calls
        .iter()
        .map(|call| {
            let (path, body) = call.request();
            let req = app.client.post(format!("{}{path}", app.base)).json(&body);
            tokio::spawn(async move { Resp::from(req.send().await.expect("request")).await })
        })
        .collect();
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.unwrap());
    }
    app.emu.clear_faults();

    let mut outcomes: BTreeMap<u16, usize> = BTreeMap::new();
    let mut sessions = Vec::new();
    let mut failed = Vec::new();
    for (call, resp) in calls.iter().zip(&answers) {
        assert_acceptable(call, resp);
        *outcomes.entry(resp.status).or_default() += 1;
        if resp.status == call.success() {
            sessions.extend(session_of(call, resp));
        } else {
            failed.push(call.clone());
        }
    }
    let log = app.emu.requests(log_start);
    let mut injected: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &log {
        if let Some(fault) = &entry.fault {
            *injected.entry(fault.clone()).or_default() += 1;
        }
    }

    // Stripe is back: the clients retry what failed.
    let mut retried: BTreeMap<u16, usize> = BTreeMap::new();
    for call in &failed {
        let resp = send(&app, call).await;
        *retried.entry(resp.status).or_default() += 1;
        assert_eq!(resp.status, call.success(), "{call:?}: {}", resp.body);
        sessions.extend(session_of(call, &resp));
    }
    // Syncs Stripe interrupted are resumed by the invoice worker (after
    // their backoff) where they stopped.
    let later = time::Duration::hours(2);
    app.server.clock().advance(later);
    let mut resumed = 0;
    for _ in 0..5 {
        let worked = app.server.work_invoices_once().await.unwrap();
        resumed += worked;
        if worked == 0 {
            break;
        }
    }

    // No duplicates in Stripe: one customer per meterpay customer, one
    // invoice per meterpay invoice, one item per line.
    let stripe_customers = count_by(&created_objects(&app, "customer"), "meterpay_customer_id");
    let stripe_invoices = count_by(&created_objects(&app, "invoice"), "meterpay_invoice_id");
    let stripe_items = count_by(
        &created_objects(&app, "invoiceitem"),
        "meterpay_invoice_line_id",
    );
    let duplicates = [&stripe_customers, &stripe_invoices, &stripe_items]
        .iter()
        .flat_map(|counts| counts.values())
        .filter(|n| **n > 1)
        .count();
    println!(
        "faults ({backend:?}): {} requests sent ({} checkouts, {} approvals); {} Stripe calls, faults injected {injected:?}; outcomes {outcomes:?}; retried {} → {retried:?}; {resumed} syncs resumed by the worker; duplicates found: {duplicates}",
        calls.len(),
        calls.len() - drafts.len(),
        drafts.len(),
        log.len(),
        failed.len(),
    );
    assert_eq!(
        duplicates, 0,
        "customers {stripe_customers:?}, invoices {stripe_invoices:?}, items {stripe_items:?}"
    );
    assert!(
        injected.len() == 4,
        "every kind of fault was injected: {injected:?}"
    );
    // Each cold and warm customer has exactly one Stripe customer, the one
    // each of its sessions names, and meterpay maps it.
    for (id, _) in cold.iter().chain(warm) {
        assert_eq!(stripe_customers.get(id), Some(&1), "customer {id}");
    }
    assert_eq!(stripe_customers.len(), COLD + WARM);
    assert_eq!(sessions.len(), 2 * (COLD + WARM));
    for (customer, session, stripe_customer) in &sessions {
        let stripe = app
            .emu
            .object(session)
            .expect("the session exists in Stripe");
        assert_eq!(stripe["customer"], json!(stripe_customer), "{session}");
        let intent = app
            .emu
            .object(stripe["setup_intent"].as_str().unwrap())
            .unwrap();
        assert_eq!(intent["metadata"]["meterpay_customer_id"], json!(customer));
        let history = app
            .get(&format!("{}/{session}", v3_checkout(customer)))
            .await;
        assert_eq!(history.status, 200, "{session}: {}", history.body);
        assert_eq!(history.body["stripe_customer_id"], json!(stripe_customer));
        let billing = app
            .get(&format!("/api/v3/openmeter/customers/{customer}/billing"))
            .await;
        assert_eq!(
            billing.body["app_data"]["stripe"]["customer_id"],
            json!(stripe_customer),
            "{}",
            billing.body
        );
    }
    // Every invoice was issued in Stripe exactly once, with its two lines.
    assert_eq!(stripe_invoices.len(), INVOICED);
    assert_eq!(stripe_items.len(), 2 * INVOICED);
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for id in &drafts {
        let invoice = invoice_status(&app, id).await;
        *statuses
            .entry(
                invoice["statusDetails"]["extendedStatus"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
            .or_default() += 1;
    }
    println!("faults ({backend:?}): invoices after the retries {statuses:?}");
    for id in &drafts {
        assert_eq!(stripe_invoices.get(id), Some(&1), "invoice {id}");
        let invoice = invoice_status(&app, id).await;
        let status = invoice["statusDetails"]["extendedStatus"].as_str().unwrap();
        assert!(
            matches!(status, "paid" | "payment_processing.pending"),
            "invoice {id}: {invoice}"
        );
        let stripe = app
            .emu
            .object(invoice["externalIds"]["invoicing"].as_str().unwrap())
            .unwrap();
        assert_eq!(stripe["metadata"]["meterpay_invoice_id"], json!(id));
        assert_eq!(stripe["lines"]["total_count"], 2, "{stripe}");
    }
}

/// Every concurrent first checkout of a customer records the same Stripe
/// customer (Stripe's idempotency gives them all one); each must get the
/// mapping back, none a conflict. On PostgreSQL, `ON CONFLICT` on the
/// primary key does not cover a racing insert's clash on the Stripe-customer
/// index: the burst found such checkouts answered 409.
async fn racing_first_mappings_of_one_customer_all_get_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, _, _) = crate::apps::install_stripe_app(&app, true).await;
    let app_id: meterpay::ids::AppId = stripe_app["id"].as_str().unwrap().parse().unwrap();
    let mut conflicts = 0;
    for n in 0..20 {
        let c = crate::customers_v3::customer(
            &app,
            json!({"name": format!("Customer {n}"), "key": format!("c{n}"), "currency": "USD"}),
        )
        .await;
        let customer: meterpay::ids::CustomerId = c["id"].as_str().unwrap().parse().unwrap();
        let cus = meterpay::ids::StripeCustomerId::from(format!("cus_Race{n}"));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (store, cus) = (app.server.store().clone(), cus.clone());
                tokio::spawn(async move {
                    store
                        .ensure_customer_stripe("default", app_id, customer, &cus)
                        .await
                })
            })
            .collect();
        for handle in handles {
            match handle.await.unwrap() {
                Ok(mapping) => assert_eq!(mapping.stripe_customer_id, cus),
                Err(err) => {
                    conflicts += 1;
                    eprintln!("customer {customer}: {err}");
                }
            }
        }
    }
    assert_eq!(conflicts, 0);
}
