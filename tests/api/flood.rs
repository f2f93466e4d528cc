//! A webhook flood on two meterpay processes sharing one PostgreSQL
//! database (this test's in-process server and the real binary): 2,000
//! deliveries mixing valid events, sequential and concurrent duplicates,
//! forgeries (a wrong, tampered or missing signature) and stale signatures
//! (an old `t=`), spread over both. Every valid event is applied exactly
//! once, every forgery and stale signature is refused with a 400, and
//! nothing else changes.
//!
//! The events are real: checkout sessions completed in the emulator
//! (`checkout.session.completed` and `setup_intent.succeeded`, the second
//! making the card the customer's default in meterpay and in Stripe). The
//! emulator's own deliveries are disabled, so the test's are the only ones.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sqlx::Row;

use crate::harness::{
    Backend, Resp, TestApp, completed_session_events, disable_webhook_endpoints, pay_session,
    spawn_meterpay, wait_ready,
};

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_take_a_flood_of_2000_deliveries_and_apply_each_event_once() {
        super::flood(super::Backend::Postgres).await
    }
}

/// Customers with a completed session: two valid events each.
const PAYING: usize = 50;
const DELIVERIES: usize = 2000;
/// Deliveries sent at the same time at most.
const CONCURRENCY: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A valid event (the first of its deliveries in the list).
    Valid,
    /// The same event again, later.
    Duplicate,
    /// The same event, several deliveries at once (to both processes).
    ConcurrentDuplicate,
    /// A changed payload, a wrong secret or no signature.
    Forged,
    /// A valid payload and signature from more than five minutes ago.
    Stale,
}

#[derive(Clone, Debug)]
struct Delivery {
    kind: Kind,
    /// Index of the event (valid ones) or forgery.
    event: usize,
    payload: String,
    /// `None`: no Stripe-Signature header; otherwise its time and secret.
    signature: Option<(i64, String)>,
    /// Which process gets it.
    process: usize,
}

/// A unit of work: deliveries sent at the same time.
type Unit = Vec<Delivery>;

/// A small deterministic generator (the flood is the same every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Everything the events could change, read through the API: every
/// customer, its billing data and its sessions.
async fn state(app: &TestApp, customers: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    let list = app.get("/api/v3/openmeter/customers?page[size]=100").await;
    out.insert("customers".into(), list.body);
    for id in customers {
        let billing = app
            .get(&format!("/api/v3/openmeter/customers/{id}/billing"))
            .await;
        let sessions = app
            .get(&format!(
                "/api/v3/openmeter/customers/{id}/billing/stripe/checkout-sessions"
            ))
            .await;
        assert_eq!(sessions.status, 200, "{}", sessions.body);
        out.insert(
            id.clone(),
            json!({"billing": billing.body, "sessions": sessions.body}),
        );
    }
    Value::Object(out)
}

async fn post(client: &reqwest::Client, url: &str, d: &Delivery) -> Resp {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(d.payload.clone());
    if let Some((t, secret)) = &d.signature {
        req = req.header(
            "stripe-signature",
            stripe_emulator::signature_header(secret, *t, &d.payload),
        );
    }
    Resp::from(req.send().await.expect("delivery")).await
}

async fn flood(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (stripe_app, stripe_key, _) = crate::apps::install_stripe_app(&app, true).await;
    let app_id = stripe_app["id"].as_str().unwrap().to_owned();
    let secret = crate::webhooks::webhook_secret(&app, &app_id).await;
    disable_webhook_endpoints(&app, &stripe_key).await;

    // Customers with a completed session each, whose events await delivery.
    let mut customers = Vec::new();
    let mut expected_pm = BTreeMap::new();
    for n in 0..PAYING {
        let c = crate::customers_v3::customer(
            &app,
            json!({"name": format!("Customer {n}"), "key": format!("c{n}"), "currency": "USD"}),
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
        let pm = pay_session(
            &app,
            resp.body["session_id"].as_str().unwrap(),
            "4242424242424242",
            true,
        );
        expected_pm.insert(id.clone(), json!(pm));
        customers.push(id);
    }
    let events = completed_session_events(&app);
    assert_eq!(events.len(), 2 * PAYING);

    // The second process, the real binary, on the same database.
    let dir = crate::harness::temp_dir();
    let (mut second, second_base) = spawn_meterpay(&app, &dir.0, &[]);
    wait_ready(&app.client, &second_base).await;
    let urls = [app.base.clone(), second_base]
        .map(|base| format!("{base}/api/v1/apps/{app_id}/stripe/webhook"));
    let before = state(&app, &customers).await;
    let log_start = app.emu.requests(0).last().map_or(0, |r| r.seq);

    // The flood: each event's first delivery, then two later duplicates
    // and a group of three at once; the rest forgeries and stale ones, all
    // in a fixed pseudo-random order. Signatures are made as each is sent.
    let mut rng = Lcg(16);
    let mut units: Vec<Unit> = Vec::new();
    let valid = |kind, event: usize, process| Delivery {
        kind,
        event,
        payload: events[event].1.clone(),
        signature: Some((0, secret.clone())),
        process,
    };
    for event in 0..events.len() {
        units.push(vec![valid(Kind::Valid, event, event % 2)]);
        units.push(vec![valid(Kind::Duplicate, event, 0)]);
        units.push(vec![valid(Kind::Duplicate, event, 1)]);
        units.push(
            (0..3)
                .map(|p| valid(Kind::ConcurrentDuplicate, event, p % 2))
                .collect(),
        );
    }
    let sent_valid: usize = units.iter().map(Vec::len).sum();
    for n in 0..DELIVERIES - sent_valid {
        let event = rng.next(events.len());
        let (id, payload) = &events[event];
        let process = n % 2;
        let delivery = if n % 2 == 0 {
            // Stale: valid payload and secret, signed six minutes ago.
            Delivery {
                kind: Kind::Stale,
                event,
                payload: payload.clone(),
                signature: Some((-360, secret.clone())),
                process,
            }
        } else {
            // Forged: a new event id (and for the setup intent another
            // payment method), signed with a wrong secret, a tampered
            // signature, or none.
            let forged = payload
                .replace(id.as_str(), &format!("evt_forged{n:05}"))
                .replace("\"pm_", "\"pm_forged");
            let signature = match n % 3 {
                0 => Some((0, "whsec_wrong".to_owned())),
                1 => Some((0, secret.clone())),
                _ => None,
            };
            Delivery {
                kind: Kind::Forged,
                event: n,
                // The tampered case: the signature is of the genuine payload.
                payload: forged,
                signature,
                process,
            }
        };
        units.push(vec![delivery]);
    }
    // Shuffled: whichever delivery of an event comes first applies it.
    for i in (1..units.len()).rev() {
        let j = rng.next(i + 1);
        units.swap(i, j);
    }
    let total: usize = units.iter().map(Vec::len).sum();
    assert_eq!(total, DELIVERIES);

    let queue = Arc::new(Mutex::new(units.into_iter().collect::<VecDeque<Unit>>()));
    let results: Arc<Mutex<Vec<(Delivery, Resp)>>> = Arc::default();
    let genuine = Arc::new(secret.clone());
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (queue, results, client, urls, genuine) = (
                queue.clone(),
                results.clone(),
                app.client.clone(),
                urls.clone(),
                genuine.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let Some(unit) = queue.lock().unwrap().pop_front() else {
                        return;
                    };
                    let sent: Vec<_> = unit
                        .into_iter()
                        .map(|mut d| {
                            let now = time::OffsetDateTime::now_utc().unix_timestamp();
                            if let Some((offset, _)) = &mut d.signature {
                                *offset += now;
                            }
                            let (client, url) = (client.clone(), urls[d.process].clone());
                            let tampered = d.kind == Kind::Forged
                                && d.signature.as_ref().is_some_and(|(_, s)| s == &*genuine);
                            tokio::spawn(async move {
                                let resp = if tampered {
                                    // Signed by the genuine secret, but over other bytes.
                                    let (t, secret) = d.signature.clone().unwrap();
                                    let header = stripe_emulator::signature_header(
                                        &secret,
                                        t,
                                        &d.payload.replace("evt_forged", "evt_genuine"),
                                    );
                                    let req = client
                                        .post(&url)
                                        .header("content-type", "application/json")
                                        .header("stripe-signature", header)
                                        .body(d.payload.clone());
                                    Resp::from(req.send().await.expect("delivery")).await
                                } else {
                                    post(&client, &url, &d).await
                                };
                                (d, resp)
                            })
                        })
                        .collect();
                    for handle in sent {
                        let outcome = handle.await.unwrap();
                        results.lock().unwrap().push(outcome);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let results = std::mem::take(&mut *results.lock().unwrap());
    assert_eq!(results.len(), DELIVERIES);

    // Every answer: valid ones processed, already processed, or (another
    // delivery of the same event being processed right then) 503 to retry;
    // forgeries and stale signatures 400 naming the signature.
    let mut counts: BTreeMap<(Kind, u16, String), usize> = BTreeMap::new();
    let mut processed = vec![0usize; events.len()];
    let mut busy = Vec::new();
    for (d, resp) in &results {
        let message = resp.body["message"].as_str().unwrap_or_default().to_owned();
        match d.kind {
            Kind::Valid | Kind::Duplicate | Kind::ConcurrentDuplicate => {
                match (resp.status, message.as_str()) {
                    (200, "event processed") => processed[d.event] += 1,
                    (200, "event already processed") => {}
                    (503, _) => {
                        assert!(resp.headers.get("retry-after").is_some());
                        busy.push(d.clone());
                    }
                    _ => panic!("{d:?}: {} {}", resp.status, resp.body),
                }
            }
            Kind::Forged | Kind::Stale => {
                assert_eq!(resp.status, 400, "{:?}: {}", d.kind, resp.body);
                let problem = resp.problem();
                assert_eq!(
                    problem["invalid_parameters"][0]["field"],
                    "Stripe-Signature"
                );
            }
        }
        *counts.entry((d.kind, resp.status, message)).or_default() += 1;
    }
    // Stripe retries what was refused for now: already processed.
    for d in &busy {
        let mut d = d.clone();
        if let Some((t, _)) = &mut d.signature {
            *t = time::OffsetDateTime::now_utc().unix_timestamp();
        }
        let resp = post(&app.client, &urls[d.process], &d).await;
        assert_eq!(
            (resp.status, resp.body["message"].as_str()),
            (200, Some("event already processed")),
            "{}",
            resp.body
        );
    }

    // Exactly once, by the answers and by the database.
    let applied_twice = processed.iter().filter(|n| **n > 1).count();
    let never = processed.iter().filter(|n| **n == 0).count();
    let rows = sqlx::query("SELECT event_id, state FROM stripe_events ORDER BY event_id")
        .fetch_all(app.server.store().pool())
        .await
        .unwrap();
    let recorded: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.get("event_id"), r.get("state")))
        .collect();
    let mut expected: Vec<(String, String)> = events
        .iter()
        .map(|(id, _)| (id.clone(), "processed".to_owned()))
        .collect();
    expected.sort();
    let refused = results
        .iter()
        .filter(|(d, _)| matches!(d.kind, Kind::Forged | Kind::Stale))
        .count();
    println!(
        "flood ({backend:?}): {} deliveries to two processes ({} valid events; {refused} forged or stale); \
         answers by (kind, status, message): {counts:?}; {} refused for now and retried; \
         events applied twice: {applied_twice}, never: {never}",
        results.len(),
        events.len(),
        busy.len(),
    );
    assert_eq!((applied_twice, never), (0, 0), "{processed:?}");
    assert_eq!(recorded, expected);
    // In Stripe too: one default-card update per setup intent event, none
    // for a forgery.
    let updates: Vec<_> = app
        .emu
        .requests(log_start)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v1/customers/"))
        .collect();
    assert_eq!(updates.len(), PAYING, "{updates:?}");
    assert!(
        updates
            .iter()
            .all(|r| !r.params.to_string().contains("forged")),
        "{updates:?}"
    );

    // Nothing else changed: the state is the one before with each
    // customer's card made default and its session complete.
    let after = state(&app, &customers).await;
    let mut want = before.clone();
    for id in &customers {
        let pm = &expected_pm[id];
        want[id]["billing"]["app_data"]["stripe"]["default_payment_method_id"] = pm.clone();
        let sessions = want[id]["sessions"]["data"].as_array_mut().unwrap();
        assert_eq!(sessions.len(), 1);
        sessions[0]["status"] = json!("complete");
        sessions[0]["payment_method_id"] = pm.clone();
        sessions[0]["updated_at"] = after[id]["sessions"]["data"][0]["updated_at"].clone();
        let cus = app
            .emu
            .object(
                after[id]["billing"]["app_data"]["stripe"]["customer_id"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(cus["invoice_settings"]["default_payment_method"], *pm);
    }
    assert_eq!(after, want);
    second.kill().unwrap();
    let _ = second.wait();
}
