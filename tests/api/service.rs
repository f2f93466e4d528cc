//! The service around the API: health, routing errors, tenancy, and the
//! `meterpay` binary itself (migrate, serve, graceful shutdown).

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::harness::{Backend, TestApp, temp_dir};
use crate::support::problem_of;

crate::both_backends!(
    health_and_readiness,
    unknown_routes_and_methods_are_problems,
    tokens_select_a_namespace_and_hide_the_others,
);

async fn health_and_readiness(backend: Backend) {
    let app = TestApp::start(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!((health.status, health.body), (200, json!({"status": "ok"})));
    let ready = app.get("/readyz").await;
    assert_eq!((ready.status, ready.body), (200, json!({"status": "ok"})));
    assert!(ready.headers.get("x-request-id").is_some());
}

async fn unknown_routes_and_methods_are_problems(backend: Backend) {
    let app = TestApp::start(backend).await;
    let missing = app.get("/api/v3/openmeter/nothing-here").await;
    assert_eq!(
        missing.problem(),
        problem_of(404, "No route for [GET /api/v3/openmeter/nothing-here]")
    );
    let method = app
        .request(reqwest::Method::PATCH, "/api/v3/openmeter/customers", None)
        .await;
    assert_eq!(
        method.problem(),
        problem_of(
            405,
            "[PATCH] is not allowed on [/api/v3/openmeter/customers]"
        )
    );
}

async fn with_tokens(backend: Backend) -> TestApp {
    TestApp::start_with(backend, |args| {
        args.api_tokens = vec![
            ("tok-a".into(), "team-a".into()),
            ("tok-b".into(), "team-b".into()),
        ];
    })
    .await
}

async fn tokens_select_a_namespace_and_hide_the_others(backend: Backend) {
    let app = with_tokens(backend).await;
    let url = |path: &str| format!("{}{}", app.base, path);
    let anonymous = app.get("/api/v3/openmeter/customers").await;
    assert_eq!(
        anonymous.problem(),
        problem_of(
            401,
            "Send a valid API token as [Authorization: Bearer <token>]"
        )
    );
    let wrong = app
        .client
        .get(url("/api/v3/openmeter/customers"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    let created: serde_json::Value = app
        .client
        .post(url("/api/v3/openmeter/customers"))
        .bearer_auth("tok-a")
        .json(&json!({"name": "A's", "key": "shared-key"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    // Team B neither sees A's customer nor collides with its key.
    let foreign = app
        .client
        .get(url(&format!("/api/v3/openmeter/customers/{id}")))
        .bearer_auth("tok-b")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status().as_u16(), 404);
    let b_create = app
        .client
        .post(url("/api/v3/openmeter/customers"))
        .bearer_auth("tok-b")
        .json(&json!({"name": "B's", "key": "shared-key"}))
        .send()
        .await
        .unwrap();
    assert_eq!(b_create.status().as_u16(), 201);
    let a_list: serde_json::Value = app
        .client
        .get(url("/api/v1/customers"))
        .bearer_auth("tok-a")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a_list["totalCount"], 1);
    assert_eq!(a_list["items"][0]["id"], id);
    // Health stays open for probes.
    assert_eq!(app.get("/healthz").await.status, 200);
}

fn meterpay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meterpay"))
}

#[test]
fn refuses_a_public_address_without_tokens() {
    let dir = temp_dir();
    let out = meterpay()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .env("METERPAY_DATA_DIR", &dir.0)
        .env_remove("METERPAY_API_TOKENS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without API tokens"),
        "{stderr}"
    );
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = temp_dir();
    let out = meterpay()
        .arg("migrate")
        .env("METERPAY_DATA_DIR", dir.0.join("nested"))
        .env_remove("METERPAY_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.0.join("nested/meterpay.db").exists());
}

/// `serve` as a real process: answers, keeps what it wrote, and exits 0 on SIGTERM.
#[tokio::test]
async fn serve_shuts_down_gracefully_on_sigterm() {
    let dir = temp_dir();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = meterpay()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("METERPAY_DATA_DIR", &dir.0)
        .env_remove("METERPAY_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "meterpay did not become ready");
    let created = client
        .post(format!("{base}/api/v3/openmeter/customers"))
        .json(&json!({"name": "Persisted", "key": "p"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(dir.0.join("meterpay.db").exists());
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn wait_until_up(client: &reqwest::Client, url: &str) {
    for _ in 0..150 {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

/// The README's first command: `serve --emulate-stripe` on a fresh data
/// directory answers a checkout request with nothing else configured.
#[tokio::test]
async fn serve_with_the_emulator_checks_out_with_no_setup() {
    let dir = temp_dir();
    let (port, emu_port) = (free_port(), free_port());
    let mut child = meterpay()
        .args([
            "serve",
            "--emulate-stripe",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--emulator-listen",
            &format!("127.0.0.1:{emu_port}"),
        ])
        .env("METERPAY_DATA_DIR", &dir.0)
        .env_remove("METERPAY_DATABASE_URL")
        .env_remove("METERPAY_ENCRYPTION_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_until_up(&client, &format!("{base}/readyz")).await;
    let customer: serde_json::Value = client
        .post(format!("{base}/api/v3/openmeter/customers"))
        .json(&json!({"name": "ACME", "key": "acme", "currency": "USD"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = client
        .post(format!(
            "{base}/api/v3/openmeter/customers/{}/billing/stripe/checkout-sessions",
            customer["id"].as_str().unwrap()
        ))
        .json(&json!({"stripe_options": {"success_url": "https://example.com/ok"}}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(status, 201, "{body}");
    crate::contract::assert_checkout_result(&body);
    assert!(
        body["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://127.0.0.1:{emu_port}/c/pay/cs_test_"))
    );
    let key = std::fs::metadata(dir.0.join("encryption.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

/// `meterpay emulate-stripe` alone speaks Stripe's API with the default key.
#[tokio::test]
async fn emulate_stripe_command_serves_the_stripe_api() {
    let port = free_port();
    let mut child = meterpay()
        .args(["emulate-stripe", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("METERPAY_EMULATOR_API_KEYS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&client, &format!("{base}/_emulator/health")).await;
    let account = client
        .get(format!("{base}/v1/account"))
        .bearer_auth("sk_test_emulator")
        .send()
        .await
        .unwrap();
    let status = account.status().as_u16();
    let body: serde_json::Value = account.json().await.unwrap();
    let anonymous = client
        .get(format!("{base}/v1/account"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(status, 200, "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("acct_"));
    assert_eq!(anonymous, 401);
}

/// `meterpay emulate-stripe --state-file`: what one run created is there in
/// the next (SIGTERM writes the last changes).
#[tokio::test]
async fn emulate_stripe_command_keeps_its_state_file() {
    let dir = temp_dir();
    let state_file = dir.0.join("emulator.json");
    let client = reqwest::Client::new();
    let run = |port: u16| {
        meterpay()
            .args([
                "emulate-stripe",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--state-file",
                state_file.to_str().unwrap(),
            ])
            .env_remove("METERPAY_EMULATOR_API_KEYS")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let stop = |child: std::process::Child| async move {
        let pid = child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let mut child = child;
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap()
    };
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = run(port);
    wait_until_up(&client, &format!("{base}/_emulator/health")).await;
    let created: serde_json::Value = client
        .post(format!("{base}/v1/customers"))
        .bearer_auth("sk_test_emulator")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=kept%40example.com")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let status = stop(child).await;
    assert!(status.success(), "exit status {status:?}");

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = run(port);
    wait_until_up(&client, &format!("{base}/_emulator/health")).await;
    let id = created["id"].as_str().unwrap();
    let kept = client
        .get(format!("{base}/v1/customers/{id}"))
        .bearer_auth("sk_test_emulator")
        .send()
        .await
        .unwrap();
    let kept_status = kept.status().as_u16();
    let kept: serde_json::Value = kept.json().await.unwrap();
    let status = stop(child).await;
    assert_eq!((kept_status, &kept), (200, &created));
    assert!(status.success(), "exit status {status:?}");

    // A state file that is not one: the command refuses to start and says why.
    std::fs::write(&state_file, "not json").unwrap();
    let out = meterpay()
        .args([
            "emulate-stripe",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--state-file",
            state_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the Stripe emulator's state file {} is not a valid state file",
            state_file.display()
        )),
        "{stderr}"
    );
}
