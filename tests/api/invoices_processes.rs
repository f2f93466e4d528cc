//! Invoicing across processes: two meterpay processes on one database issue
//! each due invoice exactly once, and a process killed (SIGKILL) in the
//! middle of a sync leaves nothing that a restarted one does twice.

use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, created_objects, serve_args, spawn_meterpay};
use crate::invoices_stripe::card_on_file;
use crate::invoices_v1::{INVOICES, add_lines, invoice_lines, setup};

crate::both_backends!(
    two_processes_issue_fifty_invoices_each_exactly_once,
    a_process_killed_mid_sync_is_resumed_by_the_next_without_duplicates,
);

/// The processes' invoice worker looks every 100 ms, with short leases.
const WORKER: &[(&str, &str)] = &[
    ("METERPAY_INVOICE_WORKER_INTERVAL_MS", "100"),
    ("METERPAY_INVOICE_LEASE_SECS", "2"),
];

fn one_line(n: usize) -> Value {
    json!({"currency": "USD", "lines": [
        {"name": format!("Usage {n}"),
         "period": {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
         "invoiceAt": "2026-11-01T00:00:00Z",
         "rateCard": {"price": {"type": "flat", "amount": format!("{}.00", 10 + n), "paymentTerm": "in_arrears"}}}]})
}

async fn extended_status(app: &TestApp, id: &str) -> String {
    let resp = app.get(&format!("{INVOICES}/{id}")).await;
    resp.body["statusDetails"]["extendedStatus"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn two_processes_issue_fifty_invoices_each_exactly_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(
        &app,
        json!({"invoicing": {"autoAdvance": true, "draftPeriod": "P1D"}}),
        false,
    )
    .await;
    card_on_file(&app, &s.key, &s.app_id, "4242424242424242").await;
    let mut ids = Vec::new();
    for n in 0..50 {
        add_lines(&app, &s.customer_id, one_line(n)).await;
        let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
        assert_eq!(resp.status, 201, "{}", resp.body);
        ids.push(resp.body[0]["id"].as_str().unwrap().to_owned());
    }
    // A second process on the same database and Stripe account.
    let mut args = serve_args(app.database_url.clone());
    args.stripe_api_base = app.emu.base_url();
    let second = meterpay::Server::start(&args).await.unwrap();
    let day = time::Duration::days(1) + time::Duration::seconds(1);
    app.server.clock().advance(day);
    second.clock().advance(day);

    // Both run their worker's passes at the same time until nothing is due.
    let mut worked = (0, 0);
    for _ in 0..10 {
        let (a, b) = tokio::join!(app.server.work_invoices_once(), second.work_invoices_once());
        let (a, b) = (a.unwrap(), b.unwrap());
        worked = (worked.0 + a, worked.1 + b);
        if a + b == 0 {
            break;
        }
    }
    assert_eq!(worked.0 + worked.1, 50, "{worked:?}");
    for id in &ids {
        let resp = app.get(&format!("{INVOICES}/{id}")).await;
        assert_eq!(
            resp.body["statusDetails"]["extendedStatus"], "paid",
            "invoice {id}: {}",
            resp.body
        );
    }
    // Each invoice synced exactly once: one Stripe invoice and one item each,
    // created under keys made of meterpay's ids.
    let invoices = created_objects(&app, "invoice");
    assert_eq!(invoices.len(), 50);
    let mut ours: Vec<String> = invoices
        .iter()
        .map(|i| {
            i["metadata"]["meterpay_invoice_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ours.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(ours, expected);
    assert_eq!(created_objects(&app, "invoiceitem").len(), 50);
    let creates: Vec<_> = app
        .emu
        .requests(0)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/invoices")
        .collect();
    assert_eq!(creates.len(), 50, "no invoice was created twice");
    second.shutdown().await.unwrap();
}

async fn eventually<F: Fn() -> bool>(what: &str, check: F) {
    for _ in 0..300 {
        if check() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn a_process_killed_mid_sync_is_resumed_by_the_next_without_duplicates(backend: Backend) {
    let app = TestApp::start(backend).await;
    let s = setup(
        &app,
        json!({"invoicing": {"autoAdvance": true, "draftPeriod": "PT1S"}}),
        false,
    )
    .await;
    card_on_file(&app, &s.key, &s.app_id, "4242424242424242").await;
    add_lines(&app, &s.customer_id, one_line(1)).await;
    let resp = invoice_lines(&app, json!({"customerId": s.customer_id})).await;
    let id = resp.body[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        resp.body[0]["statusDetails"]["extendedStatus"],
        "draft.waiting_auto_approval"
    );

    // Finalizing hangs in Stripe; the process that issues the invoice is
    // killed while it waits: after the Stripe invoice and its item were made.
    app.emu.set_faults(vec![
        "POST /v1/invoices/in_:latency_ms=30000,count=1"
            .parse()
            .unwrap(),
    ]);
    let dir = crate::harness::temp_dir();
    let (mut first, _) = spawn_meterpay(&app, &dir.0, WORKER);
    eventually("the first process to bill the line", || {
        app.emu
            .events()
            .iter()
            .any(|e| e["type"] == "invoiceitem.created")
    })
    .await;
    // Next it finalizes, which hangs.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    first.kill().unwrap(); // SIGKILL
    let _ = first.wait();
    app.emu.clear_faults();
    assert_eq!(extended_status(&app, &id).await, "issuing.syncing");

    // The next process takes over once the dead one's lease has passed.
    let (mut second, _) = spawn_meterpay(&app, &dir.0, WORKER);
    for _ in 0..300 {
        if extended_status(&app, &id).await == "paid" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    second.kill().unwrap();
    let _ = second.wait();
    assert_eq!(extended_status(&app, &id).await, "paid");
    assert_eq!(
        created_objects(&app, "invoice").len(),
        1,
        "one Stripe invoice"
    );
    assert_eq!(
        created_objects(&app, "invoiceitem").len(),
        1,
        "the line billed once"
    );
    let stripe = app.emu.object(
        app.get(&format!("{INVOICES}/{id}")).await.body["externalIds"]["invoicing"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(stripe.unwrap()["amount_paid"], 1100);
}
