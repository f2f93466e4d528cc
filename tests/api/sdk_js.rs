//! The official OpenMeter JavaScript SDK (`@openmeter/sdk`, pinned) runs its
//! invoicing calls against meterpay unchanged: `tests/sdk/invoicing.mjs`
//! creates pending lines, invoices them, reads, updates, approves, lists,
//! advances, retries, voids and deletes through `billing.invoices`, and this
//! test asserts on what the SDK returned and on what Stripe (the emulator)
//! holds after.
//!
//! The SDK is installed with npm into `target/sdk-js/` the first time (the
//! npm registry must be reachable once); Node.js and npm must be installed:
//! without them the test fails and says what to install, never skips.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::harness::{Backend, TestApp};
use crate::invoices_stripe::card_on_file;
use crate::invoices_v1::setup;

crate::both_backends!(the_javascript_sdk_invoices_through_meterpay_unchanged);

/// The SDK version the test runs: the latest published with `billing.invoices`.
const SDK_VERSION: &str = "1.0.0-beta.232";
const TOKEN: &str = "sdk-test-token";

/// One install at a time (both backends' tests start together).
static INSTALL: Mutex<()> = Mutex::const_new(());

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sdk-js")
}

fn installed_version(dir: &Path) -> Option<String> {
    let manifest = dir.join("node_modules/@openmeter/sdk/package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let manifest: Value = serde_json::from_str(&text).ok()?;
    manifest["version"].as_str().map(str::to_owned)
}

async fn tool_version(tool: &str) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().await.ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `target/sdk-js` with the pinned SDK, installed when missing.
async fn sdk_installed() -> PathBuf {
    let _one = INSTALL.lock().await;
    let dir = sdk_dir();
    let (node, npm) = (tool_version("node").await, tool_version("npm").await);
    let (Some(node), Some(_)) = (node, npm) else {
        panic!(
            "the JavaScript SDK test needs Node.js (20 or later) and npm on PATH: install them \
             (Debian/Ubuntu: `apt-get install nodejs npm`, or from https://nodejs.org) and run \
             the tests again"
        );
    };
    let major: u32 = node
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "the JavaScript SDK test needs Node.js 20 or later; found {node}"
    );
    if installed_version(&dir).as_deref() == Some(SDK_VERSION) {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("create target/sdk-js");
    let out = Command::new("npm")
        .args(["install", "--prefix"])
        .arg(&dir)
        .args([
            "--no-audit",
            "--no-fund",
            "--save-exact",
            "--loglevel=error",
            &format!("@openmeter/sdk@{SDK_VERSION}"),
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run npm");
    assert!(
        out.status.success(),
        "npm install @openmeter/sdk@{SDK_VERSION} into {} failed (is the npm registry \
         reachable?):\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        installed_version(&dir).as_deref(),
        Some(SDK_VERSION),
        "npm did not install the pinned SDK"
    );
    dir
}

/// Runs a phase of `tests/sdk/invoicing.mjs`; each step's SDK result by step
/// name, in order. Fails with the SDK's error when a call threw.
async fn run_sdk(app: &TestApp, sdk: &Path, args: &[&str]) -> Vec<(String, Value)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/invoicing.mjs");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        Command::new("node")
            .arg(&script)
            .args(args)
            .env("METERPAY_URL", &app.base)
            .env("METERPAY_TOKEN", TOKEN)
            .env("METERPAY_SDK_DIR", sdk)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the SDK script finishes within a minute")
    .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let steps: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        out.status.success(),
        "the SDK script failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    steps
        .into_iter()
        .map(|s| (s["step"].as_str().unwrap().to_owned(), s["result"].clone()))
        .collect()
}

fn names(steps: &[(String, Value)]) -> Vec<&str> {
    steps.iter().map(|(name, _)| name.as_str()).collect()
}

async fn the_javascript_sdk_invoices_through_meterpay_unchanged(backend: Backend) {
    let sdk = sdk_installed().await;
    let mut app = TestApp::start_with(backend, |args| {
        args.api_tokens = vec![(TOKEN.into(), "default".into())];
    })
    .await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    app.client = reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap();
    // Auto-approval after a day; a saved card pays at once.
    let s = setup(
        &app,
        json!({"invoicing": {"autoAdvance": true, "draftPeriod": "P1D"}}),
        true,
    )
    .await;

    let steps = run_sdk(&app, &sdk, &["issue", &s.customer_id]).await;
    assert_eq!(
        names(&steps),
        [
            "createLineItems",
            "invoicePendingLines",
            "get",
            "update",
            "createLineItems",
            "invoicePendingLines",
            "approve",
            "list"
        ]
    );
    let created = &steps[0].1;
    assert_eq!(created["isInvoiceNew"], true, "{created}");
    assert_eq!(created["invoice"]["status"], "gathering");
    assert_eq!(created["lines"].as_array().unwrap().len(), 2);
    let amounts: Vec<&Value> = created["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["totals"]["amount"])
        .collect();
    assert_eq!(amounts, [&json!("49.99"), &json!("12.5")]);

    let drafts = steps[1].1.as_array().unwrap();
    assert_eq!(drafts.len(), 1, "{}", steps[1].1);
    let waiting = drafts[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            &drafts[0]["status"],
            &drafts[0]["statusDetails"]["extendedStatus"],
            &drafts[0]["totals"]["amount"]
        ),
        (
            &json!("draft"),
            &json!("draft.waiting_auto_approval"),
            &json!("62.49")
        )
    );
    assert_eq!(steps[2].1["id"], json!(waiting));
    assert_eq!(steps[2].1["lines"].as_array().unwrap().len(), 2);
    let updated = &steps[3].1;
    assert_eq!(
        (
            &updated["id"],
            &updated["description"],
            &updated["metadata"]
        ),
        (
            &json!(waiting),
            &json!("October usage"),
            &json!({"order": "PO-42"})
        )
    );
    assert_eq!(updated["totals"]["amount"], "62.49");

    // The second draft, approved: issued through Stripe and paid with the card.
    let approved = &steps[6].1;
    let second = steps[5].1[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(approved["id"], json!(second));
    assert_eq!(
        (
            &approved["status"],
            &approved["statusDetails"]["extendedStatus"]
        ),
        (&json!("paid"), &json!("paid"))
    );
    let stripe_id = approved["externalIds"]["invoicing"].as_str().unwrap();
    let stripe = app.emu.object(stripe_id).unwrap();
    assert_eq!(
        (&stripe["status"], &stripe["amount_paid"]),
        (&json!("paid"), &json!(6249))
    );
    assert_eq!(
        approved["externalIds"]["hostedInvoiceUrl"],
        stripe["hosted_invoice_url"]
    );

    // The list: both drafts of the customer, oldest first, with their lines.
    let page = &steps[7].1;
    let listed: Vec<(&Value, &Value, usize)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                &i["id"],
                &i["status"],
                i["lines"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (&json!(waiting), &json!("draft"), 2),
            (&json!(second), &json!("paid"), 2)
        ],
        "{page}"
    );

    // A day later the first draft's period is over: the SDK advances it.
    app.server
        .clock()
        .advance(time::Duration::days(1) + time::Duration::seconds(1));
    let steps = run_sdk(&app, &sdk, &["advance", &waiting]).await;
    assert_eq!(names(&steps), ["advance", "get", "list"]);
    for (name, invoice) in &steps[..2] {
        assert_eq!(
            (&invoice["id"], &invoice["status"]),
            (&json!(waiting), &json!("paid")),
            "{name}: {invoice}"
        );
    }
    let page = &steps[2].1;
    assert_eq!(page["totalCount"], 2, "{page}");
    // Stripe holds two invoices, both paid, nothing else.
    let statuses: Vec<Value> = app
        .emu
        .events()
        .into_iter()
        .filter(|e| e["type"] == "invoice.created")
        .map(|e| {
            app.emu
                .object(e["data"]["object"]["id"].as_str().unwrap())
                .unwrap()["status"]
                .clone()
        })
        .collect();
    assert_eq!(statuses, [json!("paid"), json!("paid")]);

    // The customer's card is now one Stripe declines: the SDK approves,
    // retries (declined again), voids; and deletes a draft.
    let (_, declined_card) = card_on_file(&app, &s.key, &s.app_id, "4000000000000341").await;
    let steps = run_sdk(&app, &sdk, &["decline", &s.customer_id]).await;
    assert_eq!(
        names(&steps),
        [
            "createLineItems",
            "invoicePendingLines",
            "approve",
            "retry",
            "void",
            "createLineItems",
            "invoicePendingLines",
            "delete",
            "get"
        ]
    );
    let declined = steps[1].1[0]["id"].clone();
    let failed = |invoice: &Value| {
        (
            invoice["id"].clone(),
            invoice["statusDetails"]["extendedStatus"].clone(),
            invoice["validationIssues"][0]["code"].clone(),
        )
    };
    let expected = (
        declined.clone(),
        json!("payment_processing.failed"),
        json!("payment_failed"),
    );
    assert_eq!(failed(&steps[2].1), expected, "approve: {}", steps[2].1);
    assert_eq!(failed(&steps[3].1), expected, "retry: {}", steps[3].1);
    let voided = &steps[4].1;
    assert_eq!(
        (&voided["id"], &voided["status"]),
        (&declined, &json!("voided")),
        "{voided}"
    );
    let stripe_id = voided["externalIds"]["invoicing"].as_str().unwrap();
    assert_eq!(app.emu.object(stripe_id).unwrap()["status"], "void");
    // Both attempts charged the declined card (the customer's default).
    let pays = app
        .emu
        .requests(0)
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == format!("/v1/invoices/{stripe_id}/pay"))
        .map(|r| r.params["payment_method"].clone())
        .collect::<Vec<_>>();
    assert_eq!(pays, [Value::Null, json!(declined_card)]);
    assert_eq!(steps[7].1, Value::Null, "delete answers no content");
    let deleted = &steps[8].1;
    assert_eq!(
        (
            &deleted["id"],
            &deleted["statusDetails"]["extendedStatus"],
            deleted["deletedAt"].is_string()
        ),
        (&steps[6].1[0]["id"], &json!("deleted"), true),
        "{deleted}"
    );
}
