//! `GET /metrics`: a checkout, webhook deliveries and an invoice issued and
//! paid by the worker move exactly their series; the document needs no
//! token; with `--metrics-listen` it is served there and not on the main
//! listener.
//!
//! The `metrics` recorder is one per process and this binary's tests run in
//! parallel, so the test that counts runs alone in a child process of this
//! test binary (`in_own_process`): nothing else records into its recorder.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::harness::{Backend, TestApp};
use crate::invoices_v1::{add_lines, invoice_lines, setup, two_lines};
use crate::support::{assert_problem, problem_of};
use crate::webhooks::{history_entry, pay, post_event, wait_for, webhook_secret};

crate::both_backends!(
    a_checkout_a_webhook_and_an_invoice_move_their_counters_by_exactly_one,
    metrics_need_no_token,
    metrics_listen_serves_them_on_their_own_address_only,
);

/// Set in the child process that runs a counting test alone.
const ISOLATED: &str = "METERPAY_TEST_METRICS_ISOLATED";

/// In the test process: runs the test `name` (its path in this binary) in a
/// child process of this binary, alone, asserts it passed and returns true.
/// In that child: returns false (the caller goes on with the test).
async fn in_own_process(name: &str) -> bool {
    if std::env::var_os(ISOLATED).is_some() {
        return false;
    }
    let out = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(ISOLATED, "1")
        .output()
        .await
        .expect("run the test binary");
    let output = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} failed alone:\n{output}");
    assert!(
        output.contains("1 passed"),
        "{name} did not run alone:\n{output}"
    );
    true
}

fn module(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// One series: the metric's name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

/// A scrape: every series and its value, plus the `# HELP`/`# TYPE` lines.
#[derive(Debug, Default)]
struct Scrape {
    values: BTreeMap<Series, f64>,
    help: BTreeMap<String, String>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        self.values
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0.0)
    }

    /// Every series of `name` with its labels as a map.
    fn of(&self, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        self.values
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), v)| (labels.iter().cloned().collect(), *v))
            .collect()
    }
}

/// Parses Prometheus' text exposition format (what `/metrics` serves).
fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            scrape.help.insert(name.to_owned(), help.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            scrape.types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        let name_end = line.find(['{', ' ']).expect("series line");
        let name = line[..name_end].to_owned();
        let (mut labels, rest) = match line[name_end..].strip_prefix('{') {
            Some(inner) => parse_labels(inner, line),
            None => (Vec::new(), &line[name_end..]),
        };
        let value: f64 = match rest.trim() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("value of [{line}]: {e}")),
        };
        labels.sort();
        assert!(
            scrape.values.insert((name, labels), value).is_none(),
            "series twice: {line}"
        );
    }
    scrape
}

/// `key="value",…}` (after the `{`): the labels and what follows the `}`.
fn parse_labels<'a>(mut s: &'a str, line: &str) -> (Vec<(String, String)>, &'a str) {
    let mut labels = Vec::new();
    loop {
        if let Some(rest) = s.strip_prefix('}') {
            return (labels, rest);
        }
        s = s.strip_prefix(',').unwrap_or(s);
        let eq = s
            .find("=\"")
            .unwrap_or_else(|| panic!("label without value: {line}"));
        let key = s[..eq].to_owned();
        s = &s[eq + 2..];
        let mut value = String::new();
        let mut escaped = false;
        let mut end = None;
        for (at, c) in s.char_indices() {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(at);
                    break;
                }
                (true, 'n') => {
                    value.push('\n');
                    escaped = false;
                }
                (_, c) => {
                    value.push(c);
                    escaped = false;
                }
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated label value: {line}"));
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

/// How much each series of `name` moved between two scrapes, by its labels
/// (`k=v,k=v`, sorted); only those that moved.
fn moved(before: &Scrape, after: &Scrape, name: &str) -> BTreeMap<String, f64> {
    after
        .values
        .iter()
        .filter(|((n, _), _)| n == name)
        .filter_map(|(series, value)| {
            let was = before.values.get(series).copied().unwrap_or(0.0);
            let labels: Vec<String> = series.1.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (value - was != 0.0).then(|| (labels.join(","), value - was))
        })
        .collect()
}

fn expected(series: &[(&str, f64)]) -> BTreeMap<String, f64> {
    series.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

async fn scrape_at(base: &str) -> Scrape {
    let resp = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse(&resp.text().await.expect("metrics text"))
}

#[test]
fn the_parser_reads_the_text_format() {
    let scrape = parse(
        "# HELP a_total Things.\n# TYPE a_total counter\n\
         a_total{route=\"/x/{id}\",method=\"GET\",status=\"200\"} 3\n\
         b 1.5\n\
         c_bucket{le=\"+Inf\",q=\"say \\\"hi\\\", \\\\ ok\"} 7\n",
    );
    assert_eq!(
        scrape.get(
            "a_total",
            &[("status", "200"), ("route", "/x/{id}"), ("method", "GET")]
        ),
        3.0
    );
    assert_eq!(scrape.get("b", &[]), 1.5);
    assert_eq!(
        scrape.get("c_bucket", &[("le", "+Inf"), ("q", "say \"hi\", \\ ok")]),
        7.0
    );
    assert_eq!(scrape.help["a_total"], "Things.");
    assert_eq!(scrape.types["a_total"], "counter");
}

const CHECKOUT_ROUTE: &str =
    "/api/v3/openmeter/customers/{customerId}/billing/stripe/checkout-sessions";
const WEBHOOK_ROUTE: &str = "/api/v1/apps/{id}/stripe/webhook";

async fn a_checkout_a_webhook_and_an_invoice_move_their_counters_by_exactly_one(backend: Backend) {
    let name = format!(
        "metrics::{}::a_checkout_a_webhook_and_an_invoice_move_their_counters_by_exactly_one",
        module(backend)
    );
    if in_own_process(&name).await {
        return;
    }
    let app = TestApp::start(backend).await;
    // An app, a profile that auto-approves a day after the draft is made,
    // and customer `acme` (not yet linked to Stripe).
    let s = setup(
        &app,
        json!({"invoicing": {"autoAdvance": true, "draftPeriod": "P1D"}}),
        false,
    )
    .await;
    let deliveries_before = app.emu.webhook_deliveries().len();
    let before = scrape_at(&app.base).await;

    // One checkout, completed on the hosted page: Stripe's webhooks make the
    // card the customer's default. Stripe's first answer to the session is a
    // 500, so meterpay tries again.
    app.emu.set_faults(vec![
        "POST /v1/checkout/sessions:error=500,count=1"
            .parse()
            .unwrap(),
    ]);
    let resp = app
        .post(
            &format!(
                "/api/v3/openmeter/customers/{}/billing/stripe/checkout-sessions",
                s.customer_id
            ),
            json!({"stripe_options": {"success_url": "https://app.example/ok"}}),
        )
        .await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let session = resp.body["session_id"].as_str().unwrap().to_owned();
    let status = pay(resp.body["url"].as_str().unwrap(), "4242424242424242").await;
    assert!(
        (300..400).contains(&status),
        "hosted page answered {status}"
    );
    history_entry(&app, &s.customer_id, &session, "complete").await;

    // One invoice: pending lines, a draft waiting a day, issued and paid by
    // the worker's pass once the day is over.
    add_lines(&app, &s.customer_id, two_lines()).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    let invoice_id = resp.body[0]["id"].as_str().unwrap().to_owned();
    app.server
        .clock()
        .advance(time::Duration::days(1) + time::Duration::seconds(1));
    assert_eq!(app.server.work_invoices_once().await.unwrap(), 1);
    let invoice = app
        .get(&format!("/api/v1/billing/invoices/{invoice_id}"))
        .await;
    assert_eq!(invoice.body["status"], "paid", "{}", invoice.body);

    // Every event Stripe sent that meterpay subscribes to was delivered.
    let handled = meterpay::stripe::events::HANDLED;
    wait_for("every webhook delivered", || {
        let delivered: Vec<String> = app
            .emu
            .webhook_deliveries()
            .into_iter()
            .filter(|d| d.succeeded)
            .map(|d| d.event_id)
            .collect();
        app.emu.events().iter().all(|e| {
            !handled.contains(&e["type"].as_str().unwrap())
                || delivered.contains(&e["id"].as_str().unwrap().to_owned())
        })
    })
    .await;

    // One webhook delivery of our own: the completed session's event again
    // (already processed), and one with a forged signature (refused).
    let event = app
        .emu
        .events()
        .into_iter()
        .find(|e| e["type"] == "checkout.session.completed")
        .expect("checkout.session.completed");
    let payload = event.to_string();
    let path = format!("/api/v1/apps/{}/stripe/webhook", s.app_id);
    let secret = webhook_secret(&app, &s.app_id).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let replay = post_event(
        &app,
        &path,
        &payload,
        Some(stripe_emulator::signature_header(&secret, now, &payload)),
    )
    .await;
    assert_eq!(replay.body["message"], "event already processed");
    let forged = post_event(
        &app,
        &path,
        &payload,
        Some(stripe_emulator::signature_header(
            "whsec_forged",
            now,
            &payload,
        )),
    )
    .await;
    assert_eq!(forged.status, 400, "{}", forged.body);

    // One lease taken over: held by a process that stopped renewing it.
    let id: meterpay::ids::InvoiceId = invoice_id.parse().unwrap();
    let store = app.server.store();
    let t0 = app.server.clock().now();
    assert!(
        store
            .claim_invoice(id, "stalled", t0 + time::Duration::seconds(60), t0)
            .await
            .unwrap()
    );
    let later = t0 + time::Duration::seconds(61);
    assert!(
        store
            .claim_invoice(id, "successor", later + time::Duration::seconds(60), later)
            .await
            .unwrap()
    );
    store.release_invoice(id, "successor").await.unwrap();

    // A path no route serves.
    assert_eq!(app.get("/no/such/path").await.status, 404);

    // A checkout while Stripe fails every attempt, and an install with a key
    // Stripe does not know.
    app.emu.set_faults(vec![
        "POST /v1/checkout/sessions:error=500,count=3"
            .parse()
            .unwrap(),
    ]);
    let down = app
        .post(
            &format!(
                "/api/v3/openmeter/customers/{}/billing/stripe/checkout-sessions",
                s.customer_id
            ),
            json!({"stripe_options": {"success_url": "https://app.example/ok"}}),
        )
        .await;
    assert_eq!(down.status, 503, "{}", down.body);
    app.emu.clear_faults();
    let refused = app
        .post(
            "/api/v3/openmeter/app-catalog/install",
            json!({"type": "stripe", "name": "S", "create_billing_profile": false,
                   "api_key": "sk_test_notarealkey123"}),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);

    let after = scrape_at(&app.base).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);

    // HTTP, by route template.
    let http = "meterpay_http_requests_total";
    let checkout = [
        ("route", CHECKOUT_ROUTE),
        ("method", "POST"),
        ("status", "201"),
    ];
    assert_eq!(delta(http, &checkout), 1.0);
    assert_eq!(
        delta(
            http,
            &[
                ("route", CHECKOUT_ROUTE),
                ("method", "POST"),
                ("status", "503")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta("meterpay_http_request_duration_seconds_count", &checkout),
        1.0
    );
    assert_eq!(
        delta(
            http,
            &[
                ("route", "/api/v1/billing/invoices/invoice"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        1.0
    );
    assert_eq!(
        delta(
            http,
            &[("route", "unmatched"), ("method", "GET"), ("status", "404")]
        ),
        1.0
    );
    let delivered_ok = app.emu.webhook_deliveries()[deliveries_before..]
        .iter()
        .filter(|d| d.status == Some(200))
        .count() as f64;
    assert!(delivered_ok >= 3.0, "{delivered_ok}");
    assert_eq!(
        delta(
            http,
            &[
                ("route", WEBHOOK_ROUTE),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        delivered_ok + 1.0,
        "each delivery the emulator saw answered 200, and the replay"
    );
    assert_eq!(
        delta(
            http,
            &[
                ("route", WEBHOOK_ROUTE),
                ("method", "POST"),
                ("status", "400")
            ]
        ),
        1.0
    );
    for (labels, _) in after.of(http) {
        assert!(
            !labels["route"].contains(&s.customer_id) && !labels["route"].contains("no/such"),
            "a raw path as a route: {labels:?}"
        );
    }

    // Stripe, by endpoint and outcome: the calls of the checkout (a Stripe
    // customer, the session after one 500, the default card set by the
    // webhook), of the invoice (Stripe cannot place the customer for
    // automatic tax, so the first finalize is refused and tax turned off; the
    // finalize charges the card, so paying is refused as already paid, which a
    // read confirms), of the checkout Stripe failed three times and of the
    // install with a rejected key.
    let mut stripe = moved(&before, &after, "meterpay_stripe_requests_total");
    // The read of the invoice: the sync's, and the `invoice.paid` event's when
    // it arrives before the sync stored the payment (below).
    let reads = stripe
        .remove("endpoint=GET /v1/invoices/{id},outcome=ok")
        .unwrap_or(0.0);
    assert_eq!(
        stripe,
        expected(&[
            ("endpoint=POST /v1/customers,outcome=ok", 1.0),
            ("endpoint=POST /v1/checkout/sessions,outcome=ok", 1.0),
            ("endpoint=POST /v1/checkout/sessions,outcome=retried", 3.0),
            (
                "endpoint=POST /v1/checkout/sessions,outcome=unavailable",
                1.0
            ),
            ("endpoint=GET /v1/account,outcome=key_rejected", 1.0),
            ("endpoint=POST /v1/customers/{id},outcome=ok", 1.0),
            ("endpoint=POST /v1/invoices,outcome=ok", 1.0),
            ("endpoint=POST /v1/invoiceitems,outcome=ok", 2.0),
            (
                "endpoint=POST /v1/invoices/{id}/finalize,outcome=rejected",
                1.0
            ),
            ("endpoint=POST /v1/invoices/{id},outcome=ok", 1.0),
            ("endpoint=POST /v1/invoices/{id}/finalize,outcome=ok", 1.0),
            ("endpoint=POST /v1/invoices/{id}/pay,outcome=rejected", 1.0),
        ])
    );
    assert_eq!(
        moved(
            &before,
            &after,
            "meterpay_stripe_request_duration_seconds_count"
        )["endpoint=POST /v1/checkout/sessions,outcome=ok"],
        1.0
    );

    // Webhook events, by type and outcome: Stripe's deliveries, the replay
    // and the forgery.
    let mut events = moved(&before, &after, "meterpay_webhook_events_total");
    // `invoice.paid` changes nothing when the sync stored the payment first;
    // arriving before, it reads the Stripe invoice and moves the invoice to
    // paid, or finds the sync did meanwhile (answered 200 either way, or 503
    // and delivered again when both wrote at once).
    let paid_deliveries = app.emu.webhook_deliveries()[deliveries_before..]
        .iter()
        .filter(|d| d.event_type == "invoice.paid")
        .count() as f64;
    let mut paid = BTreeMap::new();
    for outcome in ["processed", "ignored", "failed"] {
        let n = events
            .remove(&format!("outcome={outcome},type=invoice.paid"))
            .unwrap_or(0.0);
        paid.insert(outcome, n);
    }
    assert_eq!(paid["processed"] + paid["ignored"], 1.0, "{paid:?}");
    assert_eq!(paid["failed"] + 1.0, paid_deliveries, "{paid:?}");
    assert!(
        (1.0..=1.0 + paid_deliveries).contains(&reads),
        "{reads} reads, {paid_deliveries} deliveries"
    );
    assert_eq!(
        events,
        expected(&[
            ("outcome=processed,type=setup_intent.succeeded", 1.0),
            ("outcome=processed,type=checkout.session.completed", 1.0),
            (
                "outcome=already_processed,type=checkout.session.completed",
                1.0
            ),
            // meterpay's own sync reports the refused finalize.
            ("outcome=ignored,type=invoice.finalization_failed", 1.0),
            ("outcome=refused,type=unknown", 1.0),
        ])
    );

    // Checkout sessions.
    assert_eq!(
        moved(&before, &after, "meterpay_checkout_sessions_total"),
        expected(&[("event=created", 1.0), ("event=completed", 1.0)])
    );

    // Invoice status changes: the gathering invoice made and emptied into the
    // draft, the worker's issue, Stripe's payment.
    assert_eq!(
        moved(&before, &after, "meterpay_invoice_status_transitions_total"),
        expected(&[
            ("from=none,to=gathering", 1.0),
            ("from=none,to=draft.waiting_auto_approval", 1.0),
            ("from=gathering,to=deleted", 1.0),
            ("from=draft.waiting_auto_approval,to=issuing.syncing", 1.0),
            ("from=issuing.syncing,to=payment_processing.pending", 1.0),
            ("from=payment_processing.pending,to=paid", 1.0),
        ])
    );

    // The worker: the due invoice its pass found, and the lease taken over.
    assert_eq!(after.get("meterpay_invoice_worker_due_invoices", &[]), 1.0);
    assert_eq!(delta("meterpay_invoice_lease_takeovers_total", &[]), 1.0);

    // Every series is described and typed.
    for (name, kind) in [
        ("meterpay_http_requests_total", "counter"),
        ("meterpay_http_request_duration_seconds", "histogram"),
        ("meterpay_stripe_requests_total", "counter"),
        ("meterpay_stripe_request_duration_seconds", "histogram"),
        ("meterpay_webhook_events_total", "counter"),
        ("meterpay_checkout_sessions_total", "counter"),
        ("meterpay_invoice_status_transitions_total", "counter"),
        ("meterpay_invoice_worker_due_invoices", "gauge"),
        ("meterpay_invoice_lease_takeovers_total", "counter"),
    ] {
        assert_eq!(
            after.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
        assert!(
            after.help.get(name).is_some_and(|h| h.len() > 20),
            "{name} has no help"
        );
    }
}

async fn metrics_need_no_token(backend: Backend) {
    let app = TestApp::start_with(backend, |args| {
        args.api_tokens = vec![("metrics-test-token".into(), "default".into())];
    })
    .await;
    // The API wants the token; /metrics, like /healthz, does not.
    assert_eq!(app.get("/api/v3/openmeter/customers").await.status, 401);
    let scrape = scrape_at(&app.base).await;
    assert!(
        scrape.types.contains_key("meterpay_http_requests_total"),
        "{scrape:?}"
    );
}

async fn metrics_listen_serves_them_on_their_own_address_only(backend: Backend) {
    let app = TestApp::start_with(backend, |args| {
        args.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let at = format!(
        "http://{}",
        app.server.metrics_addr().expect("metrics address")
    );
    assert_ne!(at, app.base);
    // Not on the main listener: the 404 of any path no route serves.
    let main = app.get("/metrics").await;
    assert_eq!(main.status, 404);
    assert_problem(&main, problem_of(404, "No route for [GET /metrics]"));
    // On its own address, with that 404 counted.
    let scrape = scrape_at(&at).await;
    assert!(
        scrape.get(
            "meterpay_http_requests_total",
            &[("route", "/metrics"), ("method", "GET"), ("status", "404")]
        ) >= 1.0,
        "{scrape:?}"
    );
    let other = reqwest::get(format!("{at}/healthz")).await.unwrap();
    assert_eq!(other.status(), 404);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["detail"], "No route for [GET /healthz]");
    // The API is where it was.
    assert_eq!(app.get("/healthz").await.status, 200);
}
