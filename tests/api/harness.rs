//! Starts a real meterpay server (in this process, on an ephemeral port) on a
//! fresh database of the chosen backend, and talks HTTP to it.
//!
//! PostgreSQL: see `postgres.rs` (the server at `METERPAY_TEST_POSTGRES_URL`,
//! else a throwaway one); each test gets its own schema.

use std::net::SocketAddr;
use std::path::PathBuf;

use meterpay::Server;
use meterpay::config::{DatabaseArgs, ServeArgs};
use reqwest::Method;
use serde_json::Value;
use stripe_emulator::{Emulator, EmulatorConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    /// The Stripe emulator this server talks to (one per test).
    pub emu: Emulator,
    /// Kept alive for the test; later tests read its store directly.
    #[allow(dead_code)]
    pub server: Server,
    pub base: String,
    /// The database this server uses (a second server may share it).
    #[allow(dead_code)]
    pub database_url: String,
    pub client: reqwest::Client,
    #[allow(dead_code)]
    pub backend: Backend,
    _dir: Option<TempDir>,
    /// Where the captured log stood when this test started, and the
    /// secrets this test's servers were given (see `log_capture`).
    log_from: usize,
    secrets: Vec<String>,
}

impl Drop for TestApp {
    /// The test's servers never logged a secret it used.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let mut secrets = std::mem::take(&mut self.secrets);
        secrets.extend(self.emu.secrets());
        secrets.extend(
            crate::log_capture::CARD_NUMBERS
                .iter()
                .map(|s| (*s).to_owned()),
        );
        let leaks = crate::log_capture::leaks(self.log_from, &secrets);
        assert!(
            leaks.is_empty(),
            "secrets in the servers' logs:\n{}",
            leaks.join("\n")
        );
    }
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir() -> TempDir {
    let dir = std::env::temp_dir().join(format!("meterpay-test-{}", ulid::Ulid::generate()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TempDir(dir)
}

pub fn postgres_base_url() -> String {
    crate::postgres::base_url()
}

/// Creates a fresh schema and returns a URL whose connections use it.
pub async fn postgres_schema_url() -> String {
    use sqlx::Connection;
    let base = postgres_base_url();
    let schema = format!("meterpay_test_{}", ulid::Ulid::generate()).to_lowercase();
    let mut conn = sqlx::PgConnection::connect(&base).await.unwrap_or_else(|err| {
        panic!(
            "PostgreSQL is not reachable at {base}: {err}\n\
             Start it (see README) or point METERPAY_TEST_POSTGRES_URL at a server you may create schemas on."
        )
    });
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

/// base64 of 32 bytes; tests use a fixed key so stored rows can be inspected.
pub const TEST_ENCRYPTION_KEY: &str = "bWV0ZXJwYXktdGVzdC1rZXktMzItYnl0ZXMtbG9uZyE=";

pub fn serve_args(database_url: String) -> ServeArgs {
    ServeArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database: DatabaseArgs {
            database_url: Some(database_url),
            data_dir: std::env::temp_dir(),
        },
        api_tokens: Vec::new(),
        emulate_stripe: false,
        // Tests run the invoice worker's passes themselves (`work_invoices_once`).
        invoice_worker_interval_ms: 0,
        invoice_lease_secs: 60,
        emulator_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        stripe_api_base: "http://127.0.0.1:9".into(),
        public_url: None,
        metrics_listen: None,
        encryption_key: Some(TEST_ENCRYPTION_KEY.into()),
    }
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the default test arguments changed by `configure`.
    pub async fn start_with(backend: Backend, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
        let log_from = crate::log_capture::start();
        let (url, dir) = match backend {
            Backend::Sqlite => {
                let dir = temp_dir();
                (
                    format!("sqlite://{}", dir.0.join("meterpay.db").display()),
                    Some(dir),
                )
            }
            Backend::Postgres => (postgres_schema_url().await, None),
        };
        let emu = Emulator::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            EmulatorConfig {
                webhook_retry_base_ms: 50,
                ..EmulatorConfig::default()
            },
        )
        .await
        .expect("start the Stripe emulator");
        let mut args = serve_args(url.clone());
        args.stripe_api_base = emu.base_url();
        configure(&mut args);
        let server = Server::start(&args).await.expect("start meterpay");
        let mut secrets: Vec<String> = args
            .api_tokens
            .iter()
            .map(|(token, _)| token.clone())
            .collect();
        secrets.extend(args.encryption_key.clone());
        TestApp {
            log_from,
            secrets,
            emu,
            base: server.base_url(),
            database_url: url,
            server,
            client: reqwest::Client::new(),
            backend,
            _dir: dir,
        }
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(body) = body {
            req = req.json(body);
        }
        Resp::from(req.send().await.expect("request failed")).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.request(Method::POST, path, Some(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.request(Method::PUT, path, Some(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.request(Method::DELETE, path, None).await
    }

    /// Sends raw bytes with the given content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> Resp {
        let req = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("content-type", content_type)
            .body(body.to_owned());
        Resp::from(req.send().await.expect("request failed")).await
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
    /// The parsed JSON body; `Null` when empty.
    pub body: Value,
}

impl Resp {
    pub async fn from(resp: reqwest::Response) -> Resp {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = resp.text().await.expect("read body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"))
        };
        Resp {
            status,
            content_type,
            headers,
            body,
        }
    }

    /// The problem document with its per-request `instance` blanked, for
    /// whole-body comparisons.
    pub fn problem(&self) -> Value {
        assert_eq!(
            self.content_type, "application/problem+json",
            "expected a problem, got {}: {}",
            self.status, self.body
        );
        let instance = self.body["instance"].as_str().unwrap_or_default();
        assert!(
            instance.starts_with("urn:request:"),
            "instance should carry the request id: {}",
            self.body
        );
        let mut body = self.body.clone();
        body["instance"] = Value::String("urn:request:…".into());
        body
    }
}

/// Runs each named test on SQLite and on PostgreSQL. A test is an ordinary
/// `async fn name(backend: Backend)` (so rustfmt formats it);
/// `both_backends!(name, …)` only adds the wrappers `sqlite::name` and
/// `postgres::name`. Use it once per module, naming every such test.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Sqlite).await
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}

/// `meterpay serve` as a process of its own (the real binary) on `app`'s
/// database and emulator, on an ephemeral port, its invoice worker off
/// unless `env` says otherwise; returns the child and its base URL.
pub fn spawn_meterpay(
    app: &TestApp,
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_meterpay"));
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("METERPAY_DATABASE_URL", &app.database_url)
        .env("METERPAY_DATA_DIR", data_dir)
        .env("METERPAY_STRIPE_API_BASE", app.emu.base_url())
        .env("METERPAY_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
        .env("METERPAY_INVOICE_WORKER_INTERVAL_MS", "0")
        .env_remove("METERPAY_API_TOKENS")
        .env_remove("METERPAY_EMULATE_STRIPE")
        .env_remove("METERPAY_PUBLIC_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().expect("start meterpay");
    (child, format!("http://127.0.0.1:{port}"))
}

/// Waits (at most 15 s) until the process at `base` answers `/healthz`.
pub async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..300 {
        if let Ok(resp) = client.get(format!("{base}/healthz")).send().await
            && resp.status() == 200
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("meterpay at {base} never became ready");
}

/// A form POST to `app`'s emulator with Stripe key `key`; must answer 200.
pub async fn stripe_post(app: &TestApp, key: &str, path: &str, form: &str) -> Value {
    let resp = app
        .client
        .post(format!("{}{path}", app.emu.base_url()))
        .bearer_auth(key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// Completes checkout session `session_id` in `app`'s emulator with card
/// `number`, as Stripe.js would (passing 3-D Secure when `authenticate`);
/// returns the id of the payment method it saved.
pub fn pay_session(app: &TestApp, session_id: &str, number: &str, authenticate: bool) -> String {
    let card = stripe_emulator::CardInput {
        number: number.into(),
        exp_month: 12,
        exp_year: 2034,
        name: None,
        email: None,
        address: None,
    };
    let done = app
        .emu
        .complete_checkout_session(session_id, &card, authenticate)
        .expect("completed session");
    let intent = app
        .emu
        .object(done["setup_intent"].as_str().expect("setup intent"))
        .expect("setup intent object");
    intent["payment_method"]
        .as_str()
        .expect("payment method id")
        .to_owned()
}

/// A card saved for Stripe customer `cus` through a setup session made
/// straight in the emulator (not through meterpay); returns its payment method.
pub async fn save_card(
    app: &TestApp,
    key: &str,
    cus: &str,
    number: &str,
    authenticate: bool,
) -> String {
    let session = stripe_post(
        app,
        key,
        "/v1/checkout/sessions",
        &format!("mode=setup&currency=usd&customer={cus}&success_url=https%3A%2F%2Fx.example%2Fok"),
    )
    .await;
    pay_session(app, session["id"].as_str().unwrap(), number, authenticate)
}

/// Disables every webhook endpoint of the account of `key`, so that the
/// test delivers Stripe's events itself.
pub async fn disable_webhook_endpoints(app: &TestApp, key: &str) {
    let endpoints: Value = app
        .client
        .get(format!("{}/v1/webhook_endpoints", app.emu.base_url()))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for endpoint in endpoints["data"].as_array().unwrap() {
        let id = endpoint["id"].as_str().unwrap();
        stripe_post(
            app,
            key,
            &format!("/v1/webhook_endpoints/{id}"),
            "disabled=true",
        )
        .await;
    }
}

/// The emulator's `checkout.session.completed` and `setup_intent.succeeded`
/// events so far, as (event id, payload).
pub fn completed_session_events(app: &TestApp) -> Vec<(String, String)> {
    app.emu
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e["type"].as_str(),
                Some("checkout.session.completed" | "setup_intent.succeeded")
            )
        })
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                serde_json::to_string(&e).unwrap(),
            )
        })
        .collect()
}

/// The objects of `kind` (`customer`, `invoice`, …) the emulator created, by
/// their `.created` events.
pub fn created_objects(app: &TestApp, kind: &str) -> Vec<Value> {
    app.emu
        .events()
        .into_iter()
        .filter(|e| e["type"] == format!("{kind}.created"))
        .map(|e| e["data"]["object"].clone())
        .collect()
}
