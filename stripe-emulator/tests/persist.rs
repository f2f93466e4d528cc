//! The state file: a second emulator on the same file continues where the first stopped, and a
//! file that cannot be loaded stops the start with an error naming it.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{T, start_with};
use serde_json::{Value, json};
use stripe_emulator::{Emulator, EmulatorConfig};

/// A directory of its own, removed when dropped.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> Dir {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let path = std::env::temp_dir().join(format!(
        "stripe-emulator-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&path).unwrap();
    Dir(path)
}

fn config(state_file: &Path) -> EmulatorConfig {
    EmulatorConfig {
        webhook_retry_base_ms: 20,
        state_file: Some(state_file.to_path_buf()),
        ..Default::default()
    }
}

async fn start_on(state_file: &Path) -> T {
    start_with(config(state_file)).await
}

/// The error of starting an emulator on `state_file`.
async fn start_error(state_file: &Path) -> String {
    match Emulator::start("127.0.0.1:0".parse().unwrap(), config(state_file)).await {
        Ok(_) => panic!("an emulator started on {}", state_file.display()),
        Err(error) => error.to_string(),
    }
}

fn strip_volatile(mut object: Value) -> Value {
    // Events' `pending_webhooks` count down as deliveries succeed.
    if let Some(map) = object.as_object_mut() {
        map.remove("pending_webhooks");
    }
    object
}

#[tokio::test]
async fn a_second_emulator_on_the_same_state_file_continues() {
    let dir = dir("continue");
    let file = dir.0.join("state.json");
    let (receiver, hook_url) = common::receiver(0).await;

    let first = start_on(&file).await;
    let customer = first.customer().await;
    let endpoint = first
        .post(
            "/v1/webhook_endpoints",
            &[("url", hook_url.as_str()), ("enabled_events[]", "*")],
        )
        .await;
    assert_eq!(endpoint.status, 200, "{}", endpoint.body);
    let secret = endpoint.body["secret"].as_str().unwrap().to_string();
    let endpoint_id = endpoint.body["id"].as_str().unwrap().to_string();
    let idempotent = first
        .post_idem("/v1/customers", &[("email", "idem@example.com")], "key-1")
        .await;
    assert_eq!(idempotent.status, 200);
    let gone = first.customer().await;
    assert_eq!(
        first.delete(&format!("/v1/customers/{gone}")).await.status,
        200
    );
    let session = first.hosted_session(&customer).await;
    let session_id = session["id"].as_str().unwrap().to_string();
    let clock = first
        .ctl_post("/_emulator/clock/advance", json!({"seconds": 3600}))
        .await;
    assert_eq!(clock.body["offset_seconds"], 3600);
    let customers_before = first.get("/v1/customers?limit=100").await.body;
    let events_before: Vec<Value> = first.emu.events();
    let customer_before = first.get(&format!("/v1/customers/{customer}")).await.body;
    let account = first.get("/v1/account").await.body;
    first.emu.shutdown().await;

    let second = start_on(&file).await;
    // Objects and lists, as they were.
    assert_eq!(
        second.get(&format!("/v1/customers/{customer}")).await.body,
        customer_before
    );
    assert_eq!(
        second.get("/v1/customers?limit=100").await.body,
        customers_before
    );
    assert_eq!(second.get("/v1/account").await.body, account);
    assert_eq!(
        second
            .emu
            .events()
            .into_iter()
            .map(strip_volatile)
            .collect::<Vec<_>>(),
        events_before
            .into_iter()
            .map(strip_volatile)
            .collect::<Vec<_>>()
    );
    let deleted = second.get(&format!("/v1/customers/{gone}")).await;
    assert_eq!(
        deleted.body,
        json!({"id": gone, "object": "customer", "deleted": true})
    );
    // The clock keeps its offset.
    let clock = second.ctl_get("/_emulator/clock").await;
    assert_eq!(clock.body["offset_seconds"], 3600);
    // An idempotent request retried across the restart replays its first answer.
    let replay = second
        .post_idem("/v1/customers", &[("email", "idem@example.com")], "key-1")
        .await;
    assert_eq!(replay.status, 200);
    assert_eq!(replay.body, idempotent.body);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    let reused = second
        .post_idem("/v1/customers", &[("email", "other@example.com")], "key-1")
        .await;
    assert_eq!(reused.status, 400);
    assert_eq!(reused.err_type(), "idempotency_error");
    // New objects get new ids.
    let newer = second.customer().await;
    assert!(
        ![&customer, &gone].contains(&&newer) && newer != idempotent.body["id"].as_str().unwrap()
    );
    // The endpoint is still there and signs with the secret it was created with: the
    // session created before the restart completes and its events arrive signed.
    let got = second
        .get(&format!("/v1/webhook_endpoints/{endpoint_id}"))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["url"], json!(hook_url));
    let done = second
        .ctl_post(
            &format!("/_emulator/checkout/sessions/{session_id}/complete"),
            json!({}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["session"]["status"], "complete");
    second
        .wait_for(|| {
            receiver
                .got
                .lock()
                .unwrap()
                .iter()
                .any(|(_, body, _)| body.contains("checkout.session.completed"))
        })
        .await;
    for (signature, body, _) in receiver.got.lock().unwrap().iter() {
        assert!(
            stripe_emulator::verify_signature(&secret, signature, body),
            "{body}"
        );
    }
    // Sessions still open expire by the clock (the expiry queue is rebuilt on load).
    let open = second.hosted_session(&customer).await;
    let open_id = open["id"].as_str().unwrap().to_string();
    second.emu.shutdown().await;

    let third = start_on(&file).await;
    third.emu.advance_clock(86_400 + 60);
    let expired = third.get(&format!("/v1/checkout/sessions/{open_id}")).await;
    assert_eq!(expired.body["status"], "expired");
    let completed = third
        .get(&format!("/v1/checkout/sessions/{session_id}"))
        .await;
    assert_eq!(completed.body["status"], "complete");
    assert_eq!(third.emu.expiry_sessions_examined(), 1);
    third.emu.shutdown().await;
}

#[tokio::test]
async fn a_state_file_that_cannot_be_loaded_stops_the_start() {
    let dir = dir("refused");
    let file = dir.0.join("state.json");
    let t = start_on(&file).await;
    t.customer().await;
    t.emu.shutdown().await;
    let good = std::fs::read(&file).unwrap();
    let name = file.display().to_string();

    // Torn (as a file cut off mid-write would be, which the emulator never leaves behind).
    std::fs::write(&file, &good[..good.len() / 2]).unwrap();
    let error = start_error(&file).await;
    assert!(
        error.starts_with(&format!(
            "the Stripe emulator's state file {name} is not a valid state file (EOF while parsing"
        )),
        "{error}"
    );
    assert!(
        error.ends_with("; the emulator did not start (move the file away, or delete it to start with an empty emulator)"),
        "{error}"
    );
    // Garbage.
    std::fs::write(&file, b"\x00\x01garbage").unwrap();
    let error = start_error(&file).await;
    assert!(
        error.starts_with(&format!(
            "the Stripe emulator's state file {name} is not a valid state file (expected value"
        )),
        "{error}"
    );
    // Empty.
    std::fs::write(&file, b"").unwrap();
    let error = start_error(&file).await;
    assert!(
        error.starts_with(&format!(
            "the Stripe emulator's state file {name} is not a valid state file (EOF while parsing"
        )),
        "{error}"
    );
    // Someone else's JSON.
    std::fs::write(&file, br#"{"accounts": {}}"#).unwrap();
    assert_eq!(
        start_error(&file).await,
        format!(
            "the Stripe emulator's state file {name} is not a state file (it has no \"format\": \"stripe-emulator-state\"); the emulator did not start (move the file away, or delete it to start with an empty emulator)"
        )
    );
    // Another format version.
    let mut newer: Value = serde_json::from_slice(&good).unwrap();
    newer["version"] = json!(99);
    std::fs::write(&file, serde_json::to_vec(&newer).unwrap()).unwrap();
    assert_eq!(
        start_error(&file).await,
        format!(
            "the Stripe emulator's state file {name} has format version 99, and this emulator reads only version {}; the emulator did not start (move the file away, or delete it to start with an empty emulator)",
            stripe_emulator::STATE_FILE_VERSION
        )
    );
    // A version, but the wrong shape inside.
    let mut broken: Value = serde_json::from_slice(&good).unwrap();
    broken["accounts"] = json!([1, 2]);
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let error = start_error(&file).await;
    assert!(
        error.starts_with(&format!(
            "the Stripe emulator's state file {name} cannot be read (invalid type: sequence, expected a map"
        )),
        "{error}"
    );
    // The refused file is left as it was.
    assert_eq!(
        std::fs::read(&file).unwrap(),
        serde_json::to_vec(&broken).unwrap()
    );
    // The good file loads again.
    std::fs::write(&file, &good).unwrap();
    let t = start_on(&file).await;
    assert_eq!(
        t.get("/v1/customers").await.body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // One emulator per file.
    let error = start_error(&file).await;
    assert_eq!(
        error,
        format!(
            "the Stripe emulator's state file {name} is in use by another running emulator (it holds {name}.lock)"
        )
    );
    t.emu.shutdown().await;
    // A directory that does not exist cannot be written: the start says so.
    let missing = dir.0.join("missing").join("state.json");
    let error = start_error(&missing).await;
    assert!(error.contains(&missing.display().to_string()), "{error}");
}

/// Reads answer from memory and write nothing; each change is written by the background
/// writer, not by the request (counted, not timed).
#[tokio::test]
async fn requests_only_mark_changes_and_the_writer_saves_them() {
    let dir = dir("writes");
    let file = dir.0.join("state.json");
    let t = start_on(&file).await;
    // The start writes the file at once.
    assert_eq!(t.emu.state_file_writes(), 1);
    assert!(file.exists());
    let customer = t.customer().await;
    t.wait_for(|| t.emu.state_file_writes() >= 2).await;
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["format"], "stripe-emulator-state");
    assert_eq!(written["version"], stripe_emulator::STATE_FILE_VERSION);
    assert!(
        written["accounts"]
            .as_object()
            .unwrap()
            .values()
            .any(|account| account["objects"].get(&customer).is_some())
    );
    let settled = t.emu.state_file_writes();
    for _ in 0..50 {
        assert_eq!(
            t.get(&format!("/v1/customers/{customer}")).await.status,
            200
        );
        assert_eq!(t.get("/v1/customers").await.status, 200);
    }
    // Two write intervals (and the expiry tick) pass without a change to save.
    tokio::time::sleep(
        stripe_emulator::STATE_FILE_WRITE_INTERVAL * 2 + Duration::from_millis(1100),
    )
    .await;
    assert_eq!(t.emu.state_file_writes(), settled);
    let stats = t.ctl_get("/_emulator/stats").await;
    assert_eq!(stats.body["state_file"], json!(file.display().to_string()));
    assert_eq!(stats.body["state_file_writes"], json!(settled));
    // Shutdown saves what changed since the last write.
    let last = t.customer().await;
    t.emu.shutdown().await;
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(
        written["accounts"]
            .as_object()
            .unwrap()
            .values()
            .any(|account| account["objects"].get(&last).is_some())
    );
    // No temporary file is left behind.
    let mut names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["state.json", "state.json.lock"]);
}

/// What a snapshot costs with 20,000 checkout sessions stored (~60,000 objects with their
/// setup intents and events): prints the lock-held copy time and the write time. A
/// measurement, not a check: `cargo test -p stripe-emulator --test persist -- --ignored
/// --nocapture` (add `--release` for the release numbers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn snapshot_cost_with_20000_sessions() {
    let dir = dir("cost");
    let file = dir.0.join("state.json");
    let t = start_on(&file).await;
    let customer = t.customer().await;
    for _ in 0..20_000 {
        let r = t
            .post(
                "/v1/checkout/sessions",
                &[
                    ("mode", "setup"),
                    ("currency", "usd"),
                    ("customer", customer.as_str()),
                    ("success_url", "https://example.com/ok"),
                ],
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let writes = t.emu.state_file_writes();
    t.wait_for(|| t.emu.state_file_writes() > writes).await;
    let stats = t.ctl_get("/_emulator/stats").await.body;
    println!(
        "objects {} ({} bytes of text), file {} bytes: copy under the lock {} µs, serialise + write + fsync {} µs",
        stats["objects"],
        stats["object_bytes"],
        std::fs::metadata(&file).unwrap().len(),
        stats["state_file_last_copy_us"],
        stats["state_file_last_write_us"],
    );
    t.emu.shutdown().await;
}

#[tokio::test]
async fn invoice_work_waiting_for_the_clock_survives_a_restart() {
    let dir = dir("invoice-schedule");
    let file = dir.0.join("state.json");
    let first = start_on(&file).await;
    let customer = first
        .post("/v1/customers", &[("email", "payer@example.com")])
        .await;
    let customer = customer.body["id"].as_str().unwrap().to_string();
    let invoice = first
        .post(
            "/v1/invoices",
            &[
                ("customer", customer.as_str()),
                ("collection_method", "send_invoice"),
                ("days_until_due", "1"),
            ],
        )
        .await;
    assert_eq!(invoice.status, 200, "{}", invoice.body);
    let invoice = invoice.body["id"].as_str().unwrap().to_string();
    let item = first
        .post(
            "/v1/invoiceitems",
            &[
                ("customer", customer.as_str()),
                ("invoice", invoice.as_str()),
                ("amount", "1500"),
                ("currency", "usd"),
            ],
        )
        .await;
    assert_eq!(item.status, 200, "{}", item.body);
    let open = first
        .post(&format!("/v1/invoices/{invoice}/finalize"), &[])
        .await;
    assert_eq!(open.body["status"], "open", "{}", open.body);
    first.emu.shutdown().await;

    // The overdue announcement was scheduled before the restart and fires after it.
    let second = start_on(&file).await;
    second.emu.advance_clock(2 * 86_400);
    let overdue: Vec<Value> = second
        .emu
        .events()
        .into_iter()
        .filter(|event| event["type"] == "invoice.overdue")
        .collect();
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert_eq!(overdue[0]["data"]["object"]["id"], json!(invoice));
    second.emu.shutdown().await;
}
